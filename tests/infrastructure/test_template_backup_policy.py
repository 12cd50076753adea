"""The backup bucket's policy: committed backups are immutable, only prune deletes, monitors read records only."""

from __future__ import annotations

from typing import Any

from tests.helpers.template import as_list, functions, inline_statements, props, sub_text


def _statements() -> list[dict[str, Any]]:
    statements: list[dict[str, Any]] = props("BackupBucketPolicy")["PolicyDocument"]["Statement"]
    return statements


def _key_of(resource: Any) -> str:
    text = sub_text(resource)
    return text.split("}/", 1)[1] if text and "}/" in text else ""


def test_every_object_creation_under_backups_must_be_conditional() -> None:
    # Given the backup bucket policy
    [deny] = [
        s
        for s in _statements()
        if s["Effect"] == "Deny" and "s3:PutObject" in as_list(s["Action"]) and "Condition" in s
    ]
    # Then every principal's PutObject / CompleteMultipartUpload without If-None-Match is denied …
    assert deny["Principal"] == "*"
    assert deny["Condition"]["Null"] == {"s3:if-none-match": "true"}
    assert deny["Condition"]["Bool"] == {"s3:ObjectCreationOperation": "true"}
    # … everywhere but the bucket itself, locks/, each backup's verification.json and the one
    # status page key (issue 19: rewritten by every summary run; not a backup, outside backups/)
    assert "Resource" not in deny
    exempt = {_key_of(r) for r in as_list(deny["NotResource"])} - {""}
    assert exempt == {"locks/*", "backups/*/verification.json", "status/index.html"}


def test_only_the_prune_role_may_delete_under_backups() -> None:
    [deny] = [s for s in _statements() if s.get("Sid") == "OnlyPruneDeletesBackups"]
    assert deny["Effect"] == "Deny" and deny["Principal"] == "*"
    assert set(as_list(deny["Action"])) == {"s3:DeleteObject", "s3:DeleteObjectVersion"}
    assert _key_of(deny["Resource"]) == "backups/*"
    assert deny["Condition"] == {
        "ArnNotEquals": {"aws:PrincipalArn": {"Fn::GetAtt": ["PruneFunctionRole", "Arn"]}}
    }
    # And no other function is even granted a delete under backups/
    for logical_id in functions():
        if logical_id == "PruneFunction":
            continue
        for statement in inline_statements(logical_id):
            if any(str(a).startswith("s3:Delete") for a in as_list(statement["Action"])):
                assert all(not _key_of(r).startswith("backups/") for r in as_list(statement["Resource"]))


def _backup_bucket_keys(logical_id: str, action: str) -> set[str]:
    return {
        _key_of(r)
        for s in inline_statements(logical_id)
        if action in as_list(s["Action"])
        for r in as_list(s["Resource"])
        if "BackupBucket" in (sub_text(r) or "")
    }


def test_health_and_summary_read_lastgood_records_only_never_backup_contents() -> None:
    records = {"backups/*/manifest.json", "backups/*/verification.json"}
    assert _backup_bucket_keys("HealthFunction", "s3:GetObject") == records
    # The summary also draws the status page: acceptance and pin records, failed runs' audit records
    assert _backup_bucket_keys("SummaryFunction", "s3:GetObject") == records | {
        "backups/*/accepted.json",
        "backups/*/pins/*.pin.json",
        "backups/*/pins/*.unpin.json",
        "audit/backup/*",
    }


def test_the_summary_writes_exactly_the_status_page_key_and_deletes_nothing() -> None:
    # Given the summary's statements: its only write in the backup bucket is the status page
    assert _backup_bucket_keys("SummaryFunction", "s3:PutObject") == {"status/index.html"}
    actions = {a for s in inline_statements("SummaryFunction") for a in as_list(s["Action"])}
    assert not {a for a in actions if a.startswith("s3:Delete")}
    # And that key is outside backups/ (so no retention, prune or tiering rule concerns it)
    from lastgood.backups.keys import BACKUPS_PREFIX, status_page_key

    assert not status_page_key().startswith(BACKUPS_PREFIX) and status_page_key() == "status/index.html"
    # while the deny on deletes under backups/ is unchanged (prune's alone)
    [deny] = [s for s in _statements() if s.get("Sid") == "OnlyPruneDeletesBackups"]
    assert _key_of(deny["Resource"]) == "backups/*"

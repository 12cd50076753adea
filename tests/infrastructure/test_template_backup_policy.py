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
    # … everywhere but the bucket itself, locks/ and each backup's verification.json
    assert "Resource" not in deny
    exempt = {_key_of(r) for r in as_list(deny["NotResource"])} - {""}
    assert exempt == {"locks/*", "backups/*/verification.json"}


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


def test_health_and_summary_read_manifests_and_verification_records_only() -> None:
    for logical_id in ("HealthFunction", "SummaryFunction"):
        reads = {
            _key_of(r)
            for s in inline_statements(logical_id)
            if "s3:GetObject" in as_list(s["Action"])
            for r in as_list(s["Resource"])
            if "BackupBucket" in (sub_text(r) or "")
        }
        assert reads == {"backups/*/manifest.json", "backups/*/verification.json"}, logical_id

"""Issue 13, part C — fault matrix: the commit protocol, slot locks, unreadable manifests, pins, bucket policy.

One test per numbered case (4, 5, 6, 7) plus two prunes at once, against the devstack's moto S3
and PostgreSQL. Faults a real S3 cannot produce on demand (a lost response after the request
reached S3, an outage between two writes) are injected with botocore event hooks on a fresh
client of the real moto server: the request still goes to S3, only its answer is replaced.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from botocore.exceptions import ConnectionClosedError, EndpointConnectionError
from lastgood.backups.keys import lock_key, manifest_key
from lastgood.backups.manifest import BackupManifest
from lastgood.backups.retention import RetentionPolicy
from lastgood.backups.run import run_backup
from lastgood.backups.store import BackupStore
from lastgood.core import aws
from lastgood.core.errors import BackupError
from lastgood.core.settings import get_settings
from lastgood.core.timefmt import iso_z, parse_time

from tests.helpers.restore import run_cli
from tests.helpers.template import props, sub_text

pytestmark = pytest.mark.devstack

OLD = timedelta(days=3)  # well past prune's 24-hour grace period


def _fresh_s3() -> Any:
    """A new client of the devstack's S3 (hooks registered on it touch no other test)."""
    return boto3.session.Session().client(
        "s3", region_name=get_settings().aws_region, config=aws.DEFAULT_CONFIG
    )


def _store(s3: Any | None = None) -> BackupStore:
    settings = BackupStore.from_settings()
    return BackupStore(settings.bucket, settings.kms_key_id, s3 or _fresh_s3())


def _unique_slot() -> str:
    return iso_z(datetime(2002, 1, 1, tzinfo=UTC) + timedelta(hours=secrets.randbelow(8760)))


def _source() -> str:
    return f"pgfault{secrets.token_hex(3)}"


def _commit(store: BackupStore, source: str, when: datetime, payload: bytes = b"dump bytes") -> str:
    """A small backup written and committed by the product's own writer."""
    backup_id = store.new_backup_id(when)
    with store.writer(source, backup_id) as writer:
        with writer.open_object("db.dump") as out:
            out.write(payload)
        writer.commit(
            BackupManifest.build(
                backup_id=backup_id,
                source=source,
                engine="postgres",
                started_at=when,
                finished_at=when + timedelta(seconds=2),
                objects=writer.entries,
            )
        )
    return backup_id


def _keys(store: BackupStore, prefix: str) -> list[str]:
    pages = store.s3.get_paginator("list_objects_v2").paginate(Bucket=store.bucket, Prefix=prefix)
    return sorted(o["Key"] for page in pages for o in page.get("Contents", []))


def _drop_answer_once(s3: Any, matches: Callable[[Any], bool]) -> dict[str, int]:
    """The first request `matches` accepts is SENT to S3, then its answer is lost (connection closed)."""
    seen = {"dropped": 0}

    def hook(request: Any, **_: Any) -> None:
        if seen["dropped"] == 0 and matches(request):
            seen["dropped"] += 1
            s3._endpoint._send(request)  # it reaches S3 and is stored …
            raise ConnectionClosedError(endpoint_url=request.url)  # … but the caller never hears back

    s3.meta.events.register("before-send.s3.*", hook)
    return seen


def test_case_4_prune_keeps_unreadable_manifests_and_pins_survive_a_broken_or_deleted_manifest(devstack):
    from lastgood.backups.pins import set_pinned
    from lastgood.backups.prune import prune_source

    store = _store()
    source = _source()
    now = datetime.now(UTC).replace(microsecond=0)
    # Given five old backups of one source: a good one, a pinned one whose manifest is later cut,
    # one whose manifest comes from a newer lastgood (format 2), a pinned one whose manifest is
    # later deleted, and the newest good one
    oldest = _commit(store, source, now - OLD - timedelta(hours=5))
    cut = _commit(store, source, now - OLD - timedelta(hours=4))
    newer = _commit(store, source, now - OLD - timedelta(hours=3))
    orphan = _commit(store, source, now - OLD - timedelta(hours=2))
    newest = _commit(store, source, now - OLD - timedelta(hours=1))
    set_pinned(cut, True, reason="legal hold 2024", store=store)
    set_pinned(orphan, True, reason="before migration 9", store=store)
    raw = store.s3
    good = raw.get_object(Bucket=store.bucket, Key=manifest_key(source, cut))["Body"].read()
    raw.put_object(Bucket=store.bucket, Key=manifest_key(source, cut), Body=good[: len(good) // 2])
    doc = store.read_manifest(source, newer).to_dict() | {"format": 2}
    raw.put_object(Bucket=store.bucket, Key=manifest_key(source, newer), Body=json.dumps(doc).encode())
    raw.delete_object(Bucket=store.bucket, Key=manifest_key(source, orphan))
    before = {b: _keys(store, f"backups/{source}/{b}/") for b in (cut, newer, orphan)}

    # When prune runs with keep-last 1, after the grace period
    result = prune_source(
        source, store=store, policy=RetentionPolicy.from_dict({"keep_last": 1}), force=True, now=now
    )

    # Then the cut and the format-2 manifests are kept with every object, and reported unreadable
    for backup_id, keys in before.items():
        assert _keys(store, f"backups/{source}/{backup_id}/") == keys, backup_id
    assert set(result.as_dict()["unreadable"]) == {cut, newer}
    # And the pin on the backup whose manifest was deleted survived (kept as pinned, not "incomplete")
    kept = {d.backup.backup_id: d for d in result.plan.keep}
    assert orphan in kept and any("pinned" in r for r in kept[orphan].reasons)
    # And prune still did its job on what it can read: the oldest good backup is gone
    assert result.pruned == [oldest] and _keys(store, f"backups/{source}/{oldest}/") == []
    # And `lastgood list` shows the unreadable ones as such (and the pins from their records)
    listed = {r["backup_id"]: r for r in json.loads(run_cli("list", "--json").out) if r["source"] == source}
    assert listed[cut]["status"] == "unreadable" and listed[cut]["pinned"] is True
    assert listed[newer]["status"] == "unreadable" and "format 2" in listed[newer]["unreadable_reason"]
    assert listed[orphan]["pinned"] is True and listed[newest]["status"] == "complete"


def test_case_5_a_lost_manifest_response_still_commits_a_complete_backup(devstack):
    s3 = _fresh_s3()
    seen = _drop_answer_once(
        s3, lambda r: r.method == "PUT" and r.url.split("?")[0].endswith("/manifest.json")
    )
    store = _store(s3)
    # Given the manifest PUT reaches S3 but its answer is lost (botocore retries and gets 412)
    # When a backup runs
    result = run_backup("postgres", on_demand=True, store=store)
    # Then the run recognised its own manifest: committed, ok
    assert seen["dropped"] == 1
    assert result.status == "ok" and result.manifest is not None
    manifest = _store().read_manifest("postgres", result.backup_id)
    assert manifest == result.manifest
    # And every data object is there and matches the manifest (nothing was deleted)
    _store().object_source(manifest)  # re-hashes every object; raises on a missing/changed one
    listed = [b for b in _store().list_backups("postgres") if b.backup_id == result.backup_id]
    assert listed and listed[0].committed and listed[0].objects == len(manifest.objects)


def test_case_6_a_dead_runs_slot_is_taken_over_after_its_lease_and_never_reported_skipped(
    devstack, monkeypatch
):
    monkeypatch.setenv("BACKUP_LOCK_LEASE_S", "120")
    slot = _unique_slot()
    lock = lock_key("postgres", parse_time(slot))
    s3 = _fresh_s3()
    outage = {"on": False}

    def s3_goes_down(request: Any, **_: Any) -> None:
        # Given S3 fails from the manifest write on: data objects written, no manifest, no cleanup,
        # and the lock release fails too
        if request.url.split("?")[0].endswith("/manifest.json") and request.method == "PUT":
            outage["on"] = True
        if outage["on"]:
            raise EndpointConnectionError(endpoint_url=request.url)

    s3.meta.events.register("before-send.s3.*", s3_goes_down)
    started = datetime.now(UTC).replace(microsecond=0) - timedelta(seconds=300)  # every run in the past
    with pytest.raises(BackupError):
        run_backup("postgres", slot=slot, store=_store(s3), now=started)
    store = _store()
    holder = json.loads(store.s3.get_object(Bucket=store.bucket, Key=lock)["Body"].read())
    assert holder["state"] == "running"

    # When the slot is retried within the lease: Then it is "in progress", not a success or a skip
    with pytest.raises(BackupError, match="in progress, not done") as raised:
        run_backup("postgres", slot=slot, store=store, now=started + timedelta(seconds=60))
    assert raised.value.exit_code == 11
    # When it is retried after the lease: Then the retry takes the slot over and commits
    retry = run_backup("postgres", slot=slot, store=store, now=started + timedelta(seconds=180))
    assert retry.status == "ok" and retry.backup_id != holder["backup_id"]
    assert store.has_manifest("postgres", retry.backup_id)
    # And only now is a duplicate a skip (the slot's backup is committed)
    again = run_backup("postgres", slot=slot, store=store, now=started + timedelta(seconds=240))
    assert again.status == "skipped" and again.backup_id == retry.backup_id


def _policy_statement(sid: str) -> dict[str, Any]:
    statements = props("BackupBucketPolicy")["PolicyDocument"]["Statement"]
    return next(s for s in statements if s.get("Sid") == sid)


def test_case_7_no_writer_may_overwrite_under_backups_and_only_prune_deletes(devstack):
    from lastgood.backups.pins import set_pinned

    # Given the bucket policy: unconditional object creation under backups/ is denied …
    conditional = _policy_statement("CommittedBackupsAreImmutable")
    assert conditional["Effect"] == "Deny" and conditional["Principal"] == "*"
    assert conditional["Action"] == "s3:PutObject"
    assert conditional["Condition"]["Null"] == {"s3:if-none-match": "true"}
    assert conditional["Condition"]["Bool"] == {"s3:ObjectCreationOperation": "true"}
    exempt = {sub_text(r) or json.dumps(r) for r in conditional["NotResource"]}
    assert not any(e.split("}/", 1)[-1] == "backups/*" for e in exempt)
    # (the status page, issue 19, is one exact key outside backups/: it is replaced daily)
    assert {e.split("}/", 1)[-1] for e in exempt if "}/" in e} == {
        "locks/*",
        "backups/*/verification.json",
        "status/index.html",
    }
    # … and deleting there is the prune role's alone
    deletes = _policy_statement("OnlyPruneDeletesBackups")
    assert deletes["Effect"] == "Deny" and sub_text(deletes["Resource"]).endswith("/backups/*")
    assert {"s3:DeleteObject", "s3:DeleteObjectVersion"} <= set(deletes["Action"])
    assert deletes["Condition"] == {
        "ArnNotEquals": {"aws:PrincipalArn": {"Fn::GetAtt": ["PruneFunctionRole", "Arn"]}}
    }

    # When every writer under backups/ runs (a backup, a multipart object, pin, unpin, verify)
    s3 = _fresh_s3()
    writes: list[tuple[str, str, bool]] = []

    def record(params: dict[str, Any], model: Any, **_: Any) -> None:
        key = str(params.get("Key", ""))
        if key.startswith("backups/"):
            writes.append((model.name, key, params.get("IfNoneMatch") == "*"))

    for operation in ("PutObject", "CompleteMultipartUpload", "CopyObject"):
        s3.meta.events.register(f"provide-client-params.s3.{operation}", record)
    settings = BackupStore.from_settings()
    store = BackupStore(settings.bucket, settings.kms_key_id, s3, part_size=5 * 1024 * 1024)
    result = run_backup("postgres", on_demand=True, pin=True, reason="case 7", store=store)
    big = _commit(store, _source(), datetime.now(UTC), payload=secrets.token_bytes(6 * 1024 * 1024))
    set_pinned(result.backup_id, False, store=store)
    set_pinned(result.backup_id, True, reason="again", store=store)
    from lastgood.backups.verify import verify_backup

    verify_backup(store, store.read_manifest("postgres", result.backup_id))

    # Then every object created under backups/ was a conditional create, except verification.json
    assert any(op == "CompleteMultipartUpload" for op, _, _ in writes), "no multipart object was written"
    assert any(k.endswith("/manifest.json") for _, k, _ in writes)
    assert any("/pins/" in k for _, k, _ in writes) and big
    unconditional = [(op, k) for op, k, ok in writes if not ok and not k.endswith("/verification.json")]
    assert unconditional == []
    # And the committed manifest was never rewritten by the pins (it is what was committed)
    assert _store().read_manifest("postgres", result.backup_id) == result.manifest


def test_two_prunes_at_once_never_double_delete_or_delete_what_the_other_keeps(devstack):
    from lastgood.backups.prune import prune_source
    from lastgood.core.errors import RetentionError

    source = _source()
    now = datetime.now(UTC).replace(microsecond=0)
    seed = _store()
    ids = [_commit(seed, source, now - OLD - timedelta(hours=h)) for h in range(4, 0, -1)]
    policy = RetentionPolicy.from_dict({"keep_last": 1})
    s3 = _fresh_s3()
    deletes: list[str] = []
    second: dict[str, Any] = {}

    def on_delete(params: dict[str, Any], **_: Any) -> None:
        deletes.append(str(params["Key"]))
        if "outcome" not in second:
            # Given prune A is half-way through its deletes when prune B of the same source starts
            try:
                second["outcome"] = prune_source(source, store=_store(), policy=policy, force=True, now=now)
            except RetentionError as exc:  # PruneInProgress
                second["outcome"] = exc

    def on_batch(params: dict[str, Any], **_: Any) -> None:
        deletes.extend(str(o["Key"]) for o in params["Delete"]["Objects"])

    s3.meta.events.register("provide-client-params.s3.DeleteObject", on_delete)
    s3.meta.events.register("provide-client-params.s3.DeleteObjects", on_batch)
    # When both run
    first = prune_source(source, store=_store(s3), policy=policy, force=True, now=now)
    # Then B was refused with nothing deleted, and A deleted each removed object exactly once
    assert isinstance(second["outcome"], RetentionError), second["outcome"]
    assert "another prune of this source is running" in str(second["outcome"])
    assert "nothing was deleted" in str(second["outcome"])
    backup_deletes = [k for k in deletes if k.startswith("backups/")]
    assert len(backup_deletes) == len(set(backup_deletes))
    assert sorted(first.pruned) == sorted(ids[:3])
    assert _keys(seed, f"backups/{source}/{ids[3]}/") != []
    # And once A is done the lock is free: another prune runs (and finds nothing more to remove)
    third = prune_source(source, store=_store(), policy=policy, force=True, now=now)
    assert third.pruned == [] and [d.backup.backup_id for d in third.plan.keep] == [ids[3]]

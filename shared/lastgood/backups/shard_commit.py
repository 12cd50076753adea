"""Commit a sharded MongoDB backup (`lastgood backup --source NAME --slot T --commit-shards N`).

Takes the slot lock (a slot whose backup is committed is `skipped`, as for
`run_backup`), reads the N shard records (`lastgood.backups.shard`), checks that they
describe one backup of one server with disjoint collections, that every object they list
is in the bucket with its size, then builds the manifest as a single-process run does
(`BackupManifest.build`, the suspect/baseline logic of `lastgood.backups.run`) and writes it
last (`BackupWriter.commit`). A missing or inconsistent shard refuses the commit: nothing is
committed, the lock is released (a retry once the shard has run commits), the shards'
objects stay for that retry (or prune's grace rule).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from lastgood.backups.keys import object_key
from lastgood.backups.manifest import BackupManifest, ObjectEntry
from lastgood.backups.run import (
    METRIC_DURATION,
    METRIC_FAILURE,
    BackupResult,
    _audit,
    _baseline_ratios,
    _emit,
    _mark_suspect,
    _not_acquired,
    _previous_good,
)
from lastgood.backups.shard import ShardRecord, read_record, resolve_slot, shard_backup_id, sharded_source
from lastgood.backups.store import BackupStore
from lastgood.core.errors import BackupError, LastgoodError
from lastgood.core.observability import logger
from lastgood.core.timefmt import iso_z, parse_time
from lastgood.storage.s3 import is_not_found


def _records(store: BackupStore, source: str, backup_id: str, of: int) -> list[ShardRecord]:
    records = {i: read_record(store, source, backup_id, i, of) for i in range(of)}
    missing = [f"{i}/{of}" for i, record in records.items() if record is None]
    if missing:
        raise BackupError(
            f"cannot commit {source}/{backup_id}: shard(s) {', '.join(missing)} have no record "
            "(not run yet, or failed); nothing was committed"
        )
    return [r for r in records.values() if r is not None]


def _check_together(records: list[ShardRecord], backup_id: str) -> None:
    """One server, one database, each collection and object name in exactly one shard, in its own."""
    from lastgood.engines.mongodb_dump import collection_of, shard_of

    servers = {r.source_identity.server_id for r in records if r.source_identity is not None}
    if len(servers) > 1:
        raise BackupError(
            f"cannot commit {backup_id}: its shards were read from different servers {sorted(servers)}"
        )
    databases = {str(r.extra.get("database")) for r in records if r.extra.get("database")}
    if len(databases) > 1:
        raise BackupError(
            f"cannot commit {backup_id}: its shards dumped different databases {sorted(databases)}"
        )
    seen: dict[str, str] = {}
    for record in records:
        for collection in record.collections:
            if shard_of(collection, record.of) != record.shard:
                raise BackupError(
                    f"cannot commit {backup_id}: shard {record.label} lists {collection!r}, "
                    f"which belongs to shard {shard_of(collection, record.of)}/{record.of}"
                )
        for entry in record.objects:
            if collection_of(entry.key) not in record.collections:
                raise BackupError(
                    f"cannot commit {backup_id}: shard {record.label} lists {entry.key!r}, "
                    "which is not an object of its collections"
                )
            if entry.key in seen:
                raise BackupError(
                    f"cannot commit {backup_id}: {entry.key!r} is listed by shards {seen[entry.key]} "
                    f"and {record.label}"
                )
            seen[entry.key] = record.label


def _check_stored(store: BackupStore, source: str, backup_id: str, records: list[ShardRecord]) -> None:
    """Every listed object is in the bucket with the size its shard recorded (HEAD)."""
    for record in records:
        for entry in record.objects:
            key = object_key(source, backup_id, entry.key)
            try:
                size = int(store.s3.head_object(Bucket=store.bucket, Key=key)["ContentLength"])
            except ClientError as exc:
                if is_not_found(exc):
                    raise BackupError(
                        f"cannot commit {backup_id}: shard {record.label} lists {entry.key!r}, which is not "
                        "in the bucket; nothing was committed"
                    ) from None
                raise
            if size != entry.bytes:
                raise BackupError(
                    f"cannot commit {backup_id}: {entry.key!r} holds {size} bytes, shard {record.label} "
                    f"recorded {entry.bytes}; nothing was committed"
                )


def _merged_extra(records: list[ShardRecord]) -> dict[str, Any]:
    """The dumps' `extra` as one dump's: numbers summed, lists joined, the rest as the first shard's."""
    merged: dict[str, Any] = {}
    for record in records:
        for key, value in record.extra.items():
            if key not in merged:
                merged[key] = list(value) if isinstance(value, list) else value
            elif isinstance(value, bool):
                continue
            elif isinstance(value, int | float) and isinstance(merged[key], int | float):
                merged[key] += value
            elif isinstance(value, list) and isinstance(merged[key], list):
                merged[key] = sorted({*map(str, merged[key]), *map(str, value)})
    return merged | {"shards": len(records)}


def build_manifest(store: BackupStore, records: list[ShardRecord], *, client_side: bool) -> BackupManifest:
    """The manifest a single-process dump of the same collections would have (objects by name)."""
    first = records[0]
    objects: list[ObjectEntry] = sorted((e for r in records for e in r.objects), key=lambda e: e.key)
    counts = dict(sorted((ns, n) for r in records for ns, n in r.counts.items()))
    identity = next((r.source_identity for r in records if r.source_identity is not None), None)
    rss = [r.peak_rss_bytes for r in records if r.peak_rss_bytes is not None]
    return BackupManifest.build(
        backup_id=first.backup_id,
        source=first.source,
        engine=first.engine,
        started_at=min(parse_time(r.started_at) for r in records),
        finished_at=max(parse_time(r.finished_at) for r in records),
        objects=objects,
        server_version=first.server_version,
        slot=parse_time(first.slot),
        counts=counts,
        tool_versions=first.tool_versions,
        kms_key_id=store.kms_key_id,
        client_side=client_side,
        source_identity=identity,
        peak_rss_bytes=max(rss) if rss else None,
        extra=_merged_extra(records),
    )


def commit_shards(
    source_name: str,
    *,
    slot: datetime | str,
    of: int,
    store: BackupStore | None = None,
    now: datetime | None = None,
) -> BackupResult:
    """Commit the slot's sharded backup from its `of` shard records (see the module docstring)."""
    from lastgood.backups.finish import finish_committed

    source = sharded_source(source_name, of)
    store = store or BackupStore.from_settings()
    started = now or datetime.now(UTC)
    slot_time = resolve_slot(source, slot, started)
    backup_id = shard_backup_id(source.name, slot_time)
    log_extra = {"source": source.name, "backup_id": backup_id, "slot": iso_z(slot_time), "shards": of}
    lock = store.acquire_slot_lock(source.name, slot_time, backup_id=backup_id, now=started)
    if not lock.acquired:
        return _not_acquired(store, lock, log_extra)
    previous = _previous_good(store, source.name)
    try:
        records = _records(store, source.name, backup_id, of)
        _check_together(records, backup_id)
        _check_stored(store, source.name, backup_id, records)
        manifest = build_manifest(store, records, client_side=source.client_side_encryption)
        ratios = _baseline_ratios(previous, manifest)
        manifest = _mark_suspect(source, manifest, ratios, manifest.counts)
        writer = store.writer(source.name, backup_id, client_side_encryption=source.client_side_encryption)
        writer.entries.extend(manifest.objects)  # written by the shards; commit checks the list
        writer.commit(manifest)
    except BaseException as exc:
        store.release_slot_lock(lock)  # the shards' objects stay: a retry commits them
        cause = f"{type(exc).__name__}: {exc}"[:1500]
        duration = (datetime.now(UTC) - started).total_seconds()
        logger.error("sharded backup commit failed", extra={**log_extra, "error": cause})
        _emit(source.name, **{METRIC_FAILURE: ("Count", 1), METRIC_DURATION: ("Seconds", duration)})
        _audit(store, {"source": source.name, "backup_id": backup_id, "result": "failed", "error": cause})
        if isinstance(exc, LastgoodError):
            raise
        if isinstance(exc, Exception):
            raise BackupError(
                f"commit of {source.name!r} {backup_id} failed; nothing was committed: {cause}"
            ) from None
        raise
    return finish_committed(
        store, manifest, lock=lock, slot_time=slot_time, ratios=ratios, log_extra=log_extra
    )

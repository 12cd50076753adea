"""A MongoDB backup split over several Fargate tasks: one shard of its collections per task.

    run_shard("mongodb", slot="2026-03-01T02:00:00Z", shard=1, of=3)   # lastgood backup … --shard 1/3
    commit_shards("mongodb", slot=…, of=3)      # lastgood backup … --commit-shards 3 (shard_commit)

All shards of one slot write into ONE backup, whose id is derived from (source, slot)
(`shard_backup_id`), under the same object names a single-process dump uses
(`<db>/<coll>.bson.gz` + `.metadata.json.gz`). A shard dumps the collections that
`mongodb_dump.shard_of` puts in it (the source's include/exclude first), then writes its
create-once `ShardRecord` (`shards/<i>-of-<n>.json` below the backup's prefix,
`lastgood.backups.keys`): what it wrote (the manifest's `ObjectEntry`s), its counts and
the server it read. A shard whose record exists is `skipped` (a retry takes nothing
twice). A failed shard aborts its uploads and writes no record (it deletes what it wrote
where it may: in AWS only prune deletes backups, so its finished objects stay); its retry
keeps the collections an earlier attempt finished (`lastgood.backups.shard_adopt`: backup
objects are create-once) and dumps the rest. Nothing of a sharded backup is restorable until
`commit_shards` writes its manifest from every shard's record.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from lastgood import __version__
from lastgood.backups.estimate import peak_rss_bytes
from lastgood.backups.keys import shard_record_key
from lastgood.backups.manifest import ObjectEntry, new_backup_id, slot_label
from lastgood.backups.run import METRIC_FAILURE, BackupResult, _audit, _emit, _identity, engine_options
from lastgood.backups.run import resolve_slot as resolve_slot
from lastgood.backups.shard_adopt import adopt_finished
from lastgood.backups.store import BackupStore
from lastgood.core.config import SourceConfig, get_config
from lastgood.core.errors import (
    BackupError,
    BackupIntegrityError,
    BackupSourceUnavailable,
    ConfigError,
    LastgoodError,
    SourceUnavailable,
)
from lastgood.core.observability import logger
from lastgood.core.redact import redact_text
from lastgood.core.settings import get_secret
from lastgood.core.timefmt import iso_z
from lastgood.engines.base import ServerIdentity
from lastgood.storage.s3 import is_precondition_failed

SHARD_RECORD_FORMAT = 1
MAX_SHARDS = 64  # one Fargate task per shard; more tasks than collections buy nothing


class ShardRecord(BaseModel):
    """What one shard wrote into its sharded backup (`shards/<shard>-of-<of>.json`, create-once)."""

    model_config = ConfigDict(extra="ignore")

    format: int = SHARD_RECORD_FORMAT
    backup_id: str
    source: str
    engine: str
    slot: str
    shard: int = Field(ge=0)
    of: int = Field(ge=1, le=MAX_SHARDS)
    collections: list[str] = Field(default_factory=list)
    objects: list[ObjectEntry] = Field(default_factory=list)
    counts: dict[str, int] = Field(default_factory=dict)
    server_version: str | None = None
    tool_versions: dict[str, str] = Field(default_factory=dict)
    source_identity: ServerIdentity | None = None
    peak_rss_bytes: int | None = Field(None, ge=0)
    extra: dict[str, Any] = Field(default_factory=dict)
    started_at: str
    finished_at: str

    @model_validator(mode="after")
    def _check(self) -> ShardRecord:
        if self.format != SHARD_RECORD_FORMAT:
            raise ValueError(f"unsupported shard record format {self.format}")
        if self.shard >= self.of:
            raise ValueError(f"shard {self.shard} of {self.of}: the index must be below the count")
        return self

    @property
    def label(self) -> str:
        return f"{self.shard}/{self.of}"

    def to_bytes(self) -> bytes:
        return (json.dumps(self.model_dump(mode="json"), indent=2, ensure_ascii=False) + "\n").encode("utf-8")

    @classmethod
    def from_json(cls, data: bytes, *, where: str) -> ShardRecord:
        try:
            return cls.model_validate(json.loads(data))
        except (ValueError, ValidationError) as exc:
            raise BackupIntegrityError(f"{where} is unreadable: {str(exc).splitlines()[0][:200]}") from None


def shard_backup_id(source: str, slot: datetime) -> str:
    """The one backup id every shard (and the commit) of `source`'s `slot` uses: the slot's time
    and 6 hex digits of SHA-256(source, slot), the same in every process."""
    label = slot_label(slot)
    rand = hashlib.sha256(f"{source}\n{label}".encode()).hexdigest()[:6]
    return new_backup_id(slot, rand=rand)


def parse_shard(text: str) -> tuple[int, int]:
    """`"1/3"` → (1, 3); anything else is a UsageError naming the expected form."""
    from lastgood.core.errors import UsageError

    index, sep, count = text.partition("/")
    if not (sep and index.isdigit() and count.isdigit()) or not 0 <= int(index) < int(count) <= MAX_SHARDS:
        raise UsageError(f"--shard {text!r}: expected I/N with 0 <= I < N <= {MAX_SHARDS} (e.g. 0/3)")
    return int(index), int(count)


def sharded_source(name: str, of: int) -> SourceConfig:
    """The source, if it can be sharded: MongoDB with runner = "fargate" (ConfigError otherwise)."""
    source = get_config().source(name)
    if source.engine != "mongodb" or source.runner != "fargate":
        raise ConfigError(
            f"source {name!r} cannot be backed up in shards: sharding is for a MongoDB source with "
            f'runner = "fargate" (this one is {source.engine} on {source.runner})'
        )
    if not 1 <= of <= MAX_SHARDS:
        raise ConfigError(f"a sharded backup has 1 to {MAX_SHARDS} shards, not {of}")
    return source


def read_record(store: BackupStore, source: str, backup_id: str, shard: int, of: int) -> ShardRecord | None:
    """The shard's record (checked to describe that shard), or None when it has none."""
    key = shard_record_key(source, backup_id, shard, of)
    body = store.get_bytes(key)
    if body is None:
        return None
    where = f"s3://{store.bucket}/{key}"
    record = ShardRecord.from_json(body, where=where)
    if (record.source, record.backup_id, record.shard, record.of) != (source, backup_id, shard, of):
        raise BackupIntegrityError(
            f"{where} describes shard {record.label} of {record.source}/{record.backup_id}"
        )
    return record


def _put_record(store: BackupStore, record: ShardRecord) -> None:
    """Create-once; a 412 is success only when the stored record is ours (a lost answer's retry)."""
    key = shard_record_key(record.source, record.backup_id, record.shard, record.of)
    body = record.to_bytes()
    try:
        store.put_bytes(key, body, if_none_match=True)
    except ClientError as exc:
        if not is_precondition_failed(exc):
            raise
        stored = read_record(store, record.source, record.backup_id, record.shard, record.of)
        if stored is None or stored.model_dump() != record.model_dump():
            raise BackupError(
                f"{key} already holds another record of this shard; refusing to replace it"
            ) from None


def run_shard(
    source_name: str,
    *,
    slot: datetime | str,
    shard: int,
    of: int,
    store: BackupStore | None = None,
    now: datetime | None = None,
) -> BackupResult:
    """Dump shard `shard` of `of` of the source's collections into the slot's sharded backup and
    write its record; `skipped` when the record (or the backup's manifest) exists."""
    from lastgood.engines import get_engine

    source = sharded_source(source_name, of)
    store = store or BackupStore.from_settings()
    started = now or datetime.now(UTC)
    slot_time = resolve_slot(source, slot, started)
    backup_id = shard_backup_id(source.name, slot_time)
    label = f"{shard}/{of}"
    log_extra = {"source": source.name, "backup_id": backup_id, "slot": iso_z(slot_time), "shard": label}
    done = read_record(store, source.name, backup_id, shard, of)
    if done is not None or store.has_manifest(source.name, backup_id):
        message = f"skipped (shard {label} of backup {source.name}/{backup_id} is already written)"
        logger.info(message, extra=log_extra)
        return BackupResult("skipped", source.name, message, backup_id=backup_id, slot=slot_time)
    writer = store.writer(source.name, backup_id, client_side_encryption=source.client_side_encryption)
    secrets: tuple[str, ...] = ()
    try:
        url = str(get_secret(source.url_secret))
        secrets = (url,)
        logger.info("backup shard started", extra=log_extra)
        identity = _identity(source, url, None, own=True)
        kept = adopt_finished(
            store, source.name, backup_id, shard, of, client_side=source.client_side_encryption
        )
        options = engine_options(source).model_copy(
            update={"shard": (shard, of), "skip_collections": tuple(kept.collections)}
        )
        dumped = get_engine(source.engine).dump(url, writer, options=options)
        counts = dumped.extra.get("counts")
        counts = dict(sorted({**(counts if isinstance(counts, dict) else {}), **kept.counts}.items()))
        extra = {k: v for k, v in dumped.extra.items() if k != "counts"}
        if kept.collections:
            extra["raw_bson_bytes"] = int(extra.get("raw_bson_bytes") or 0) + kept.raw_bson_bytes
        record = ShardRecord(
            backup_id=backup_id,
            source=source.name,
            engine=source.engine,
            slot=iso_z(slot_time),
            shard=shard,
            of=of,
            collections=sorted(namespace.split(".", 1)[1] for namespace in counts),
            objects=sorted([*writer.entries, *kept.entries], key=lambda e: e.key),
            counts=counts,
            server_version=dumped.server_version,
            tool_versions={"lastgood": __version__, **dumped.tool_versions},
            source_identity=identity,
            peak_rss_bytes=peak_rss_bytes(),
            extra=extra,
            started_at=iso_z(started),
            finished_at=iso_z(datetime.now(UTC)),
        )
        _put_record(store, record)
    except BaseException as exc:
        writer.discard()
        cause = redact_text(f"{type(exc).__name__}: {exc}", secrets)[:1500]
        logger.error("backup shard failed", extra={**log_extra, "error": cause})
        _emit(source.name, **{METRIC_FAILURE: ("Count", 1)})
        _audit(
            store,
            {
                "source": source.name,
                "backup_id": backup_id,
                "shard": label,
                "result": "failed",
                "error": cause,
            },
        )
        if isinstance(exc, SourceUnavailable):
            raise BackupSourceUnavailable(
                f"shard {label} of {source.name!r} failed: the source is unavailable; no record written: {cause}"
            ) from None
        if isinstance(exc, LastgoodError):
            raise
        if isinstance(exc, Exception):
            raise BackupError(
                f"shard {label} of {source.name!r} failed; no record written: {cause}"
            ) from None
        raise
    size = sum(e.bytes for e in record.objects)
    message = (
        f"{source.name} backup {backup_id} shard {label}: {len(record.collections)} collection(s), "
        f"{size} bytes in {len(record.objects)} object(s); commit with --commit-shards {of}"
    )
    logger.info("backup shard written", extra={**log_extra, "bytes": size})
    return BackupResult("ok", source.name, message, backup_id=backup_id, slot=slot_time)

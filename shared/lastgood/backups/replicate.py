"""`lastgood replicate`: copy committed backups to the replica bucket with the backup commit protocol.

In AWS the replica is filled by S3 Replication (template.yaml: replication role, KMS
re-encryption, replication time control). Where S3 does not replicate — the devstack's moto,
the tests, the demo, an S3-compatible store — this is the stand-in, and it commits a copy the
way a backup commits itself (`lastgood.backups.writer`):

1. every data object of a committed backup is streamed from the primary through
   `VerifyingReader` (size + SHA-256 against the manifest, checked at the end of the object)
   into a conditional-create multipart upload in the replica (`IfNoneMatch="*"`,
   SSE-KMS with the replica's key); an object already there from an interrupted copy is
   re-hashed against the manifest instead of being rewritten;
2. the backup's pin records and acceptance record are copied (create-once), so the replica's
   prune sees the pins before it can see the backup;
3. `manifest.json` LAST, with `IfNoneMatch="*"`, after the writer checked it lists exactly
   the objects written (key, size, SHA-256): without it the copy is incomplete, never
   restored, and removed by the replica's prune after its grace period.

A backup whose manifest is already in the replica is not copied again: the same manifest is
"already there" (new pin records are still copied); a different one is a conflict, reported
and never overwritten. `verification.json` is not copied: the replica's drills record their own.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from lastgood.backups.catalog import BackupListing
from lastgood.backups.keys import ACCEPTANCE_NAME, is_pin_key, object_key, parse_key
from lastgood.backups.reader import VerifyingReader
from lastgood.core.errors import BackupIntegrityError, LastgoodError
from lastgood.core.observability import logger
from lastgood.storage.s3 import is_precondition_failed

if TYPE_CHECKING:
    from lastgood.backups.manifest import BackupManifest
    from lastgood.backups.store import BackupStore

COPY_CHUNK = 1024 * 1024


@dataclass
class ReplicateResult:
    source: str
    copied: list[str] = field(default_factory=list)  # committed to the replica by this run
    already: list[str] = field(default_factory=list)  # the same manifest was already there
    conflicts: dict[str, str] = field(default_factory=dict)  # a different manifest: left alone
    failed: dict[str, str] = field(default_factory=dict)  # not committed (incomplete in the replica)
    records_copied: int = 0  # pin / acceptance records
    bytes_copied: int = 0

    @property
    def ok(self) -> bool:
        return not self.conflicts and not self.failed

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "ok": self.ok,
            "copied": self.copied,
            "already": self.already,
            "conflicts": self.conflicts,
            "failed": self.failed,
            "records_copied": self.records_copied,
            "bytes_copied": self.bytes_copied,
        }


def replicate_source(
    source: str,
    *,
    primary: BackupStore,
    replica: BackupStore,
    backup_ids: list[str] | None = None,
) -> ReplicateResult:
    """Copy every committed backup of `source` (or only `backup_ids`) missing from the replica."""
    result = ReplicateResult(source)
    wanted = set(backup_ids) if backup_ids else None
    committed = [b for b in primary.list_backups(source) if b.committed and b.manifest is not None]
    there = {b.backup_id: b for b in replica.list_backups(source, with_details=False)}
    for item in reversed(committed):  # oldest first: a catch-up commits the newest last
        if wanted is not None and item.backup_id not in wanted:
            continue
        assert item.manifest is not None
        copy = there.get(item.backup_id)
        try:
            if copy is not None and copy.status == "complete":
                if _same(replica, item.manifest):
                    result.already.append(item.backup_id)
                    result.records_copied += _copy_records(primary, replica, item, set(copy.keys))
                else:
                    result.conflicts[item.backup_id] = (
                        "the replica holds a different manifest for this backup: left alone, never overwritten"
                    )
                continue
            copied, records = copy_backup(primary, replica, item, existing=set(copy.keys) if copy else set())
            result.bytes_copied += copied
            result.records_copied += records
            result.copied.append(item.backup_id)
        except (LastgoodError, ClientError, BotoCoreError) as exc:
            result.failed[item.backup_id] = f"{type(exc).__name__}: {exc}"[:300]
            logger.error(
                "replica copy failed",
                extra={"source": source, "backup": item.backup_id, "error": str(exc)[:300]},
            )
    logger.info("replicate finished", extra=result.as_dict())
    return result


def _same(replica: BackupStore, manifest: BackupManifest) -> bool:
    try:
        stored = replica.read_manifest(manifest.source, manifest.backup_id)
    except BackupIntegrityError:
        return False
    return stored.to_dict() == manifest.to_dict()


def copy_backup(
    primary: BackupStore, replica: BackupStore, item: BackupListing, *, existing: set[str]
) -> tuple[int, int]:
    """Stream one committed backup into the replica and commit it there (manifest last).
    Returns (data bytes copied, records copied)."""
    manifest = item.manifest
    assert manifest is not None
    copied = 0
    with replica.writer(manifest.source, manifest.backup_id) as writer:
        for entry in manifest.objects:
            if object_key(manifest.source, manifest.backup_id, entry.key) in existing:
                # left by an interrupted copy: proven against the manifest, never rewritten
                replica.verify_object(manifest, entry.key)
                writer.entries.append(entry)
                continue
            with (
                primary.open_object(manifest.source, manifest.backup_id, entry.key) as body,
                writer.open_object(entry.key, content_type=entry.content_type) as out,
            ):
                reader = VerifyingReader(body, manifest, entry)  # raises at EOF on a mismatch
                while chunk := reader.read(COPY_CHUNK):
                    out.write(chunk)
                    copied += len(chunk)
        records = _copy_records(primary, replica, item, existing)  # pins before the manifest is visible
        writer.commit(manifest)
    return copied, records


def _copy_records(primary: BackupStore, replica: BackupStore, item: BackupListing, existing: set[str]) -> int:
    """Pin and acceptance records of a backup missing from the replica (create-once); how many."""
    count = 0
    for key in item.keys:
        parsed = parse_key(key)
        if parsed is None or key in existing:
            continue
        if not (is_pin_key(key) or parsed.relpath == ACCEPTANCE_NAME):
            continue
        body = primary.s3.get_object(Bucket=primary.bucket, Key=key)["Body"].read()
        try:
            replica.put_bytes(key, body, if_none_match=True)  # the primary's exact bytes
        except ClientError as exc:
            if not is_precondition_failed(exc):  # 412: the record is there already (create-once)
                raise
            continue
        existing.add(key)
        count += 1
    return count


def replicate(
    sources: list[str], *, primary: BackupStore, replica: BackupStore
) -> dict[str, ReplicateResult]:
    """`replicate_source` for each source; a source whose listing fails is reported, not raised."""
    out: dict[str, ReplicateResult] = {}
    for name in sources:
        try:
            out[name] = replicate_source(name, primary=primary, replica=replica)
        except (ClientError, BotoCoreError) as exc:
            result = ReplicateResult(name)
            result.failed["*"] = f"listing failed: {type(exc).__name__}: {exc}"[:300]
            out[name] = result
    return out


__all__ = ["ReplicateResult", "copy_backup", "replicate", "replicate_source"]

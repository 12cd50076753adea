"""The `max_shrink` baseline: counts accepted for publishing within a dataset's `shrink_window`.

Why a history at all: comparing a new count only with the last published one lets a series
of allowed drops empty a dataset (296 → 178 → 107 → 65 …, each under 50 %). The guard
compares with the LARGEST count accepted within the window instead.

Where it lives: `history/<name>.json` (`PublishHistory`, `site.documents`), one small
document per dataset, read once per run and written (conditionally) only when a new
version is about to go live — before live is written, so a crash between the two leaves
a history that is stricter than what was published, never laxer.

Under faults:

- missing (first run after an upgrade, deleted) or damaged (unparseable): the history is
  rebuilt from the immutable `versions/<name>/<sha>.json` copies modified within the window
  (a LIST and one HEAD each, at most `REBUILD_LIMIT` newest), so the baseline survives; the
  rebuild is stored by the next run that publishes or finds the dataset unchanged;
- two runs recording at once: the write is `IfMatch` the ETag read (`IfNoneMatch: *` for a
  first write); the loser re-reads, merges its entry and retries (`RECORD_ATTEMPTS`);
- S3 failing on the read or the write: the error propagates and the dataset fails
  (nothing is published without a baseline).

Cost: one GET of a few hundred bytes per dataset and run; one PUT per new version.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import ClientError

from lastgood.core.observability import logger
from lastgood.site.canonical import iso_ms
from lastgood.site.documents import HistoryEntry, PublishedMeta, PublishHistory
from lastgood.site.keys import history_key, versions_prefix
from lastgood.storage.s3 import is_not_found, is_precondition_failed

REBUILD_LIMIT = 100  # newest version copies HEADed when the history document must be rebuilt
RECORD_ATTEMPTS = 3


@dataclass(frozen=True)
class HistoryRead:
    """The history as regenerate uses it, and what is needed to write it back conditionally."""

    history: PublishHistory
    etag: str | None  # of the stored document (None: there is none → IfNoneMatch on write)
    rebuilt: bool = False  # from versions/ (the document was missing or damaged)
    problem: str | None = None  # why the stored document was not used

    def largest_since(self, cutoff: str) -> HistoryEntry | None:
        return self.history.largest_since(cutoff)

    @property
    def newest_sequence(self) -> int:
        newest = self.history.newest
        return (newest.sequence or 0) if newest is not None else 0


def cutoff(window_seconds: int, now: datetime | None = None) -> str:
    """The oldest `generated_at` still inside the window (`iso_ms` form)."""
    return iso_ms((now or datetime.now(UTC)) - timedelta(seconds=window_seconds))


def read_history(s3: Any, bucket: str, name: str, since: str) -> HistoryRead:
    """The stored history, or one rebuilt from the version copies modified since `since`."""
    try:
        obj = s3.get_object(Bucket=bucket, Key=history_key(name))
    except ClientError as exc:
        if not is_not_found(exc):
            raise
        return HistoryRead(
            rebuild(s3, bucket, name, since), None, rebuilt=True, problem="no history document"
        )
    try:
        body: bytes = obj["Body"].read()
    finally:
        obj["Body"].close()
    etag = str(obj.get("ETag", ""))
    try:
        history = PublishHistory.parse(body)
        if history.dataset != name:
            raise ValueError(f"it belongs to dataset {history.dataset!r}")
    except ValueError as exc:
        problem = f"{history_key(name)} is damaged ({str(exc).splitlines()[0][:200]}); rebuilt from versions/"
        logger.warning(problem)
        return HistoryRead(rebuild(s3, bucket, name, since), etag, rebuilt=True, problem=problem)
    return HistoryRead(history, etag)


def rebuild(s3: Any, bucket: str, name: str, since: str) -> PublishHistory:
    """Entries from the `versions/<name>/` copies modified since `since` (their PublishedMeta)."""
    listed: list[tuple[datetime, str]] = []
    paginator = s3.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=versions_prefix(name)):
        for item in page.get("Contents", []):
            modified: datetime = item["LastModified"]
            if iso_ms(modified) >= since:
                listed.append((modified, str(item["Key"])))
    listed.sort(reverse=True)
    entries: list[HistoryEntry] = []
    for modified, key in listed[:REBUILD_LIMIT]:
        meta = PublishedMeta.from_s3(s3.head_object(Bucket=bucket, Key=key).get("Metadata"))
        if meta.sha256 is None or meta.count is None:
            continue  # not a version lastgood wrote: no count to compare with
        entries.append(
            HistoryEntry(
                sha256=meta.sha256,
                count=meta.count,
                generated_at=meta.generated_at or iso_ms(modified),
                sequence=meta.sequence,
            )
        )
    entries.sort(key=lambda e: (e.generated_at, e.sequence or 0))
    return PublishHistory(dataset=name, entries=tuple(entries))


def save_rebuilt(s3: Any, bucket: str, name: str, read: HistoryRead) -> bool:
    """Store a history that had to be rebuilt, so the next runs read one small document again
    instead of listing versions/ (conditional; a concurrent writer wins). True when written."""
    if not read.rebuilt:
        return False
    condition = {"IfMatch": read.etag} if read.etag else {"IfNoneMatch": "*"}
    try:
        s3.put_object(
            Bucket=bucket,
            Key=history_key(name),
            Body=read.history.render(),
            ContentType="application/json",
            **condition,
        )
    except ClientError as exc:
        if is_precondition_failed(exc) or is_not_found(exc):
            return False  # someone recorded a version meanwhile: theirs is newer
        raise
    return True


def record(
    s3: Any, bucket: str, name: str, entry: HistoryEntry, keep_since: str, seen: HistoryRead | None
) -> None:
    """Add `entry` (conditional write; on a concurrent change re-read, merge, retry)."""
    current = seen or read_history(s3, bucket, name, keep_since)
    for _ in range(RECORD_ATTEMPTS):
        newest = current.history.newest
        if not current.rebuilt and newest is not None and newest.sha256 == entry.sha256:
            return  # already the newest accepted version (a repair or a retried run)
        body = current.history.with_entry(entry, keep_since).render()
        condition = {"IfMatch": current.etag} if current.etag else {"IfNoneMatch": "*"}
        try:
            s3.put_object(
                Bucket=bucket, Key=history_key(name), Body=body, ContentType="application/json", **condition
            )
            return
        except ClientError as exc:
            if not (is_precondition_failed(exc) or is_not_found(exc)):
                raise
        current = read_history(s3, bucket, name, keep_since)
    from lastgood.site.publish import ConcurrentUpdate  # publish imports this module

    raise ConcurrentUpdate(
        f"concurrent update: {history_key(name)} changed {RECORD_ATTEMPTS} times while recording "
        f"{entry.sha256[:12]}; nothing was published"
    )

"""The site bucket: live / last-good / versions objects and the CloudFront invalidation.

Layout (`lastgood.site.keys`; bucket `SITE_BUCKET`; CloudFront serves `/data/<name>.json` from an
origin group — primary origin path `/live`, failover `/last-good`)::

    versions/<name>/<sha256>.json   immutable content-addressed copy (max-age one year, immutable)
    live/data/<name>.json           what browsers get (max-age 60, stale-while-revalidate,
                                    stale-if-error: a CDN keeps serving when the origin fails)
    last-good/data/<name>.json      the last published good copy (CloudFront's failover origin,
                                    the loader's second S3 layer)

Every object is the dataset's canonical JSON array (`lastgood.site.canonical`) with
user metadata `PublishedMeta` (`sha256`, `count`, `generated-at`, `sequence`) and S3's
SHA-256 checksum (`ChecksumSHA256`: on AWS S3 refuses a body that does not match it).

Content, not labels (issue 14): regenerate reads live/ and last-good/ back (`inspect`: a GET
with `ChecksumMode=ENABLED`) and hashes the bytes. An object is *intact* when its bytes hash
to its `sha256` label (and to S3's stored checksum, which botocore checks on the way in);
"unchanged" means both objects are intact AND hold the SHA-256 just rendered. The label or
S3's checksum alone is never trusted: moto (and any writer that copies the metadata) keeps a
label on other bytes, and a plain `put_object` by anything else carries no SHA-256 checksum
at all. Cost: two GETs per dataset and run instead of two HEADs — the same request class and
price, free in-region transfer, and bytes the size of the JSON the run has just rendered in
memory anyway (prompts: ~60 KB); it also means regenerate never depends on HEAD.

Publishing order (`SiteStore.publish`): history entry (`lastgood.site.history`) → version
copy → live with a conditional write (`IfMatch` = the ETag read before the query, or
`IfNoneMatch: *` when there was no live object; a concurrent regenerate that already
replaced it makes ours fail with 412 → `ConcurrentUpdate`, so two runs never interleave and
live is always one run's complete bytes) → last-good (`promote`): written from the rendered
bytes, conditionally (`IfMatch` on the ETag read / `IfNoneMatch: *`), and never over a newer
version — `PublishedMeta.sequence` is one more than the live object replaced, so a delayed
promote of an older run finds a higher sequence and leaves last-good alone → the caller
sends one invalidation for every changed path (`invalidate`).
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError, FlexibleChecksumError

from lastgood.core.errors import LastgoodError
from lastgood.core.observability import logger
from lastgood.site import history as history_store
from lastgood.site.documents import HistoryEntry, PublishedMeta
from lastgood.site.keys import last_good_key, live_key, version_key
from lastgood.storage.s3 import error_code, is_not_found, is_precondition_failed

PROMOTE_ATTEMPTS = 3

LIVE_CACHE_CONTROL = "public, max-age=60, stale-while-revalidate=300, stale-if-error=86400"
VERSION_CACHE_CONTROL = "public, max-age=31536000, immutable"
CONTENT_TYPE = "application/json"


class ConcurrentUpdate(LastgoodError):
    """live/ changed between our read and our conditional write: another regenerate published first."""


@dataclass(frozen=True)
class ObjectInfo:
    """A HEAD of a published object."""

    key: str
    etag: str
    sha256: str | None
    count: int | None
    generated_at: str | None
    last_modified: datetime | None
    sequence: int | None = None
    body_sha256: str | None = None  # SHA-256 of the bytes read back (None: only HEADed)
    problem: str | None = None  # why the bytes are not what the label says (None: they are)

    @classmethod
    def from_head(
        cls, key: str, head: dict[str, Any], body_sha256: str | None = None, problem: str | None = None
    ) -> ObjectInfo:
        meta = PublishedMeta.from_s3(head.get("Metadata"))
        if body_sha256 is not None and problem is None and meta.sha256 != body_sha256:
            label = (meta.sha256 or "none")[:12]
            problem = f"its bytes hash to {body_sha256[:12]}…, its label says {label}…"
        return cls(
            key=key,
            etag=str(head.get("ETag", "")),
            sha256=meta.sha256,
            count=meta.count,
            generated_at=meta.generated_at,
            last_modified=head.get("LastModified"),
            sequence=meta.sequence,
            body_sha256=body_sha256,
            problem=problem,
        )

    @property
    def meta(self) -> PublishedMeta:
        return PublishedMeta(
            sha256=self.sha256, count=self.count, generated_at=self.generated_at, sequence=self.sequence
        )

    @property
    def damaged(self) -> bool:
        """Read back and its bytes are not what its label (or S3's checksum) says."""
        return self.problem is not None

    def holds(self, sha256: str) -> bool:
        """Read back, intact, and exactly the version `sha256`."""
        return self.body_sha256 == sha256 and self.problem is None and self.sha256 == sha256


@dataclass(frozen=True)
class Current:
    """What is published now for one dataset (read before regenerating)."""

    live: ObjectInfo | None
    last_good: ObjectInfo | None

    @property
    def previous_count(self) -> int | None:
        """The baseline for the shrink guard: last-good's count, else live's."""
        for info in (self.last_good, self.live):
            if info is not None and info.count is not None:
                return info.count
        return None


@dataclass(frozen=True)
class PublishResult:
    live_changed: bool  # live/ was written (its CloudFront path needs an invalidation)
    last_good_changed: bool
    live_etag: str
    repaired: tuple[str, ...] = ()  # "live" / "last-good": a damaged object was rewritten
    sequence: int | None = None  # the published version's sequence
    notes: tuple[str, ...] = field(default_factory=tuple)  # e.g. why last-good was left alone


def checksum_b64(sha256: str) -> str:
    """S3's `ChecksumSHA256` form of a hex SHA-256."""
    return base64.b64encode(bytes.fromhex(sha256)).decode("ascii")


class SiteStore:
    """Reads and writes the site bucket (any boto3 S3 client; `from_settings` for the real one)."""

    def __init__(self, bucket: str, s3: Any, kms_key_id: str | None = None) -> None:
        self.bucket = bucket
        self.s3 = s3
        self.kms_key_id = kms_key_id

    @classmethod
    def from_settings(cls, *, fast: bool = False) -> SiteStore:
        from lastgood.core import aws
        from lastgood.core.settings import get_settings

        settings = get_settings()
        return cls(settings.require("site_bucket"), aws.client("s3", fast=fast), settings.kms_key_id)

    # ------------------------------------------------------------------ reads

    def head(self, key: str) -> ObjectInfo | None:
        try:
            return ObjectInfo.from_head(key, self.s3.head_object(Bucket=self.bucket, Key=key))
        except ClientError as exc:
            if is_not_found(exc):
                return None
            raise

    def inspect(self, key: str) -> ObjectInfo | None:
        """GET `key` and hash its bytes: `ObjectInfo.body_sha256` / `problem` say whether it is intact."""
        try:
            obj = self.s3.get_object(Bucket=self.bucket, Key=key, ChecksumMode="ENABLED")
        except ClientError as exc:
            if is_not_found(exc):
                return None
            raise
        try:
            body: bytes = obj["Body"].read()
        except FlexibleChecksumError as exc:  # S3's stored checksum is not that of the bytes it sent
            return ObjectInfo.from_head(key, obj, body_sha256="", problem=f"S3 checksum mismatch ({exc})")
        finally:
            obj["Body"].close()
        return ObjectInfo.from_head(key, obj, body_sha256=hashlib.sha256(body).hexdigest())

    def current(self, name: str) -> Current:
        """live/ and last-good/ read back and checked (`inspect`); no HEAD involved."""
        return Current(live=self.inspect(live_key(name)), last_good=self.inspect(last_good_key(name)))

    def history(self, name: str, window_seconds: int) -> history_store.HistoryRead:
        """The counts accepted within the window (`lastgood.site.history`)."""
        return history_store.read_history(self.s3, self.bucket, name, history_store.cutoff(window_seconds))

    def read(self, key: str) -> tuple[bytes, ObjectInfo]:
        """The object's bytes and its head fields (raises ClientError/BotoCoreError as boto3 does)."""
        obj = self.s3.get_object(Bucket=self.bucket, Key=key)
        try:
            body: bytes = obj["Body"].read()
        finally:
            obj["Body"].close()
        return body, ObjectInfo.from_head(key, obj)

    # ------------------------------------------------------------------ writes

    def save_history(self, name: str, read: history_store.HistoryRead) -> bool:
        """Store a rebuilt history (`lastgood.site.history.save_rebuilt`)."""
        return history_store.save_rebuilt(self.s3, self.bucket, name, read)

    def _sse(self) -> dict[str, str]:
        if not self.kms_key_id:
            return {}  # the bucket's default encryption applies
        return {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": self.kms_key_id}

    def publish(
        self,
        name: str,
        body: bytes,
        sha256: str,
        count: int,
        generated_at: str,
        current: Current,
        *,
        history: history_store.HistoryRead | None = None,
        keep_seconds: int = 7 * 86400,
    ) -> PublishResult:
        """History → version → conditional live → last-good; only what does not hold `sha256` intact.

        Raises `ConcurrentUpdate` if live (or the history) moved since `current` was read.
        """
        live, good = current.live, current.last_good
        live_ok = live is not None and live.holds(sha256)
        good_ok = good is not None and good.holds(sha256)
        if live is not None and live_ok and live.sequence is not None:
            meta = live.meta  # last-good catches up with the version already live: same label
        else:
            known = [info.sequence or 0 for info in (live, good) if info is not None]
            if history is not None:
                known.append(history.newest_sequence)
            sequence = max(known, default=0) + 1
            meta = PublishedMeta(sha256=sha256, count=count, generated_at=generated_at, sequence=sequence)
        live_etag = live.etag if live is not None else ""
        if live_ok and good_ok:
            return PublishResult(False, False, live_etag, sequence=meta.sequence)
        keep_since = history_store.cutoff(keep_seconds)
        entry = HistoryEntry(sha256=sha256, count=count, generated_at=generated_at, sequence=meta.sequence)
        history_store.record(self.s3, self.bucket, name, entry, keep_since, history)
        self._put(version_key(name, sha256), body, meta, VERSION_CACHE_CONTROL)
        repaired: list[str] = []
        if not live_ok:
            live_etag = self._put_live(name, body, meta, live)
            if live is not None and live.damaged:
                repaired.append("live")
        notes: list[str] = []
        good_changed = False
        if not good_ok:
            good_changed, note = self.promote(name, body, meta, good)
            if note:
                notes.append(note)
            if good_changed and good is not None and good.damaged:
                repaired.append("last-good")
        return PublishResult(
            not live_ok, good_changed, live_etag, tuple(repaired), meta.sequence, tuple(notes)
        )

    def _put(self, key: str, body: bytes, meta: PublishedMeta, cache: str, **condition: str) -> str:
        response = self.s3.put_object(
            Bucket=self.bucket,
            Key=key,
            Body=body,
            ContentType=CONTENT_TYPE,
            CacheControl=cache,
            Metadata=meta.to_s3(),
            ChecksumSHA256=checksum_b64(meta.sha256 or ""),
            **condition,
            **self._sse(),
        )
        return str(response.get("ETag", ""))

    def _put_live(self, name: str, body: bytes, meta: PublishedMeta, previous: ObjectInfo | None) -> str:
        condition = {"IfMatch": previous.etag} if previous is not None else {"IfNoneMatch": "*"}
        try:
            return self._put(live_key(name), body, meta, LIVE_CACHE_CONTROL, **condition)
        except ClientError as exc:
            # 412: someone replaced it; 404 on If-Match: someone deleted it since our read.
            if is_precondition_failed(exc) or (previous is not None and is_not_found(exc)):
                raise ConcurrentUpdate(
                    f"concurrent update: {live_key(name)} changed since it was read "
                    f"({error_code(exc)}); another regenerate published first, ours was not written"
                ) from None
            raise

    def promote(
        self, name: str, body: bytes, meta: PublishedMeta, seen: ObjectInfo | None
    ) -> tuple[bool, str | None]:
        """last-good ← `body`, conditionally, unless it already holds this or a newer version.

        `seen` is last-good as read before (its ETag makes the write conditional). Returns
        (written, why not). A 412/404 means it changed since: read it again and decide again.
        """
        key = last_good_key(name)
        for _ in range(PROMOTE_ATTEMPTS):
            if seen is not None and not seen.damaged and seen.body_sha256 is not None:
                if seen.holds(meta.sha256 or ""):
                    return False, None
                if seen.meta.order > meta.order:
                    note = (
                        f"last-good left alone: it already holds a newer version "
                        f"(sequence {seen.sequence}, generated {seen.generated_at}) than ours "
                        f"(sequence {meta.sequence})"
                    )
                    logger.warning(f"{name}: {note}")
                    return False, note
            condition = {"IfMatch": seen.etag} if seen is not None else {"IfNoneMatch": "*"}
            try:
                self._put(key, body, meta, LIVE_CACHE_CONTROL, **condition)
                return True, None
            except ClientError as exc:
                if not (is_precondition_failed(exc) or is_not_found(exc)):
                    raise
            seen = self.inspect(key)
        raise ConcurrentUpdate(f"concurrent update: {key} changed {PROMOTE_ATTEMPTS} times while promoting")


def invalidation_reference(changes: list[tuple[str, str]]) -> str:
    """Deterministic CallerReference: a retried run for the same content reuses the invalidation."""
    text = ",".join(f"{name}:{sha}" for name, sha in sorted(changes))
    return "lastgood-regenerate-" + hashlib.sha256(text.encode()).hexdigest()[:40]


def invalidate(paths: list[str], caller_reference: str) -> dict[str, Any] | None:
    """ONE CloudFront invalidation for `paths`; None when there is nothing to invalidate.

    Without `DISTRIBUTION_ID` (no CDN in front, e.g. a bare devstack) it logs and
    reports the skip instead of failing: the data is published either way.
    """
    from lastgood.core import aws
    from lastgood.core.settings import get_settings

    if not paths:
        return None
    distribution = get_settings().distribution_id
    if not distribution:
        logger.info("DISTRIBUTION_ID not set: CloudFront invalidation skipped", extra={"paths": paths})
        return {"skipped": "DISTRIBUTION_ID not set", "paths": sorted(paths)}
    response = aws.client("cloudfront").create_invalidation(
        DistributionId=distribution,
        InvalidationBatch={
            "Paths": {"Quantity": len(paths), "Items": sorted(paths)},
            "CallerReference": caller_reference,
        },
    )
    invalidation_id = str(response["Invalidation"]["Id"])
    logger.info("CloudFront invalidation created", extra={"paths": paths, "invalidation": invalidation_id})
    return {"id": invalidation_id, "distribution": distribution, "paths": sorted(paths)}

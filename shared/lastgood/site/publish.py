"""The site bucket: live / last-good / versions objects and the CloudFront invalidation.

Layout (`lastgood.site.keys`; bucket `SITE_BUCKET`; CloudFront serves `/data/<name>.json` from an
origin group — primary origin path `/live`, failover `/last-good`)::

    versions/<name>/<sha256>.json   immutable content-addressed copy (max-age one year, immutable)
    live/data/<name>.json           what browsers get (max-age 60, stale-while-revalidate,
                                    stale-if-error: a CDN keeps serving when the origin fails)
    last-good/data/<name>.json      the last published good copy (CloudFront's failover origin,
                                    the loader's second S3 layer)

Every object is the dataset's canonical JSON array (`lastgood.site.canonical`) with
user metadata `sha256`, `count` and `generated-at` (ISO-8601 UTC), so
regenerate detects unchanged content and the previous count with a HEAD.

Publishing order (`SiteStore.publish`): version copy → live with a conditional
write (`IfMatch` = the ETag read before the query, or `IfNoneMatch: *` when
there was no live object; a concurrent regenerate that already replaced it
makes ours fail with 412 → `ConcurrentUpdate`, so two runs never interleave
and live is always one run's complete bytes) → promote to last-good (a
server-side copy of the immutable version) → the caller sends one
invalidation for every changed path (`invalidate`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from botocore.exceptions import ClientError

from lastgood.core.errors import LastgoodError
from lastgood.core.observability import logger
from lastgood.site.documents import PublishedMeta
from lastgood.site.keys import last_good_key, live_key, version_key
from lastgood.storage.s3 import error_code, is_not_found, is_precondition_failed

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

    @classmethod
    def from_head(cls, key: str, head: dict[str, Any]) -> ObjectInfo:
        meta = PublishedMeta.from_s3(head.get("Metadata"))
        return cls(
            key=key,
            etag=str(head.get("ETag", "")),
            sha256=meta.sha256,
            count=meta.count,
            generated_at=meta.generated_at,
            last_modified=head.get("LastModified"),
        )


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

    def current(self, name: str) -> Current:
        return Current(live=self.head(live_key(name)), last_good=self.head(last_good_key(name)))

    def read(self, key: str) -> tuple[bytes, ObjectInfo]:
        """The object's bytes and its head fields (raises ClientError/BotoCoreError as boto3 does)."""
        obj = self.s3.get_object(Bucket=self.bucket, Key=key)
        try:
            body: bytes = obj["Body"].read()
        finally:
            obj["Body"].close()
        return body, ObjectInfo.from_head(key, obj)

    # ------------------------------------------------------------------ writes

    def _sse(self) -> dict[str, str]:
        if not self.kms_key_id:
            return {}  # the bucket's default encryption applies
        return {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": self.kms_key_id}

    def publish(
        self, name: str, body: bytes, sha256: str, count: int, generated_at: str, current: Current
    ) -> PublishResult:
        """Version → conditional live → last-good. Raises `ConcurrentUpdate` if live moved."""
        metadata = PublishedMeta(sha256=sha256, count=count, generated_at=generated_at).to_s3()
        live_changed = current.live is None or current.live.sha256 != sha256
        live_etag = current.live.etag if current.live is not None else ""
        if live_changed:
            self.s3.put_object(
                Bucket=self.bucket,
                Key=version_key(name, sha256),
                Body=body,
                ContentType=CONTENT_TYPE,
                CacheControl=VERSION_CACHE_CONTROL,
                Metadata=metadata,
                **self._sse(),
            )
            live_etag = self._put_live(name, body, metadata, current.live)
        last_good_changed = current.last_good is None or current.last_good.sha256 != sha256
        if last_good_changed:
            self.promote(name, sha256, metadata)
        return PublishResult(live_changed, last_good_changed, live_etag)

    def _put_live(self, name: str, body: bytes, metadata: dict[str, str], previous: ObjectInfo | None) -> str:
        condition = {"IfMatch": previous.etag} if previous is not None else {"IfNoneMatch": "*"}
        try:
            response = self.s3.put_object(
                Bucket=self.bucket,
                Key=live_key(name),
                Body=body,
                ContentType=CONTENT_TYPE,
                CacheControl=LIVE_CACHE_CONTROL,
                Metadata=metadata,
                **condition,
                **self._sse(),
            )
        except ClientError as exc:
            # 412: someone replaced it; 404 on If-Match: someone deleted it since our read.
            if is_precondition_failed(exc) or (previous is not None and is_not_found(exc)):
                raise ConcurrentUpdate(
                    f"concurrent update: {live_key(name)} changed since it was read "
                    f"({error_code(exc)}); another regenerate published first, ours was not written"
                ) from None
            raise
        return str(response.get("ETag", ""))

    def promote(self, name: str, sha256: str, metadata: dict[str, str]) -> None:
        """last-good ← the immutable version copy (server-side copy, live's cache headers)."""
        self.s3.copy_object(
            Bucket=self.bucket,
            Key=last_good_key(name),
            CopySource={"Bucket": self.bucket, "Key": version_key(name, sha256)},
            MetadataDirective="REPLACE",
            ContentType=CONTENT_TYPE,
            CacheControl=LIVE_CACHE_CONTROL,
            Metadata=metadata,
            **self._sse(),
        )


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

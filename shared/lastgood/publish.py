"""The site bucket: live / last-good / versions objects and CloudFront invalidation.

Layout (bucket `SITE_BUCKET`, served by CloudFront as `/data/<name>.json`)::

    versions/<name>/<sha256>.json   immutable, content-addressed copy
    live/data/<name>.json           what CloudFront's primary origin (path /live) serves
    last-good/data/<name>.json      the failover origin (path /last-good): the last published good copy

Publishing order: version copy → live with a conditional write (If-Match the
ETag read before regenerating, or If-None-Match * when there was none: a
concurrent run loses with 412 and never interleaves) → promote to last-good →
one invalidation for the changed paths. Object metadata carries sha256, count
and generated_at so unchanged content is detected without downloading it.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from lastgood.observability import logger

LIVE_CACHE_CONTROL = "public, max-age=60, stale-while-revalidate=300, stale-if-error=86400"
VERSION_CACHE_CONTROL = "public, max-age=31536000, immutable"
CONTENT_TYPE = "application/json; charset=utf-8"


def live_key(name: str) -> str:
    return f"live/data/{name}.json"


def last_good_key(name: str) -> str:
    return f"last-good/data/{name}.json"


def version_key(name: str, sha256: str) -> str:
    return f"versions/{name}/{sha256}.json"


def public_path(name: str) -> str:
    return f"/data/{name}.json"


class ConcurrentUpdate(Exception):
    """The live object changed between our read and our write (another regenerate won)."""


@dataclass
class Current:
    """What is published now: ETag and metadata of live, count of last-good."""

    live_etag: str | None
    live_sha256: str | None
    last_good_count: int | None


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


class SiteStore:
    def __init__(self, bucket: str, s3: Any, kms_key_id: str | None = None) -> None:
        self.bucket = bucket
        self.s3 = s3
        self.kms_key_id = kms_key_id

    @classmethod
    def from_settings(cls, *, fast: bool = False) -> SiteStore:
        from lastgood import aws
        from lastgood.settings import get_settings

        settings = get_settings()
        return cls(settings.require("site_bucket"), aws.client("s3", fast=fast), settings.kms_key_id)

    def _head(self, key: str) -> dict[str, Any] | None:
        try:
            head: dict[str, Any] = self.s3.head_object(Bucket=self.bucket, Key=key)
            return head
        except ClientError as exc:
            if _code(exc) in {"404", "NoSuchKey", "NotFound"}:
                return None
            raise

    def current(self, name: str) -> Current:
        live = self._head(live_key(name))
        good = self._head(last_good_key(name))
        count = None
        if good is not None:
            raw = (good.get("Metadata") or {}).get("count")
            count = int(raw) if raw and raw.isdigit() else None
        return Current(
            live_etag=live["ETag"] if live else None,
            live_sha256=(live.get("Metadata") or {}).get("sha256") if live else None,
            last_good_count=count,
        )

    def _sse(self) -> dict[str, str]:
        if not self.kms_key_id:
            return {}
        return {"ServerSideEncryption": "aws:kms", "SSEKMSKeyId": self.kms_key_id}

    def publish(self, name: str, body: bytes, sha256: str, count: int, current: Current) -> str:
        """Version copy → conditional live write → last-good. Returns the new live ETag."""
        metadata = {
            "sha256": sha256,
            "count": str(count),
            "generated-at": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        }
        self.s3.put_object(
            Bucket=self.bucket,
            Key=version_key(name, sha256),
            Body=body,
            ContentType=CONTENT_TYPE,
            CacheControl=VERSION_CACHE_CONTROL,
            Metadata=metadata,
            **self._sse(),
        )
        condition = {"IfMatch": current.live_etag} if current.live_etag else {"IfNoneMatch": "*"}
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
            if _code(exc) in {"PreconditionFailed", "412", "ConditionalRequestConflict", "409"}:
                raise ConcurrentUpdate(
                    f"live/data/{name}.json changed since it was read (another regenerate published first)"
                ) from None
            raise
        self.s3.copy_object(
            Bucket=self.bucket,
            Key=last_good_key(name),
            CopySource={"Bucket": self.bucket, "Key": version_key(name, sha256)},
            MetadataDirective="COPY",
            **self._sse(),
        )
        return str(response.get("ETag", ""))

    def read(self, key: str) -> tuple[bytes, datetime | None, dict[str, str]]:
        obj = self.s3.get_object(Bucket=self.bucket, Key=key)
        try:
            body = obj["Body"].read()
        finally:
            obj["Body"].close()
        return body, obj.get("LastModified"), obj.get("Metadata") or {}


def invalidate(paths: list[str], caller_reference: str) -> str | None:
    """One CloudFront invalidation for `paths` (none when empty or DISTRIBUTION_ID is unset)."""
    from lastgood import aws
    from lastgood.settings import get_settings

    if not paths:
        return None
    distribution = get_settings().distribution_id
    if not distribution:
        logger.info("DISTRIBUTION_ID not set: no CloudFront invalidation", extra={"paths": paths})
        return None
    response = aws.client("cloudfront").create_invalidation(
        DistributionId=distribution,
        InvalidationBatch={
            "Paths": {"Quantity": len(paths), "Items": sorted(paths)},
            "CallerReference": caller_reference,
        },
    )
    invalidation_id = str(response["Invalidation"]["Id"])
    logger.info("CloudFront invalidation created", extra={"paths": paths, "invalidation": invalidation_id})
    return invalidation_id

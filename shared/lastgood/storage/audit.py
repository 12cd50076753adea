"""Append-only audit trail in the backup bucket (seed 003: who/what/when/result for every operation).

Each record is one small JSON object, never rewritten (`IfNoneMatch="*"`)::

    audit/<kind>/<YYYY>/<MM>/<DD>/<YYYYMMDDTHHMMSS.ffffffZ>-<id>.json

`kind` is the operation (backup, prune, restore, verify, migrate, kv-resync, …),
so listing one prefix gives that operation's history in time order. A record::

    {"format": 1, "id": "3f9a1c0b", "kind": "backup", "operation": "backup",
     "at": "2025-01-29T02:00:03.123456Z", "actor": "lastgood-backup" | "cli:alice",
     "result": "ok" | "failed" | "skipped" | ..., "source": "postgres", ...details}

`operation` is kept next to `kind` for readers of the first version. The pure
part (`build_record`, `record_key`) has no I/O; `append` writes one record,
`list_records` reads them back. Callers decide whether an audit failure may
fail their operation (a backup must not fail because its audit record did).
"""

from __future__ import annotations

import json
import os
import re
import secrets
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

AUDIT_FORMAT = 1
AUDIT_PREFIX = "audit/"
KINDS = ("backup", "prune", "restore", "verify", "migrate", "kv-resync", "alert-test")
_KIND_RE = re.compile(r"[^a-z0-9_-]+")


class AuditRecord(BaseModel):
    """One audit record: the fixed fields, then the operation's own details (kept as given)."""

    model_config = ConfigDict(extra="allow", frozen=True)

    format: int = AUDIT_FORMAT
    id: str
    kind: str
    operation: str
    at: str
    actor: str
    result: str | None = None

    def to_dict(self) -> dict[str, Any]:
        doc = self.model_dump(mode="json")
        if doc.get("result") is None and "result" not in (self.model_extra or {}):
            doc.pop("result", None)
        return doc


def normalize_kind(kind: str) -> str:
    """A safe path segment for the record's kind (`event` when nothing usable is left)."""
    cleaned = _KIND_RE.sub("-", str(kind).strip().lower()).strip("-")[:40]
    return cleaned or "event"


def default_actor() -> str:
    """Who ran the operation: the Lambda function's name, else `cli:<user>`."""
    function = os.environ.get("AWS_LAMBDA_FUNCTION_NAME")
    if function:
        return function
    return f"cli:{os.environ.get('USER') or os.environ.get('LOGNAME') or 'unknown'}"


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def build_record(
    record: dict[str, Any], *, now: datetime | None = None, record_id: str | None = None
) -> dict[str, Any]:
    """The stored document: `format`, `id`, `kind`, `operation`, `at`, `actor`, then the caller's fields.

    The kind comes from `kind` or (first version) `operation`; caller-given
    `at`/`actor` win over the defaults.
    """
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    kind = normalize_kind(str(record.get("kind") or record.get("operation") or "event"))
    details = {k: v for k, v in record.items() if k not in ("format", "id", "kind", "operation")}
    doc = AuditRecord.model_validate(
        {
            "id": record_id or secrets.token_hex(4),
            "kind": kind,
            "operation": record.get("operation") or kind,
            "at": _iso(moment),
            "actor": default_actor(),
            **details,
        }
    )
    return doc.to_dict()


def record_key(kind: str, at: datetime, record_id: str) -> str:
    """`audit/<kind>/<YYYY>/<MM>/<DD>/<ts>-<id>.json` (lexical order = time order within a kind)."""
    moment = at.astimezone(UTC)
    return (
        f"{AUDIT_PREFIX}{normalize_kind(kind)}/{moment:%Y/%m/%d}/{moment:%Y%m%dT%H%M%S.%f}Z-{record_id}.json"
    )


def encode(doc: dict[str, Any]) -> bytes:
    return (json.dumps(doc, ensure_ascii=False, sort_keys=True, default=str) + "\n").encode("utf-8")


def append(
    bucket: str,
    record: dict[str, Any],
    *,
    s3_client: Any = None,
    kms_key_id: str | None = None,
    now: datetime | None = None,
) -> str:
    """Write one audit record (adds `at`, `actor`, `id`, `kind`); returns its S3 key."""
    moment = (now or datetime.now(UTC)).astimezone(UTC)
    doc = build_record(record, now=moment)
    key = record_key(doc["kind"], moment, doc["id"])
    sse: dict[str, str] = {"ServerSideEncryption": "aws:kms"}
    if kms_key_id:
        sse["SSEKMSKeyId"] = kms_key_id
    if s3_client is None:
        from lastgood.core import aws

        s3_client = aws.client("s3")
    s3_client.put_object(
        Bucket=bucket, Key=key, Body=encode(doc), ContentType="application/json", IfNoneMatch="*", **sse
    )
    return key


def record(kind: str, *, result: str, **details: Any) -> str | None:
    """Append a record to the configured backup bucket; logs and returns None if it cannot.

    For callers whose own operation must not fail because of its audit trail.
    """
    from lastgood.core.observability import logger
    from lastgood.core.settings import get_settings

    settings = get_settings()
    if not settings.backup_bucket:
        logger.warning("audit record not written: BACKUP_BUCKET is not set", extra={"kind": kind})
        return None
    try:
        return append(
            settings.backup_bucket,
            {"kind": kind, "result": result, **details},
            kms_key_id=settings.kms_key_id,
        )
    except Exception as exc:  # an audit failure is reported, never turned into the operation's failure
        logger.error("audit record not written", extra={"kind": kind, "error": str(exc)[:300]})
        return None


def list_records(
    bucket: str,
    kind: str | None = None,
    *,
    day: datetime | None = None,
    s3_client: Any = None,
    limit: int = 1000,
) -> list[dict[str, Any]]:
    """Records in time order (of one kind and/or one UTC day when given), at most `limit`."""
    if s3_client is None:
        from lastgood.core import aws

        s3_client = aws.client("s3")
    prefix = AUDIT_PREFIX
    if kind is not None:
        prefix += normalize_kind(kind) + "/"
        if day is not None:
            prefix += f"{day.astimezone(UTC):%Y/%m/%d}/"
    keys: list[str] = []
    for page in s3_client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            key = str(obj["Key"])
            if key.endswith(".json") and (day is None or kind is not None or f"/{day:%Y/%m/%d}/" in key):
                keys.append(key)
    keys.sort(key=lambda k: k.rsplit("/", 1)[-1])
    out: list[dict[str, Any]] = []
    for key in keys[-limit:]:
        body = s3_client.get_object(Bucket=bucket, Key=key)["Body"].read()
        try:
            doc = AuditRecord.model_validate_json(body).to_dict()
        except ValidationError as exc:  # shown, not skipped: an audit trail hides nothing
            doc = {"key": key, "kind": "unreadable", "error": str(exc.errors()[0].get("msg", ""))[:200]}
        doc.setdefault("key", key)
        out.append(doc)
    return out

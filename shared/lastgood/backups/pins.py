"""Pin and unpin backups: a pinned backup is kept by every retention policy.

The flag lives in the manifest (the commit marker), rewritten with a
conditional write on the ETag of the copy that was read, so a concurrent
pin/unpin cannot be lost (the loser gets a clear "changed, retry" error).
Object lists, sizes and checksums are never changed by a pin.
"""

from __future__ import annotations

from botocore.exceptions import ClientError

from lastgood.backups.keys import manifest_key
from lastgood.backups.manifest import BackupManifest
from lastgood.backups.restore import find_backup
from lastgood.backups.store import BackupStore
from lastgood.core.errors import ConfigError, LastgoodError
from lastgood.storage.s3 import error_code, is_precondition_failed


def set_pinned(
    backup_id: str, pinned: bool, *, reason: str | None = None, store: BackupStore | None = None
) -> BackupManifest:
    if pinned and not reason:
        raise ConfigError("pinning needs --reason (what this backup protects)")
    store = store or BackupStore.from_settings()
    found = find_backup(store, backup_id)  # unknown / incomplete ids fail here with their reason
    key = manifest_key(found.source, found.backup_id)
    resp = store.s3.get_object(Bucket=store.bucket, Key=key)
    etag = str(resp["ETag"])
    manifest = BackupManifest.from_json(resp["Body"].read(), where=f"s3://{store.bucket}/{key}")
    updated = manifest.model_copy(update={"pinned": pinned, "pin_reason": reason if pinned else None})
    try:
        store.s3.put_object(
            Bucket=store.bucket,
            Key=key,
            Body=updated.to_bytes(),
            ContentType="application/json",
            IfMatch=etag,
            **store.sse_args(),
        )
    except ClientError as exc:
        code = error_code(exc)
        if is_precondition_failed(exc):
            raise LastgoodError(
                f"{key} changed while it was being updated (another pin/unpin?); run the command again"
            ) from None
        raise LastgoodError(
            f"could not update {key}: {code or type(exc).__name__}: {str(exc)[:200]}"
        ) from None
    from lastgood.storage import audit

    audit.record(
        "pin" if pinned else "unpin",
        result="ok",
        source=manifest.source,
        backup_id=manifest.backup_id,
        reason=reason,
    )
    return updated

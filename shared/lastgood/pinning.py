"""Pin and unpin backups: a pinned backup is kept by every retention policy.

The flag lives in the manifest (the commit marker), rewritten with a
conditional write on its ETag so a concurrent pin/unpin cannot be lost.
"""

from __future__ import annotations

from lastgood.errors import ConfigError, LastgoodError
from lastgood.manifest import BackupManifest
from lastgood.restore import find_backup
from lastgood.store import BackupStore, manifest_key


def set_pinned(
    backup_id: str, pinned: bool, *, reason: str | None = None, store: BackupStore | None = None
) -> BackupManifest:
    if pinned and not reason:
        raise ConfigError("pinning needs --reason (what this backup protects)")
    store = store or BackupStore.from_settings()
    manifest = find_backup(store, backup_id)
    key = manifest_key(manifest.source, manifest.backup_id)
    etag = store.s3.head_object(Bucket=store.bucket, Key=key)["ETag"]
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
    except Exception as exc:
        raise LastgoodError(f"could not update {key}: {type(exc).__name__}: {str(exc)[:200]}") from None
    from lastgood import audit

    audit.record(
        "pin" if pinned else "unpin", result="ok", source=manifest.source, backup_id=backup_id, reason=reason
    )
    return updated

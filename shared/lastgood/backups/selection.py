"""Which backup `--latest` means: the newest GOOD backup of a source, naming the ones it skipped.

Walking the source's backups newest first, a candidate is skipped (and named, with why) when

- its manifest exists but cannot be read (cut JSON, unknown format, wrong backup id);
- it is `suspect` and not accepted (`lastgood.backups.suspect`), unless `allow_suspect`;
- with `check_integrity`, one of its objects fails its size / SHA-256 check against the
  manifest (the object is re-read: restore re-checks it again before writing anything).

Backups without a manifest (incomplete, or still being written) are never candidates and are
not named. `restore --latest`, `verify --latest --drill` and the scheduled drill choose here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from lastgood.backups.keys import is_manifest_key
from lastgood.backups.manifest import BackupManifest
from lastgood.core.errors import BackupIntegrityError, BackupNotFound

if TYPE_CHECKING:
    from lastgood.backups.store import BackupStore


@dataclass(frozen=True)
class Skipped:
    source: str
    backup_id: str
    kind: str  # "unreadable" | "suspect" | "damaged"
    why: str
    manifest: BackupManifest | None = None

    def line(self) -> str:
        return f"skipped {self.source}/{self.backup_id}: {self.why}"


@dataclass
class Choice:
    manifest: BackupManifest
    skipped: list[Skipped] = field(default_factory=list)


def newest_good(
    store: BackupStore, source: str, *, allow_suspect: bool = False, check_integrity: bool = True
) -> Choice:
    """The newest usable backup of `source` (see the module docstring); BackupNotFound if none."""
    skipped: list[Skipped] = []
    for item in store.list_backups(source):
        manifest = item.manifest
        if manifest is None:
            if not any(is_manifest_key(k) for k in item.keys) and item.status == "incomplete":
                continue  # no manifest at all: never a candidate
            try:
                manifest = store.read_manifest(source, item.backup_id)
            except BackupNotFound:
                continue
            except BackupIntegrityError as exc:
                skipped.append(Skipped(source, item.backup_id, "unreadable", f"manifest unreadable: {exc}"))
                continue
        suspect = item.suspect if item.manifest is not None else manifest.suspect
        if suspect and not allow_suspect:
            skipped.append(
                Skipped(
                    source,
                    item.backup_id,
                    "suspect",
                    f"suspect: {manifest.suspect_reason}; restore it with --allow-suspect, "
                    f"or accept it with `lastgood accept {item.backup_id}`",
                    manifest,
                )
            )
            continue
        if check_integrity:
            problem = _first_bad_object(store, manifest)
            if problem is not None:
                skipped.append(Skipped(source, item.backup_id, "damaged", f"damaged: {problem}", manifest))
                continue
        return Choice(manifest, skipped)
    detail = "; ".join(s.line() for s in skipped)
    raise BackupNotFound(
        f"source {source!r} has no complete backup" + (f" that can be used ({detail})" if detail else "")
    )


def _first_bad_object(store: BackupStore, manifest: BackupManifest) -> str | None:
    for entry in manifest.objects:
        try:
            store.verify_object(manifest, entry.key)
        except BackupIntegrityError as exc:
            return str(exc)
    return None

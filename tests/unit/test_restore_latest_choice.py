"""`--latest` means the newest GOOD backup: damaged, unreadable and suspect ones are skipped and named."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import pytest
from lastgood.backups.manifest import BackupManifest, ObjectEntry
from lastgood.backups.restore import find_backup
from lastgood.backups.selection import Skipped
from lastgood.core.errors import BackupIntegrityError, BackupNotFound

T0 = datetime(2026, 6, 1, tzinfo=UTC)


def _manifest(hour: int, *, suspect: bool = False) -> BackupManifest:
    at = T0 + timedelta(hours=hour)
    manifest = BackupManifest.build(
        backup_id=at.strftime("%Y%m%dT%H%M%SZ") + "-aaaaaa",
        source="pg",
        engine="postgres",
        started_at=at,
        finished_at=at,
        objects=[ObjectEntry(key="app.dump", bytes=1, sha256="0" * 64)],
    )
    if suspect:
        manifest = manifest.model_copy(
            update={"suspect": True, "suspect_reason": "the dump has no tables at all"}
        )
    return manifest


@dataclass
class _Listing:
    backup_id: str
    manifest: BackupManifest | None
    status: str = "complete"
    keys: list[str] = field(default_factory=list)

    @property
    def suspect(self) -> bool:
        return bool(self.manifest and self.manifest.suspect)


class _Store:
    def __init__(self, listings: list[_Listing], damaged: set[str] = frozenset()) -> None:  # type: ignore[assignment]
        self.listings, self.damaged = listings, damaged

    def list_backups(self, source: str) -> list[_Listing]:
        return self.listings

    def read_manifest(self, source: str, backup_id: str) -> BackupManifest:
        raise BackupIntegrityError(
            f"s3://b/backups/{source}/{backup_id}/manifest.json is unreadable: cut JSON"
        )

    def verify_object(self, manifest: BackupManifest, relpath: str) -> None:
        if manifest.backup_id in self.damaged:
            raise BackupIntegrityError(
                f"pg/{manifest.backup_id}/{relpath}: SHA-256 x differs from the manifest's y"
            )


def _store(damaged: bool = False) -> tuple[_Store, list[BackupManifest]]:
    good, bad, cut, suspect = _manifest(1), _manifest(2), _manifest(3), _manifest(4, suspect=True)
    listings = [
        _Listing(suspect.backup_id, suspect),
        _Listing(cut.backup_id, None, "incomplete", [f"backups/pg/{cut.backup_id}/manifest.json"]),
        _Listing(bad.backup_id, bad),
        _Listing("20260601T050000Z-bbbbbb", None, "incomplete"),  # still running: never a candidate
        _Listing(good.backup_id, good),
    ]
    return _Store(listings, {bad.backup_id} if damaged else set()), [good, bad, cut, suspect]


def test_latest_skips_and_names_suspect_unreadable_and_damaged_backups():
    store, (good, bad, cut, suspect) = _store(damaged=True)
    skipped: list[Skipped] = []
    chosen = find_backup(store, None, source="pg", latest=True, skipped=skipped)  # type: ignore[arg-type]
    assert chosen.backup_id == good.backup_id
    assert [(s.backup_id, s.kind) for s in skipped] == [
        (suspect.backup_id, "suspect"),
        (cut.backup_id, "unreadable"),
        (bad.backup_id, "damaged"),
    ]
    assert "lastgood accept" in skipped[0].line() and "--allow-suspect" in skipped[0].line()
    assert "SHA-256" in skipped[2].line()


def test_allow_suspect_may_choose_the_suspect_backup():
    store, (_, _, _, suspect) = _store()
    assert (
        find_backup(store, None, source="pg", latest=True, allow_suspect=True).backup_id == suspect.backup_id
    )  # type: ignore[arg-type]


def test_without_an_integrity_check_the_newest_readable_backup_is_chosen():
    # (integrity-only `verify --latest` looks at the newest backup itself, to report its damage)
    store, (_, bad, _, _) = _store(damaged=True)
    chosen = find_backup(store, None, source="pg", latest=True, allow_suspect=False, check_integrity=False)  # type: ignore[arg-type]
    assert chosen.backup_id == bad.backup_id


def test_no_good_backup_at_all_names_every_skipped_one():
    store, (good, _, _, _) = _store(damaged=True)
    store.damaged = {m.manifest.backup_id for m in store.listings if m.manifest}
    with pytest.raises(BackupNotFound) as err:
        find_backup(store, None, source="pg", latest=True)  # type: ignore[arg-type]
    assert "has no complete backup that can be used" in str(err.value) and good.backup_id in str(err.value)

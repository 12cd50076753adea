"""Restore a committed backup into a target with the engine's native path.

    restore_backup("20250129T020000Z-3f9a1c", target_url="postgresql://…/app_restore")
    restore_backup(None, source="postgres", latest=True, target_url=…, force=True)

Order is what makes a restore safe: find the backup (`--latest`: the newest GOOD one,
`lastgood.backups.selection` — damaged, unreadable and suspect ones are skipped and
named) → refuse an incomplete one
→ check the target's engine matches the backup's → re-hash EVERY object
against the manifest (nothing is written to the target before integrity is
established) → refuse a non-empty target unless `force` → engine restore
(pg_restore / BSON batches + indexes / RESP stream) → compare the target's
counts with the manifest's. A restore interrupted half-way leaves a non-empty
target; running it again with `force` completes it.

PostgreSQL (an engine with `verifies_while_restoring`) skips the separate re-hash pass
unless the target is wiped first: its object streams once from S3 into
`pg_restore --single-transaction`, hashed on the way, and its last bytes are released
only once the whole object matched the manifest — a mismatch rolls the transaction
back, so nothing is committed (`lastgood.backups.heldtail`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

from lastgood.backups.manifest import BackupManifest, is_backup_id
from lastgood.backups.selection import Skipped, newest_good
from lastgood.backups.store import BackupStore
from lastgood.backups.target_db import check_target_database
from lastgood.core.errors import BackupIntegrityError, BackupNotFound, LastgoodError, RestoreError, UsageError
from lastgood.core.observability import logger
from lastgood.core.redact import redact_text, redact_url

ProgressFn = Callable[[str], None]

# URL schemes each engine can restore into.
ENGINE_SCHEMES: dict[str, frozenset[str]] = {
    "postgres": frozenset({"postgres", "postgresql"}),
    "mongodb": frozenset({"mongodb", "mongodb+srv"}),
    "upstash": frozenset({"redis", "rediss", "http", "https"}),
    "redis": frozenset({"redis", "rediss", "http", "https"}),
}


@dataclass
class CountCheck:
    name: str
    expected: int
    restored: int | None

    @property
    def ok(self) -> bool:
        return self.restored == self.expected


@dataclass
class RestoreReport:
    source: str
    backup_id: str
    engine: str
    target: str  # redacted
    verify_seconds: float
    restore_seconds: float
    checks: list[CountCheck] = field(default_factory=list)
    safety_backup_id: str | None = None  # what the target held before, pinned
    undo: str | None = None  # the command that puts it back

    @property
    def ok(self) -> bool:
        return all(check.ok for check in self.checks)

    @property
    def total_seconds(self) -> float:
        return self.verify_seconds + self.restore_seconds

    def mismatches(self) -> list[CountCheck]:
        return [check for check in self.checks if not check.ok]

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "backup_id": self.backup_id,
            "engine": self.engine,
            "target": self.target,
            "ok": self.ok,
            "verify_seconds": round(self.verify_seconds, 3),
            "restore_seconds": round(self.restore_seconds, 3),
            "recovery_time_seconds": round(self.total_seconds, 3),
            "counts": {c.name: {"expected": c.expected, "restored": c.restored} for c in self.checks},
            "safety_backup_id": self.safety_backup_id,
            "undo": self.undo,
        }


def _quiet(_: str) -> None:
    return None


def find_backup(
    store: BackupStore,
    backup_id: str | None,
    *,
    source: str | None = None,
    latest: bool = False,
    allow_suspect: bool = False,
    check_integrity: bool = True,
    skipped: list[Skipped] | None = None,
) -> BackupManifest:
    """The manifest of a committed backup, by id (any source) or the newest GOOD one of `source`
    (`lastgood.backups.selection`: damaged, unreadable and suspect ones are skipped and appended
    to `skipped`)."""
    if latest:
        if backup_id:
            raise UsageError("give either a BACKUP_ID or --latest --source NAME, not both")
        if not source:
            raise UsageError("--latest needs --source NAME")
        choice = newest_good(store, source, allow_suspect=allow_suspect, check_integrity=check_integrity)
        for item in choice.skipped:
            logger.warning("--latest skipped a backup", extra={"skipped": item.line()})
        if skipped is not None:
            skipped.extend(choice.skipped)
        return choice.manifest
    if not backup_id:
        raise UsageError("which backup? give a BACKUP_ID or --latest --source NAME (see `lastgood list`)")
    if not is_backup_id(backup_id):
        raise BackupNotFound(f"unknown backup id {backup_id!r} (expected YYYYMMDDTHHMMSSZ-xxxxxx)")
    sources = [source] if source else store.list_sources()
    for name in sources:
        listing = [b for b in store.list_backups(name, with_details=False) if b.backup_id == backup_id]
        if not listing:
            continue
        if listing[0].status == "incomplete":
            raise BackupIntegrityError(
                f"backup {name}/{backup_id} is incomplete (no manifest.json): it is never used for restore"
            )
        return store.read_manifest(name, backup_id)
    raise BackupNotFound(f"unknown backup id {backup_id!r}: no source has it (see `lastgood list`)")


def known_source(store: BackupStore, source: str) -> None:
    """A typo in --source is a usage error naming the valid names, not "no backup" (exit 7)."""
    from lastgood.core.config import get_config

    configured = [s.name for s in get_config().sources]
    if source in configured:
        return
    stored = store.list_sources()
    if source in stored:  # a source that left the config keeps its backups
        return
    names = sorted(set(configured) | set(stored))
    raise UsageError(f"unknown source {source!r}; known sources: {', '.join(names) or '(none)'}")


def check_target_engine(engine: str, target_url: str) -> None:
    scheme = urlsplit(target_url).scheme.lower()
    allowed = ENGINE_SCHEMES.get(engine, frozenset())
    if scheme not in allowed:
        raise RestoreError(
            f"a {engine} backup cannot be restored into a {scheme or 'scheme-less'} target "
            f"(expected a URL starting with {' or '.join(sorted(s + '://' for s in allowed))})"
        )


def compare_counts(
    expected: dict[str, int], actual: dict[str, int], only: list[str] | None
) -> list[CountCheck]:
    """Manifest counts vs the target's. Keys may differ in their database part (restore into
    another database): `app.users` matches `scratch.users` when nothing matches exactly."""
    by_suffix: dict[str, int] = {}
    for key, value in actual.items():
        by_suffix.setdefault(key.split(".", 1)[-1], value)
    checks = []
    for name, count in sorted(expected.items()):
        if only and not any(name == o or name.endswith("." + o) or o.endswith("." + name) for o in only):
            continue
        restored = actual.get(name)
        if restored is None:
            restored = by_suffix.get(name.split(".", 1)[-1])
        checks.append(CountCheck(name, count, restored))
    return checks


def restore_manifest(
    store: BackupStore,
    manifest: BackupManifest,
    target_url: str,
    *,
    token: str | None = None,
    only: list[str] | None = None,
    force: bool = False,
    wipe_first: bool = False,
    progress: ProgressFn | None = None,
    before_write: Callable[[bool], None] | None = None,
) -> RestoreReport:
    """Verify, then restore `manifest` into `target_url` (see the module docstring).

    `before_write(empty)` runs after the read-only preflight, before the first write.
    """
    from lastgood.engines import get_engine

    say = progress or _quiet
    check_target_engine(manifest.engine, target_url)
    check_target_database(manifest, target_url)
    engine = get_engine(manifest.engine)
    target = redact_url(target_url)
    secrets = tuple(s for s in (target_url, token) if s)

    started = time.perf_counter()
    # An engine that checks each object while applying it in one transaction (PostgreSQL: a
    # mismatch rolls pg_restore back) streams it once instead; a wipe first needs the proof first.
    streamed = bool(getattr(engine, "verifies_while_restoring", False)) and not wipe_first
    if not streamed:
        say(f"verifying {len(manifest.objects)} object(s) of {manifest.source}/{manifest.backup_id}")
    try:
        objects = store.object_source(manifest, verify_first=not streamed)
    except BackupIntegrityError as exc:
        raise BackupIntegrityError(
            f"refusing to restore {manifest.source}/{manifest.backup_id}: {exc}; nothing was written to {target}"
        ) from None
    verify_seconds = time.perf_counter() - started

    # Read-only preflight: reachability and emptiness, before the first write.
    try:
        empty = engine.is_empty(target_url, token=token)
    except LastgoodError as exc:
        raise RestoreError(
            f"target {target} is unreachable or unusable: {redact_text(str(exc), secrets)}"
        ) from None
    except Exception as exc:
        raise RestoreError(
            f"target {target} is unreachable or unusable: "
            + redact_text(f"{type(exc).__name__}: {exc}", secrets)[:500]
        ) from None
    if not empty and not force:
        raise RestoreError(
            f"target {target} is not empty: refusing to restore over existing data (use --force)"
        )
    if before_write is not None:
        before_write(empty)

    restore_started = time.perf_counter()
    try:
        if wipe_first:
            say(f"wiping {target}")
            engine.wipe(target_url, token=token)
        say(f"restoring into {target}" + (" (each object checked as it streams)" if streamed else ""))
        result = engine.restore(target_url, objects, only=only, force=force, token=token, progress=say)
        restore_seconds = time.perf_counter() - restore_started
        actual = result.counts if result.exact else engine.counts(target_url, token=token)
    except BackupIntegrityError as exc:
        if streamed:  # found while streaming: the engine's transaction rolled back
            raise BackupIntegrityError(
                f"refusing to restore {manifest.source}/{manifest.backup_id}: {exc}; nothing was written to {target}"
            ) from None
        # an object's bytes changed after the verify pass
        applied = objects.delivered or ["none"]
        raise BackupIntegrityError(
            f"restore of {manifest.source}/{manifest.backup_id} into {target} stopped: {exc}. Objects "
            f"proven and used before it: {', '.join(applied)} — run `lastgood verify {manifest.backup_id}`, then restore "
            "again with --force"
        ) from None
    except Exception as exc:
        detail = str(exc) if isinstance(exc, LastgoodError) else f"{type(exc).__name__}: {exc}"
        raise RestoreError(
            f"restore of {manifest.source}/{manifest.backup_id} into {target} failed: "
            + redact_text(detail, secrets)[:800]
            + " (the target may be partially restored; run the same restore again with --force to complete it)"
        ) from None
    report = RestoreReport(
        manifest.source,
        manifest.backup_id,
        manifest.engine,
        target,
        verify_seconds,
        restore_seconds,
        compare_counts(manifest.counts, actual, only),
    )
    logger.info("restore finished", extra=report.as_dict())
    return report


def restore_backup(
    backup_id: str | None,
    *,
    target_url: str,
    source: str | None = None,
    latest: bool = False,
    token: str | None = None,
    only: list[str] | None = None,
    force: bool = False,
    wipe_first: bool = False,
    store: BackupStore | None = None,
    progress: ProgressFn | None = None,
    yes: bool = False,
    safety_backup: bool = True,
) -> RestoreReport:
    """`restore_manifest` behind the target guard: `yes` to restore into a production source;
    over a non-empty target, a pinned safety backup first unless `safety_backup=False`."""
    from lastgood.backups import targets
    from lastgood.storage import audit

    store = store or BackupStore.from_settings()
    manifest = find_backup(store, backup_id, source=source, latest=latest)
    safety: list[str] = []

    def guard(empty: bool) -> None:
        plan.require_confirmation(yes)
        if not empty and safety_backup:
            (progress or _quiet)(f"taking a pinned safety backup of {redact_url(target_url)}")
            safety.append(targets.take_safety_backup(manifest, target_url, token))

    try:
        check_target_engine(manifest.engine, target_url)
        plan = targets.check_restore_target(manifest, target_url, token)
        report = restore_manifest(
            store,
            manifest,
            target_url,
            token=token,
            only=only,
            force=force,
            wipe_first=wipe_first,
            progress=progress,
            before_write=guard,
        )
    except Exception as exc:
        error: Exception = exc
        if safety:  # the restore failed after the safety backup: say where the old data is
            undo = targets.undo_command(safety[0], target_url, production=plan.production is not None)
            error = RestoreError(
                f"{exc}; what the target held is in the pinned safety backup {safety[0]}: {undo}"
            )
        audit.record(
            "restore",
            result="failed",
            source=manifest.source,
            backup_id=manifest.backup_id,
            target=redact_url(target_url),
            error=str(error)[:500],
        )
        if error is not exc:
            raise error from None
        raise
    if safety:
        report.safety_backup_id = safety[0]
        report.undo = targets.undo_command(safety[0], target_url, production=plan.production is not None)
    audit.record(
        "restore",
        result="ok" if report.ok else "count-mismatch",
        **{k: v for k, v in report.as_dict().items() if k not in ("ok",)},
    )
    return report

"""Pre-migration safety (seed 004): a pinned backup before, a way back after.

`run_migration(source, command)` takes a pinned backup, runs the migration
command, and when it exits non-zero restores the database to its pre-migration
state: the target is wiped first (so objects the failed migration created are
gone too), then the pinned backup is restored into it — after a pinned safety
backup of the failed state (`restore_backup`), so the rollback can be undone too.
Whether to roll back is asked through `confirm` (the CLI asks the user, or `--yes`).
"""

from __future__ import annotations

import shlex
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from lastgood.backups.restore import RestoreReport, restore_backup
from lastgood.backups.run import run_backup
from lastgood.core.config import SourceConfig, get_config
from lastgood.core.errors import BackupError, ConfigError, LastgoodError, RestoreError
from lastgood.core.observability import logger
from lastgood.core.redact import redact_text
from lastgood.core.settings import get_secret


@dataclass
class MigrationOutcome:
    source: str
    backup_id: str
    command: list[str]
    exit_code: int
    rolled_back: bool = False
    restore: RestoreReport | None = None
    declined: bool = False

    def as_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "backup_id": self.backup_id,
            "command": self.command,
            "exit_code": self.exit_code,
            "rolled_back": self.rolled_back,
            "declined": self.declined,
            "restore": self.restore.as_dict() if self.restore else None,
        }


def run_migration(
    source_name: str,
    command: Sequence[str],
    *,
    confirm: Callable[[str], bool],
    progress: Callable[[str], None] | None = None,
    reason: str | None = None,
) -> MigrationOutcome:
    if not command:
        raise ConfigError("no migration command given (usage: lastgood migrate --source NAME -- CMD ...)")
    say = progress or (lambda _msg: None)
    source = get_config().source(source_name)
    url = str(get_secret(source.url_secret))
    token = get_secret(source.token_secret) if source.token_secret else None
    secrets = tuple(s for s in (url, token) if s)
    shown = redact_text(shlex.join(command), secrets)  # a command line may carry the database URL
    say(f"taking a pinned safety backup of {source.name}")
    backup = run_backup(
        source.name,
        on_demand=True,
        pin=True,
        reason=reason or f"before migration: {shown[:200]}",
    )
    if backup.backup_id is None:  # pragma: no cover - an on-demand run never skips
        raise BackupError(f"no safety backup of {source.name} was taken; the migration did not run")
    say(f"safety backup {backup.backup_id} committed; running: {shown}")
    try:
        # The child's output goes to stderr: stdout is the CLI's result channel (--json).
        completed = subprocess.run(list(command), check=False, stdout=_child_stdout())
        exit_code = completed.returncode
    except OSError as exc:
        outcome = MigrationOutcome(source.name, backup.backup_id, [shown], 127)
        say(
            f"the migration command could not start ({type(exc).__name__}: {exc}); nothing ran, nothing to roll back"
        )
        _audit(outcome)
        return outcome
    outcome = MigrationOutcome(source.name, backup.backup_id, [shown], exit_code)
    if exit_code == 0:
        say(
            f"migration succeeded; the safety backup {backup.backup_id} stays pinned (`lastgood unpin` to release)"
        )
        _audit(outcome)
        return outcome
    logger.warning("migration failed", extra={"source": source.name, "exit_code": exit_code})
    question = (
        f"migration exited with {exit_code}: restore {source.name} to its state before the "
        f"migration (backup {backup.backup_id})? This wipes the current database"
    )
    if not confirm(question):
        outcome.declined = True
        say(f"not rolled back; to do it later: lastgood restore {backup.backup_id} --target <url> --force")
        _audit(outcome)
        return outcome
    try:
        outcome.restore = restore_backup(
            backup.backup_id,
            source=source.name,
            target_url=_rollback_url(source, url),
            token=token,
            force=True,
            wipe_first=True,
            progress=say,
            yes=True,  # restoring into the source itself is what was just confirmed
        )
    except LastgoodError as exc:
        _audit(outcome)
        raise RestoreError(
            f"migration failed (exit {exit_code}) and the rollback failed too: {exc}. The pinned safety "
            f"backup {backup.backup_id} is intact: lastgood restore {backup.backup_id} --target <url> --force"
        ) from None
    outcome.rolled_back = True
    _audit(outcome)
    return outcome


def _rollback_url(source: SourceConfig, url: str) -> str:
    """The source's own URL, naming the database its safety backup was dumped from (MongoDB)."""
    if source.engine != "mongodb":
        return url
    from lastgood.backups.target_db import with_database
    from lastgood.engines.mongodb_client import database_of, url_database

    return url if url_database(url) else with_database(url, database_of(url, source.database))


def _child_stdout() -> int | None:
    try:
        return sys.stderr.fileno()
    except (AttributeError, OSError, ValueError):  # no real stderr (embedded / captured): inherit
        return None


def _audit(outcome: MigrationOutcome) -> None:
    from lastgood.storage import audit

    result = "ok" if outcome.exit_code == 0 else ("rolled-back" if outcome.rolled_back else "failed")
    audit.record("migrate", result=result, **outcome.as_dict())

"""Pre-migration safety (seed 004): a pinned backup before, a way back after.

`run_migration(source, command)` takes a pinned backup, runs the migration
command, and when it exits non-zero restores the database to its pre-migration
state: the target is wiped first (so objects the failed migration created are
gone too), then the pinned backup is restored into it. Whether to roll back is
asked through `confirm` (the CLI asks the user, or `--yes`).
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from lastgood.backup import run_backup
from lastgood.config import get_config
from lastgood.errors import ConfigError
from lastgood.observability import logger
from lastgood.restore import RestoreReport, restore_backup
from lastgood.settings import get_secret


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
    say(f"taking a pinned safety backup of {source.name}")
    backup = run_backup(
        source.name,
        on_demand=True,
        pin=True,
        reason=reason or f"before migration: {' '.join(command)[:200]}",
    )
    assert backup.backup_id is not None
    say(f"safety backup {backup.backup_id} committed; running: {' '.join(command)}")
    completed = subprocess.run(list(command), check=False)
    outcome = MigrationOutcome(source.name, backup.backup_id, list(command), completed.returncode)
    if completed.returncode == 0:
        say(
            f"migration succeeded; the safety backup {backup.backup_id} stays pinned (`lastgood unpin` to release)"
        )
        _audit(outcome)
        return outcome
    logger.warning("migration failed", extra={"source": source.name, "exit_code": completed.returncode})
    question = (
        f"migration exited with {completed.returncode}: restore {source.name} to its state before the "
        f"migration (backup {backup.backup_id})? This wipes the current database"
    )
    if not confirm(question):
        outcome.declined = True
        say(f"not rolled back; to do it later: lastgood restore {backup.backup_id} --target <url> --force")
        _audit(outcome)
        return outcome
    url = str(get_secret(source.url_secret))
    token = get_secret(source.token_secret) if source.token_secret else None
    outcome.restore = restore_backup(
        backup.backup_id,
        source=source.name,
        target_url=url,
        token=token,
        force=True,
        wipe_first=True,
        progress=say,
    )
    outcome.rolled_back = True
    _audit(outcome)
    return outcome


def _audit(outcome: MigrationOutcome) -> None:
    from lastgood import audit

    result = "ok" if outcome.exit_code == 0 else ("rolled-back" if outcome.rolled_back else "failed")
    audit.record("migrate", result=result, **outcome.as_dict())

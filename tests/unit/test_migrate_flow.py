"""The migration safety flow with its edges (backup, command, restore) replaced by recorders."""

from __future__ import annotations

import sys
from types import SimpleNamespace
from typing import Any

import pytest
from lastgood.backups import migrate
from lastgood.core.errors import ConfigError, RestoreError


@pytest.fixture
def edges(monkeypatch) -> dict[str, list[Any]]:
    calls: dict[str, list[Any]] = {"backup": [], "restore": [], "audit": []}
    source = SimpleNamespace(name="pg", engine="postgres", url_secret="DB_URL", token_secret=None)
    monkeypatch.setattr(migrate, "get_config", lambda: SimpleNamespace(source=lambda name: source))
    monkeypatch.setattr(migrate, "get_secret", lambda name, required=True: "postgresql://u:s3cret@h/db")

    def backup(name: str, **kwargs: Any) -> Any:
        calls["backup"].append((name, kwargs))
        return SimpleNamespace(backup_id="20250101T000000Z-abcdef")

    def restore(backup_id: str, **kwargs: Any) -> Any:
        calls["restore"].append((backup_id, kwargs))
        return SimpleNamespace(ok=True, as_dict=lambda: {"ok": True})

    monkeypatch.setattr(migrate, "run_backup", backup)
    monkeypatch.setattr(migrate, "restore_backup", restore)
    monkeypatch.setattr(migrate, "_audit", lambda outcome: calls["audit"].append(outcome))
    return calls


def _py(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_no_command_is_a_usage_error():
    with pytest.raises(ConfigError, match="no migration command"):
        migrate.run_migration("pg", [], confirm=lambda q: True)


def test_success_keeps_the_pinned_backup_and_does_not_restore(edges):
    outcome = migrate.run_migration("pg", _py("pass"), confirm=lambda q: True)
    assert outcome.exit_code == 0 and not outcome.rolled_back
    ((name, kwargs),) = edges["backup"]
    assert name == "pg" and kwargs["pin"] is True and kwargs["on_demand"] is True
    assert edges["restore"] == []


def test_failure_confirmed_wipes_and_restores_the_safety_backup(edges):
    outcome = migrate.run_migration("pg", _py("raise SystemExit(3)"), confirm=lambda q: True)
    assert outcome.exit_code == 3 and outcome.rolled_back
    ((backup_id, kwargs),) = edges["restore"]
    assert backup_id == "20250101T000000Z-abcdef"
    assert kwargs["wipe_first"] is True and kwargs["force"] is True


def test_failure_declined_leaves_the_database_and_says_how_to_roll_back(edges):
    said: list[str] = []
    questions: list[str] = []
    outcome = migrate.run_migration(
        "pg",
        _py("raise SystemExit(2)"),
        confirm=lambda q: questions.append(q) is not None,
        progress=said.append,
    )
    assert outcome.declined and not outcome.rolled_back and edges["restore"] == []
    assert "exited with 2" in questions[0]
    assert any("lastgood restore 20250101T000000Z-abcdef" in line for line in said)


def test_the_database_password_never_reaches_the_pin_reason_or_progress(edges):
    said: list[str] = []
    migrate.run_migration(
        "pg", [*_py("pass"), "postgresql://u:s3cret@h/db"], confirm=lambda q: True, progress=said.append
    )
    reason = edges["backup"][0][1]["reason"]
    assert "s3cret" not in reason and all("s3cret" not in line for line in said)


def test_a_failed_rollback_names_the_intact_backup(edges, monkeypatch):
    def broken(backup_id: str, **kwargs: Any) -> Any:
        raise RestoreError("pg_restore exited with status 1")

    monkeypatch.setattr(migrate, "restore_backup", broken)
    with pytest.raises(RestoreError) as err:
        migrate.run_migration("pg", _py("raise SystemExit(1)"), confirm=lambda q: True)
    assert "rollback failed" in str(err.value) and "20250101T000000Z-abcdef is intact" in str(err.value)

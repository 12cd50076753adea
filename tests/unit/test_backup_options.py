"""Pure rules of a backup run: pg_dump switches from include/exclude, argument policy, slots, events."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from lastgood.backups.run import engine_options, resolve_slot
from lastgood.core.config import SourceConfig
from lastgood.core.errors import ConfigError
from lastgood.engines.base import EngineOptions
from lastgood.engines.pg_connect import libpq_args
from lastgood.engines.pg_selection import Selection


def test_include_and_exclude_become_schema_and_table_switches():
    sel = Selection.from_options(
        EngineOptions(include=["public", "audit.events"], exclude=["tmp", "public.cache_*"])
    )
    assert sel.pg_dump_switches() == [
        "--schema=public",
        "--exclude-schema=tmp",
        "--table=audit.events",
        "--exclude-table=public.cache_*",
    ]


def test_counted_tables_follow_pg_dump_rules():
    # -t wins over -n/-N (as in pg_dump), -T always applies
    sel = Selection.from_options(EngineOptions(include=["audit.*"], exclude=["audit.big"]))
    assert sel.dumps_table("audit", "events")
    assert not sel.dumps_table("audit", "big")
    assert not sel.dumps_table("public", "users")
    schemas = Selection.from_options(EngineOptions(include=["public"], exclude=["public.cache_*"]))
    assert schemas.dumps_table("public", "users")
    assert not schemas.dumps_table("public", "cache_1")
    assert not schemas.dumps_table("other", "users")
    everything = Selection.from_options(EngineOptions(exclude=["tmp"]))
    assert everything.dumps_table("public", "x") and not everything.dumps_table("tmp", "x")
    # Unquoted patterns fold to lower case, like pg_dump
    assert Selection.from_options(EngineOptions(include=["Public.Users"])).dumps_table("public", "users")


def test_tables_whose_data_is_excluded_are_counted_as_empty():
    sel = Selection.from_options(
        EngineOptions(pg_dump_args=["--exclude-table-data=public.log", "--no-comments"])
    )
    assert not sel.dumps_rows("public", "log") and sel.dumps_rows("public", "users")
    # (issue 13: --schema-only is refused outright now: it made an empty dump marked complete)
    with pytest.raises(ConfigError, match="without table data"):
        Selection.from_options(EngineOptions(pg_dump_args=["--schema-only"]))


def test_pg_dump_args_select_tables_like_include_and_reach_pg_dump_normalised():
    sel = Selection.from_options(EngineOptions(pg_dump_args=["-tusers", "--exclude-table", "audit.*", "-xO"]))
    assert sel.pg_dump_switches() == [
        "--table=users",
        "--exclude-table=audit.*",
        "--no-privileges",
        "--no-owner",
    ]
    assert sel.dumps_table("public", "users") and not sel.dumps_table("public", "orders")


@pytest.mark.parametrize(
    "bad",
    [
        ["-f", "/tmp/x"],
        ["--file=/tmp/x"],
        ["-Fp"],
        ["--format=plain"],
        ["--snapshot=x"],
        ["-j4"],
        ["-dother"],
    ],
)
def test_pg_dump_args_that_change_output_or_connection_are_refused(bad):
    with pytest.raises(ConfigError, match="not allowed"):
        Selection.from_options(EngineOptions(pg_dump_args=bad))


def test_password_goes_to_the_environment_not_the_command_line(monkeypatch):
    monkeypatch.setenv("PGPASSWORD", "stale")
    dbname, env = libpq_args("postgresql://app:p%40ss@127.0.0.1:5432/app?application_name=x")
    assert dbname == "postgresql://app@127.0.0.1:5432/app?application_name=x"
    assert env["PGPASSWORD"] == "p@ss"
    assert "p@ss" not in dbname


def test_plaintext_connection_to_a_remote_host_is_refused(monkeypatch):
    monkeypatch.delenv("ALLOW_INSECURE_TRANSPORT", raising=False)
    from lastgood.core.settings import reset_settings

    reset_settings()
    with pytest.raises(ConfigError, match="TLS"):
        libpq_args("postgresql://u:p@db.example.com/app")
    reset_settings()


def test_slot_comes_from_the_event_time_floored_to_the_schedule():
    source = SourceConfig(name="pg", engine="postgres", url_secret="DATABASE_URL", schedule="rate(1 hour)")
    now = datetime(2025, 1, 29, 9, 30, tzinfo=UTC)
    assert resolve_slot(source, "2025-01-29T02:00:07Z", now) == datetime(2025, 1, 29, 2, tzinfo=UTC)
    assert resolve_slot(source, None, now) == datetime(2025, 1, 29, 9, tzinfo=UTC)
    daily = source.model_copy(update={"schedule": "rate(1 day)"})
    assert resolve_slot(daily, None, now) == datetime(2025, 1, 29, tzinfo=UTC)


def test_engine_options_carry_the_source_config():
    source = SourceConfig(
        name="pg",
        engine="postgres",
        url_secret="DATABASE_URL",
        include=["public"],
        pg_dump_args=["--no-comments"],
    )
    assert engine_options(source) == EngineOptions(
        source="pg",
        include=("public",),
        exclude=(),
        pg_dump_args=("--no-comments",),
        database=None,
    )

"""The pg_dump_args grammar and allow-list, checked against the bundled pg_dump 18 itself.

lastgood reads `pg_dump_args` with its own copy of pg_dump's getopt_long table
(`lastgood.core.pg_dump_args`); if that copy drifted from the binary, an option
could mean one thing to the allow-list and another to pg_dump. These tests ask
the binary: every option in `pg_dump --help` is in the table with the same short
letter and value-ness, every table entry is one pg_dump knows, and abbreviations
resolve (or are ambiguous) exactly as pg_dump says.
"""

from __future__ import annotations

import re
import subprocess
from functools import lru_cache

import pytest
from lastgood.core.errors import ConfigError
from lastgood.core.pg_dump_args import (
    ALIASES,
    ALLOWED,
    LONG_OPTIONS,
    REFUSED,
    SHORT_OPTIONS,
    check_pg_dump_args,
    normalise_pg_dump_args,
    parse_pg_dump_args,
)
from lastgood.engines.pg_tools import pg_bin_dir


@lru_cache(maxsize=1)
def _pg_dump() -> str:
    return str(pg_bin_dir() / "pg_dump")


def _stderr(*args: str, tmp: str = "/nonexistent") -> str:
    """pg_dump's complaint about `args` (it stops at the first parse error, before connecting)."""
    env = {"PGCONNECT_TIMEOUT": "1", "PGHOST": "127.0.0.1", "PGPORT": "1", "PATH": "/usr/bin:/bin"}
    done = subprocess.run(
        [_pg_dump(), "-w", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=20,
        stdin=subprocess.DEVNULL,
        check=False,
    )
    return done.stderr


def test_the_table_matches_pg_dump_help():
    text = subprocess.run([_pg_dump(), "--help"], capture_output=True, text=True, check=True).stdout
    assert "pg_dump" in text
    seen = set()
    for short, name, eq in re.findall(r"^\s+(?:-(.), )?--([a-z][a-z0-9-]*)(=)?", text, re.M):
        seen.add(name)
        assert name in LONG_OPTIONS, f"--{name} from pg_dump --help is missing from the table"
        letter, takes = LONG_OPTIONS[name]
        assert takes == bool(eq), f"--{name}: value-ness differs from pg_dump --help"
        assert (letter or "") == short, f"--{name}: short letter differs from pg_dump --help"
    hidden = set(LONG_OPTIONS) - seen
    assert hidden <= {"attribute-inserts", "no-acl", "no-reconnect"}, hidden
    assert set(ALIASES) <= set(LONG_OPTIONS) and set(ALIASES.values()) <= set(LONG_OPTIONS)


@pytest.mark.parametrize("name", sorted(LONG_OPTIONS))
def test_every_long_option_is_one_pg_dump_knows_with_the_same_value_ness(name):
    complaint = _stderr(f"--{name}")
    assert "unrecognized option" not in complaint and "ambiguous" not in complaint
    assert ("requires an argument" in complaint) == LONG_OPTIONS[name][1], complaint


def test_every_short_letter_matches_the_getopt_string():
    for letter, (_, takes) in SHORT_OPTIONS.items():
        complaint = _stderr(f"-{letter}")
        assert "invalid option" not in complaint, letter
        assert ("requires an argument" in complaint) == takes, (letter, complaint)
    for letter in "gGiIkKlLmMoPqQruyYz":
        assert "invalid option" in _stderr(f"-{letter}"), letter


@pytest.mark.parametrize(
    "prefix", ["no-s", "no-comm", "form", "dbn", "fil", "exclude-table-d", "no-bl", "lar", "s", "sche", "t"]
)
def test_abbreviations_resolve_as_pg_dump_resolves_them(prefix):
    complaint = _stderr(f"--{prefix}")
    try:
        (option,) = parse_pg_dump_args([f"--{prefix}", "v"] if "requires" in complaint else [f"--{prefix}"])
    except ConfigError as exc:
        assert "ambiguous" in str(exc)
        assert "is ambiguous" in complaint, complaint
        return
    assert "is ambiguous" not in complaint and "unrecognized" not in complaint
    named = re.search(r"option '--([a-z0-9-]+)' requires", complaint)
    if named:
        assert option.name == named.group(1)


def test_policy_covers_every_option_once():
    names = {ALIASES.get(n, n) for n in LONG_OPTIONS} | {"-X"}
    assert set(ALLOWED) | set(REFUSED) == names
    assert not set(ALLOWED) & set(REFUSED)


@pytest.mark.parametrize(
    ("args", "named"),
    [
        (["-sf/tmp/x"], "-s (--schema-only)"),
        (["-as"], "-a (--data-only)"),
        (["--form=p"], "--format (written --form)"),
        (["--dbn=x"], "--dbname (written --dbn)"),
        (["-Fp"], "-F (--format)"),
        (["-j", "4"], "-j (--jobs)"),
        (["--snapshot", "x"], "--snapshot"),
        (["--sect=data"], "--section"),
        (["-Z", "zstd"], "gzip"),
        (["--no-comments=yes"], "takes no value"),
        (["-t"], "needs a value"),
        (["appdb"], "positional"),
        (["--", "appdb"], "positional"),
        (["--fil=/tmp/x"], "ambiguous"),
        (["-X"], "not a pg_dump 18 option"),
        (["-q"], "not a pg_dump option"),
    ],
)
def test_refused_options_name_what_was_written_and_why(args, named):
    with pytest.raises(ConfigError) as refused:
        check_pg_dump_args(args)
    assert named in str(refused.value) and "pg_dump_args" in str(refused.value)


def test_allowed_options_are_normalised_to_pg_dumps_long_spelling():
    assert normalise_pg_dump_args(
        ["-Z9", "--no-comm", "-xO", "-tpublic.a", "--exclude-table-data", "log"]
    ) == [
        "--compress=9",
        "--no-comments",
        "--no-privileges",
        "--no-owner",
        "--table=public.a",
        "--exclude-table-data=log",
    ]
    # A value is taken as written even when it looks like an option (as getopt does)
    assert normalise_pg_dump_args(["-t", "--format=p"]) == ["--table=--format=p"]
    assert normalise_pg_dump_args(["--blobs", "--no-acl", "--lock-wait-timeout=10s"]) == [
        "--large-objects",
        "--no-privileges",
        "--lock-wait-timeout=10s",
    ]

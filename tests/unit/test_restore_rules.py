"""Pure rules of a restore: which backup, which target, and how counts are compared."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
from lastgood.backups.restore import RestoreReport, check_target_engine, compare_counts, find_backup
from lastgood.core.errors import BackupIntegrityError, BackupNotFound, RestoreError, UsageError


@pytest.mark.parametrize(
    ("engine", "url"),
    [
        ("postgres", "postgresql://u@h/db"),
        ("postgres", "postgres://u@h/db"),
        ("mongodb", "mongodb://h/db"),
        ("mongodb", "mongodb+srv://h/db"),
        ("upstash", "redis://h:6379/1"),
        ("upstash", "https://x.upstash.io"),
    ],
)
def test_matching_target_schemes_are_accepted(engine, url):
    check_target_engine(engine, url)


@pytest.mark.parametrize(
    ("engine", "url", "named"),
    [
        ("postgres", "mongodb://h/db", "mongodb"),
        ("mongodb", "postgresql://u@h/db", "postgresql"),
        ("upstash", "mongodb://h/db", "mongodb"),
        ("postgres", "/tmp/socket", "scheme-less"),
    ],
)
def test_wrong_engine_for_the_target_is_refused_naming_both(engine, url, named):
    with pytest.raises(RestoreError) as err:
        check_target_engine(engine, url)
    assert f"a {engine} backup cannot be restored into a {named} target" in str(err.value)


def test_counts_match_across_databases_by_collection_name():
    # Given manifest counts from database `app` and a restore into `scratch`
    checks = compare_counts(
        {"app.users": 3, "app.orders": 5}, {"scratch.users": 3, "scratch.orders": 4}, None
    )
    # Then each is compared by its name inside the database
    assert [(c.name, c.expected, c.restored, c.ok) for c in checks] == [
        ("app.orders", 5, 4, False),
        ("app.users", 3, 3, True),
    ]


def test_missing_table_in_the_target_is_a_mismatch():
    (check,) = compare_counts({"public.users": 2}, {}, None)
    assert check.restored is None and not check.ok


def test_only_limits_the_compared_names():
    checks = compare_counts({"app.users": 1, "app.orders": 2}, {"app.users": 1}, ["users"])
    assert [c.name for c in checks] == ["app.users"]


def test_report_totals_and_mismatches():
    report = RestoreReport("s", "20250101T000000Z-abcdef", "postgres", "postgresql://h/db", 0.5, 1.25)
    report.checks = compare_counts({"public.t": 1}, {"public.t": 2}, None)
    assert report.total_seconds == 1.75 and not report.ok
    assert report.as_dict()["recovery_time_seconds"] == 1.75
    assert [c.name for c in report.mismatches()] == ["public.t"]


@dataclass
class _Listing:
    backup_id: str
    status: str
    manifest: None = None  # with_details not simulated: find_backup reads the manifest itself
    keys: tuple[str, ...] = ()
    suspect: bool = False


class _Manifest(str):
    """What the fake's read_manifest returns: a readable name, with the fields --latest looks at."""

    objects: tuple[()] = ()
    suspect = False


class _FakeStore:
    """Just the listing side of BackupStore that find_backup reads."""

    def __init__(self, backups: dict[str, list[_Listing]]) -> None:
        self.backups = backups

    def list_sources(self) -> list[str]:
        return sorted(self.backups)

    def list_backups(self, source: str, *, with_details: bool = True) -> list[_Listing]:
        return self.backups.get(source, [])

    def latest_backup(self, source: str) -> _Listing | None:
        good = [b for b in self.backups.get(source, []) if b.status != "incomplete"]
        return good[0] if good else None

    def read_manifest(self, source: str, backup_id: str) -> str:
        return _Manifest(f"{source}/{backup_id}")


STORE = _FakeStore(
    {
        "postgres": [
            _Listing("20250102T000000Z-bbbbbb", "incomplete"),
            _Listing("20250101T000000Z-aaaaaa", "complete"),
        ],
        "mongodb": [],
    }
)


def test_find_backup_by_id_searches_every_source():
    assert find_backup(STORE, "20250101T000000Z-aaaaaa") == "postgres/20250101T000000Z-aaaaaa"  # type: ignore[arg-type]


def test_latest_skips_incomplete_backups():
    assert find_backup(STORE, None, source="postgres", latest=True) == "postgres/20250101T000000Z-aaaaaa"  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "error", "text"),
    [
        ({"backup_id": "20250102T000000Z-bbbbbb"}, BackupIntegrityError, "incomplete (no manifest.json)"),
        ({"backup_id": "20990101T000000Z-cccccc"}, BackupNotFound, "no source has it"),
        ({"backup_id": "latest"}, BackupNotFound, "expected YYYYMMDDTHHMMSSZ-xxxxxx"),
        ({"backup_id": None}, UsageError, "give a BACKUP_ID or --latest"),  # exit 2: usage
        ({"backup_id": None, "latest": True}, UsageError, "--latest needs --source"),
        ({"backup_id": None, "latest": True, "source": "mongodb"}, BackupNotFound, "no complete backup"),
        (
            {"backup_id": "20250101T000000Z-aaaaaa", "latest": True, "source": "postgres"},
            UsageError,
            "not both",
        ),
    ],
)
def test_find_backup_refusals_say_why(kwargs, error, text):
    with pytest.raises(error) as err:
        find_backup(STORE, **kwargs)  # type: ignore[arg-type]
    assert text in str(err.value)

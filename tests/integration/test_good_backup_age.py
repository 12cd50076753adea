"""GoodBackupAgeSeconds: the dashboard's "time since last good backup" is not reset by a suspect one.

A suspect backup (here: every table dropped, so the dump has no tables) is committed and is
the newest complete backup, so `BackupAgeSeconds` (the late alarm's input) restarts from it;
the age of the last *good* backup keeps growing until a good one is taken or the suspect one
is accepted. Backups are made by the real backup code against a fixture PostgreSQL database.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from lastgood.backups.keys import source_prefix
from lastgood.backups.run import run_backup
from lastgood.backups.store import BackupStore
from lastgood.core.config import get_config, reset_config
from lastgood.core.settings import reset_settings
from lastgood.monitoring.freshness import backup_freshness, emit_freshness_metrics

from tests.helpers.backup import create_database, drop_database, pg_url
from tests.helpers.config import suite_config_document
from tests.helpers.restore import run_cli

pytestmark = pytest.mark.devstack


@pytest.fixture
def source(devstack, tmp_path: Path, monkeypatch) -> Iterator[tuple[str, str]]:
    """(source name, its database URL): a seeded fixture database declared as an extra source."""
    database = create_database("goodage")
    url = pg_url(database)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CREATE TABLE items (id int PRIMARY KEY)")
        conn.execute("INSERT INTO items SELECT generate_series(1, 50)")
    name = f"ga{database.rsplit('_', 1)[1]}"
    config = suite_config_document()
    config["sources"].append({"name": name, "engine": "postgres", "url_secret": "TEST_GOOD_AGE_PG_URL"})
    path = tmp_path / "config.json"
    path.write_text(json.dumps(config))
    monkeypatch.setenv("LASTGOOD_CONFIG", str(path))
    monkeypatch.setenv("TEST_GOOD_AGE_PG_URL", url)
    reset_settings()
    reset_config()
    store = BackupStore.from_settings()
    try:
        yield name, url
    finally:
        for page in store.s3.get_paginator("list_objects_v2").paginate(
            Bucket=store.bucket, Prefix=source_prefix(name)
        ):
            for obj in page.get("Contents", []):
                store.s3.delete_object(Bucket=store.bucket, Key=obj["Key"])
        drop_database(database)
        monkeypatch.undo()
        reset_settings()
        reset_config()


def _ages(name: str, capsys) -> tuple[dict[str, float | None], dict[str, list[float]]]:
    """(freshness ages, the EMF values the health run emits for `name`)."""
    capsys.readouterr()
    item = next(b for b in backup_freshness(get_config(), now=datetime.now(UTC)) if b.source == name)
    emit_freshness_metrics([item], [])
    emitted = [
        json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith('{"_aws"')
    ]
    (record,) = [doc for doc in emitted if doc.get("source") == name]
    return {"newest": item.age_seconds, "good": item.good_age_seconds}, record


def test_a_suspect_backup_does_not_reset_the_age_of_the_last_good_backup(source, monkeypatch, capsys) -> None:
    name, url = source
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    # Given one good backup, then (a few seconds later) a suspect one of the emptied database
    assert run_backup(name, on_demand=True).status == "ok"
    time.sleep(3)
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP TABLE items")
    suspect = run_backup(name, on_demand=True)
    assert suspect.manifest is not None and suspect.manifest.suspect
    # When health computes freshness / Then the newest complete backup is the suspect one,
    # and the last good one is older by the time between them
    ages, record = _ages(name, capsys)
    assert ages["newest"] is not None and ages["good"] is not None
    assert ages["good"] >= ages["newest"] + 2.5
    # And both ages are emitted in one record, with the source dimension
    assert "BackupAgeSeconds" in record and "GoodBackupAgeSeconds" in record
    assert record["GoodBackupAgeSeconds"][0] >= record["BackupAgeSeconds"][0] + 2.5  # EMF values are lists

    # When a person accepts the suspect backup / Then it counts as good: the two ages agree
    assert run_cli("accept", suspect.backup_id).code == 0
    ages, _ = _ages(name, capsys)
    assert ages["good"] == pytest.approx(ages["newest"], abs=0.5)


def test_a_source_with_only_suspect_backups_emits_no_good_backup_age(source, monkeypatch, capsys) -> None:
    name, url = source
    monkeypatch.setenv("POWERTOOLS_METRICS_DISABLED", "false")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP TABLE items")
    assert run_backup(name, on_demand=True).manifest.suspect  # no tables at all: suspect from the first
    ages, record = _ages(name, capsys)
    assert ages["newest"] is not None and ages["good"] is None
    assert "BackupAgeSeconds" in record and "GoodBackupAgeSeconds" not in record

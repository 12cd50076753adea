"""`lastgood status --out status.html` on the devstack, checked in headless Chromium.

Real backups (the backup code against the devstack's PostgreSQL), a pinned one, a real
restore drill (`lastgood verify --drill`), a suspect backup (every table of a fixture source
dropped), a source whose every backup fails (its server is unreachable) and sources with no
backup yet; then the page is opened in Debian's chromium: no console error, one SVG mark per
backup (counted by `data-backup` in the browser's DOM), and a screenshot.

`LASTGOOD_WRITE_SCREENSHOT=1` also writes the screenshot to docs/status-page.png.
"""

from __future__ import annotations

import json
import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from lastgood.backups.run import run_backup
from lastgood.backups.store import BackupStore
from lastgood.cli import main
from lastgood.core.config import reset_config
from lastgood.core.errors import BackupError
from lastgood.core.settings import reset_settings

from scripts.screenshot_status import browser_available, inspect_page
from tests.helpers.backup import create_database, drop_database, pg_url
from tests.helpers.config import suite_config_document
from tests.helpers.restore import backup_now, run_cli

pytestmark = pytest.mark.devstack

ROOT = Path(__file__).resolve().parents[2]
DOCS_PNG = ROOT / "docs" / "status-page.png"
SUSPECT_SOURCE = "orders"
DOWN_SOURCE = "billing"


@pytest.fixture
def status_sources(clean_aws, monkeypatch, tmp_path: Path) -> Iterator[str]:
    """The demo's sources plus `orders` (a seeded fixture database) and `billing` (unreachable)."""
    clean_aws.seed()
    database = create_database("st_src")
    with psycopg.connect(pg_url(database), autocommit=True) as conn:
        conn.execute("CREATE TABLE orders (id int PRIMARY KEY, total numeric NOT NULL)")
        conn.execute("INSERT INTO orders SELECT g, g * 1.5 FROM generate_series(1, 300) g")
    config = suite_config_document()
    config["sources"] += [
        {"name": SUSPECT_SOURCE, "engine": "postgres", "url_secret": "TEST_STATUS_ORDERS_URL"},
        {"name": DOWN_SOURCE, "engine": "postgres", "url_secret": "TEST_STATUS_BILLING_URL"},
    ]
    path = tmp_path / "status-config.json"
    path.write_text(json.dumps(config))
    monkeypatch.setenv("LASTGOOD_CONFIG", str(path))
    monkeypatch.setenv("TEST_STATUS_ORDERS_URL", pg_url(database))
    # A port nothing listens on: every backup of `billing` fails with the source unavailable.
    monkeypatch.setenv(
        "TEST_STATUS_BILLING_URL", "postgresql://lastgood@127.0.0.1:1/billing?connect_timeout=2"
    )
    reset_settings()
    reset_config()
    try:
        yield pg_url(database)
    finally:
        drop_database(database)
        monkeypatch.undo()
        reset_settings()
        reset_config()


def _make_history(orders_url: str) -> dict[str, int]:
    """The backups, drill, suspect and failures the page must show; returns failures per source."""
    backup_now("postgres")
    pinned = run_backup("postgres", on_demand=True, pin=True, reason="deploy <b>4f2a9c1</b>")
    assert pinned.status == "ok"
    backup_now("postgres")
    assert main(["--no-env-file", "verify", "--latest", "--source", "postgres", "--drill"]) == 0
    backup_now("mongodb")
    backup_now(SUSPECT_SOURCE)
    with psycopg.connect(orders_url, autocommit=True) as conn:
        conn.execute("DROP TABLE orders")
    suspect = run_backup(SUSPECT_SOURCE, on_demand=True)
    assert suspect.manifest is not None and suspect.manifest.suspect
    for _ in range(2):
        with pytest.raises(BackupError):
            run_backup(DOWN_SOURCE, on_demand=True)
    assert run_cli("regenerate").code == 0  # the datasets published: fresh
    return {DOWN_SOURCE: 2}


@pytest.mark.skipif(browser_available() is not None, reason=str(browser_available()))
def test_status_page_in_chromium_has_one_mark_per_backup_and_no_console_errors(status_sources, tmp_path):
    # Given real backups, a pinned one, a drill, a suspect backup and a source whose backups all fail
    failures = _make_history(status_sources)
    store = BackupStore.from_settings()
    expected = {
        name: len(store.list_backups(name)) + failures.get(name, 0)
        for name in ("postgres", "mongodb", "upstash", SUSPECT_SOURCE, DOWN_SOURCE)
    }
    assert expected == {"postgres": 3, "mongodb": 1, "upstash": 0, SUSPECT_SOURCE: 2, DOWN_SOURCE: 2}
    # When the page is rendered by the CLI and opened in headless Chromium
    page = tmp_path / "status.html"
    result = run_cli("status", "--out", str(page))
    assert result.code == 0, result.err
    png = tmp_path / "status.png"
    check = inspect_page(page, png)
    # Then the browser logged no error, and each timeline has exactly one mark per backup
    assert check.console_errors == []
    assert {name: marks["backups"] for name, marks in check.marks.items()} == expected
    assert all(marks["buckets"] == 0 for marks in check.marks.values())  # few backups: never aggregated
    # with the states the stored documents say
    assert sorted(check.marks["postgres"]["states"]) == ["complete", "complete", "verified"]
    assert check.marks["postgres"]["pinned"] == 1 and check.marks["postgres"]["drills"] == 1
    assert sorted(check.marks[SUSPECT_SOURCE]["states"]) == ["complete", "suspect"]
    assert check.marks[DOWN_SOURCE]["states"] == ["failed", "failed"]
    assert check.health == "attention"  # billing has no good backup, upstash none at all
    # and the screenshot is a real PNG of the whole page
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and check.height > 900
    html = page.read_text()
    assert "deploy &lt;b&gt;4f2a9c1&lt;/b&gt;" in html and "<b>4f2a9c1" not in html
    assert all(
        f'data-dataset="{name}" data-ok="true"' in html for name in ("prompts", "patterns", "learning")
    )
    if os.environ.get("LASTGOOD_WRITE_SCREENSHOT"):
        shutil.copyfile(png, DOCS_PNG)

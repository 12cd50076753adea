"""A PITR source on its own devstack database, for the point-in-time-recovery tests."""

from __future__ import annotations

import json
import os
import secrets
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from lastgood.core.config import reset_config
from lastgood.core.settings import reset_settings

from tests.helpers.backup import create_database, drop_database, pg_url
from tests.helpers.config import suite_config_document

SCHEMA = """
CREATE TABLE customers (id serial PRIMARY KEY, name text NOT NULL, bio text);
CREATE TABLE orders (id int GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
                     customer_id int NOT NULL REFERENCES customers(id), amount numeric(10,2), note text);
CREATE TABLE tags (name text PRIMARY KEY, weight int);
INSERT INTO customers (name, bio) SELECT 'c' || g, repeat('bio ', 10) FROM generate_series(1, 20) g;
INSERT INTO orders (customer_id, amount) SELECT 1 + g % 20, g * 1.5 FROM generate_series(1, 40) g;
INSERT INTO tags VALUES ('a', 1), ('b', 2);
"""
TABLES = {"customers": "id", "orders": "id", "tags": "name"}


def snapshot(url: str, tables: dict[str, str] | None = None) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table, ordered by key."""
    with psycopg.connect(url) as conn:
        return {
            t: conn.execute(f"SELECT * FROM {t} ORDER BY {k}").fetchall()
            for t, k in (tables or TABLES).items()
        }


def execute(url: str, *statements: str) -> None:
    with psycopg.connect(url) as conn:
        for stmt in statements:
            conn.execute(stmt)


@contextmanager
def pitr_source(tmp_path: Path, name: str | None = None, **options: Any) -> Iterator[tuple[str, str]]:
    """(source name, source URL): a fresh database with SCHEMA, declared `pitr = true` (env PITR_DB_URL)."""
    name = name or f"pitr-{secrets.token_hex(3)}"  # a source of its own: the bucket is shared by the session
    db = create_database("lg_pitr")
    url = pg_url(db)
    execute(url, SCHEMA)
    config = suite_config_document()
    config["sources"].append(
        {"name": name, "engine": "postgres", "url_secret": "PITR_DB_URL", "pitr": True, **options}
    )
    path = tmp_path / "pitr-config.json"
    path.write_text(json.dumps(config))
    saved = {k: os.environ.get(k) for k in ("LASTGOOD_CONFIG", "PITR_DB_URL")}
    os.environ["LASTGOOD_CONFIG"] = str(path)
    os.environ["PITR_DB_URL"] = url
    reset_settings()
    reset_config()
    try:
        yield name, url
    finally:
        with psycopg.connect(url, autocommit=True) as conn:
            for (slot,) in conn.execute(
                "SELECT slot_name FROM pg_replication_slots WHERE database = current_database()"
            ).fetchall():
                conn.execute("SELECT pg_drop_replication_slot(%s)", (slot,))
        drop_database(db)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        reset_settings()
        reset_config()


@contextmanager
def empty_database() -> Iterator[str]:
    db = create_database("lg_pitr_target")
    try:
        yield pg_url(db)
    finally:
        drop_database(db)

"""Helpers for the backup tests: tables in the devstack PostgreSQL, S3 checks, fault-timing wrappers."""

from __future__ import annotations

import os
import secrets
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import psycopg
from botocore.exceptions import ClientError
from lastgood.engines.pg_tools import pg_bin_dir


def pg_url(dbname: str | None = None) -> str:
    url = os.environ["DATABASE_URL"]
    return url if dbname is None else url.rsplit("/", 1)[0] + "/" + dbname


def create_database(prefix: str) -> str:
    """A fresh empty database (name returned); drop it with `drop_database`."""
    name = f"{prefix}_{secrets.token_hex(3)}"
    with psycopg.connect(pg_url("postgres"), autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    return name


def drop_database(name: str) -> None:
    with psycopg.connect(pg_url("postgres"), autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def table_counts(url: str) -> dict[str, int]:
    from lastgood.engines.postgres import ENGINE

    return ENGINE.counts(url)


def fill_random_table(url: str, table: str, megabytes: int) -> None:
    """A table of incompressible bytea rows (~`megabytes` MB), so the dump is about that big."""
    rows = megabytes * 1024 * 1024 // 128
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {table}")
        conn.execute(f"CREATE TABLE {table} (id int PRIMARY KEY, payload bytea NOT NULL)")
        conn.execute(
            f"INSERT INTO {table} SELECT g, decode("
            + " || ".join(["md5(random()::text)"] * 8)
            + ", 'hex') FROM generate_series(1, %s) g",
            (rows,),
        )


def drop_table(url: str, table: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f"DROP TABLE IF EXISTS {table}")


def pg_restore_file(path: Path, url: str) -> subprocess.CompletedProcess[str]:
    """Run the bundled stock `pg_restore` on a downloaded dump, as a user would."""
    return subprocess.run(
        [
            str(pg_bin_dir() / "pg_restore"),
            "--no-owner",
            "--no-privileges",
            "--exit-on-error",
            "-d",
            url,
            str(path),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def open_uploads(s3: Any, bucket: str) -> list[dict[str, Any]]:
    return list(s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []))


def manifest_keys(s3: Any, bucket: str, source: str) -> set[str]:
    keys: set[str] = set()
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"backups/{source}/"):
        keys |= {o["Key"] for o in page.get("Contents", []) if o["Key"].endswith("/manifest.json")}
    return keys


class S3Hook:
    """Delegates to a real S3 client; runs `on_part(number)` before each `upload_part`.

    The hook either injects a fault S3 cannot produce on demand (raise on part 2)
    or times a real fault (stop PostgreSQL once the dump is mid-way).
    """

    def __init__(self, real: Any, on_part: Callable[[int], None]) -> None:
        self._real = real
        self._on_part = on_part
        self.parts_seen: list[int] = []

    def upload_part(self, **kwargs: Any) -> Any:
        self.parts_seen.append(int(kwargs["PartNumber"]))
        self._on_part(int(kwargs["PartNumber"]))
        return self._real.upload_part(**kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


def fail_part(number: int) -> Callable[[int], None]:
    def hook(part: int) -> None:
        if part == number:
            raise ClientError({"Error": {"Code": "InternalError", "Message": "injected"}}, "UploadPart")

    return hook

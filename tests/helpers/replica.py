"""Helpers for the cross-region replica tests: a config with `[replica]`, the replica stand-in,
and an unreachable primary or replica.

The devstack's replica stand-in is a second moto bucket in another region with its own KMS key
(devstack/stack.py: REPLICA_BUCKET); the replica client reaches it through
LASTGOOD_REPLICA_ENDPOINT_URL, so pointing S3 (AWS_ENDPOINT_URL_S3) at a closed port makes the
primary bucket unreachable while the replica still answers — what a lost primary region looks like.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from devstack.stack import REPLICA_BUCKET, REPLICA_REGION
from tests.helpers.health import closed_port

ROOT = Path(__file__).resolve().parents[2]
SUITE_CONFIG = ROOT / "tests" / "fixtures" / "config" / "demo.toml"


def reset_caches() -> None:
    from lastgood.core.aws import reset_clients
    from lastgood.core.config import reset_config
    from lastgood.core.settings import reset_settings

    reset_settings()
    reset_config()
    reset_clients()


def use_replica(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    *,
    max_age: str | None = "2h",
    retention: dict[str, Any] | None = None,
) -> Path:
    """The suite's config plus a `[replica]` table naming the devstack's replica stand-in."""
    lines = ["", "[replica]", f'bucket = "{REPLICA_BUCKET}"', f'region = "{REPLICA_REGION}"']
    if max_age is not None:
        lines.append(f'max_age = "{max_age}"')
    if retention:
        lines.append("[replica.retention]")
        lines += [f"{key} = {json.dumps(value)}" for key, value in retention.items()]
    path = tmp_path / "replica.toml"
    text = SUITE_CONFIG.read_text(encoding="utf-8").replace(
        'bundled_dir = "../../../devstack/demo/bundled"', f'bundled_dir = "{ROOT / "devstack/demo/bundled"}"'
    )
    path.write_text(text + "\n".join(lines) + "\n", encoding="utf-8")
    monkeypatch.setenv("LASTGOOD_CONFIG", str(path))
    reset_caches()
    return path


@contextlib.contextmanager
def primary_unreachable(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """S3 for the primary bucket points at a closed port; the replica keeps its own endpoint."""
    with monkeypatch.context() as patch:
        url = f"http://127.0.0.1:{closed_port()}"
        patch.setenv("AWS_ENDPOINT_URL_S3", url)
        reset_caches()
        try:
            yield url
        finally:
            patch.undo()
            reset_caches()


@contextlib.contextmanager
def replica_at(monkeypatch: pytest.MonkeyPatch, url: str) -> Iterator[None]:
    """The replica's endpoint is `url` (a closed port, a server that never answers)."""
    with monkeypatch.context() as patch:
        patch.setenv("LASTGOOD_REPLICA_ENDPOINT_URL", url)
        reset_caches()
        try:
            yield
        finally:
            patch.undo()
            reset_caches()


def replica() -> Any:
    from lastgood.backups.replica import replica_store

    return replica_store()


def primary() -> Any:
    from lastgood.backups.store import BackupStore

    return BackupStore.from_settings()

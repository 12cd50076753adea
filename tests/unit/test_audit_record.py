"""Audit record shape and key layout (seed 003: who/what/when/result): pure rules."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from lastgood.storage.audit import build_record, encode, normalize_kind, record_key

AT = datetime(2025, 1, 29, 2, 0, 3, 123456, tzinfo=UTC)


def test_record_carries_who_what_when_and_the_callers_fields(monkeypatch: pytest.MonkeyPatch) -> None:
    # Given a Lambda run
    monkeypatch.setenv("AWS_LAMBDA_FUNCTION_NAME", "lastgood-backup")
    # When a backup record is built
    doc = build_record(
        {"operation": "backup", "source": "postgres", "result": "ok"}, now=AT, record_id="3f9a1c0b"
    )
    # Then it has the format, id, kind, time, actor and the details
    assert doc == {
        "format": 1,
        "id": "3f9a1c0b",
        "kind": "backup",
        "operation": "backup",
        "at": "2025-01-29T02:00:03.123456Z",
        "actor": "lastgood-backup",
        "source": "postgres",
        "result": "ok",
    }


def test_cli_actor_and_caller_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AWS_LAMBDA_FUNCTION_NAME", raising=False)
    monkeypatch.setenv("USER", "alice")
    assert build_record({"kind": "prune"}, now=AT)["actor"] == "cli:alice"
    assert build_record({"kind": "prune", "actor": "ci"}, now=AT)["actor"] == "ci"


def test_key_layout_is_kind_then_date_then_sortable_time() -> None:
    assert (
        record_key("backup", AT, "3f9a1c0b")
        == "audit/backup/2025/01/29/20250129T020003.123456Z-3f9a1c0b.json"
    )
    later = record_key("backup", AT.replace(second=4), "00000000")
    assert later > record_key("backup", AT, "ffffffff")


def test_kind_is_a_safe_path_segment() -> None:
    assert normalize_kind("KV Resync") == "kv-resync"
    assert normalize_kind("../../etc") == "etc"
    assert normalize_kind("") == "event"


def test_encoding_is_one_json_line() -> None:
    body = encode({"b": 1, "a": datetime(2025, 1, 1, tzinfo=UTC)})
    assert body.endswith(b"\n") and body.count(b"\n") == 1
    assert body.startswith(b'{"a": ')

"""Canonical JSON: the same documents always give the same bytes (and SHA-256)."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import pytest
from bson import Binary, Decimal128, ObjectId, Regex, Timestamp
from hypothesis import given
from hypothesis import strategies as st
from lastgood.site.canonical import CanonicalError, dumps, iso_ms, render_items, sha256_hex


def test_keys_are_sorted_at_every_level_with_compact_separators():
    # Given documents whose keys arrive in different orders
    a = {"b": 1, "a": {"z": [1, {"y": 2, "x": 3}], "c": None}}
    b = {"a": {"c": None, "z": [1, {"x": 3, "y": 2}]}, "b": 1}
    # When rendered / Then the bytes are identical, sorted and compact
    assert dumps(a) == dumps(b) == b'{"a":{"c":null,"z":[1,{"x":3,"y":2}]},"b":1}'


def test_non_ascii_text_is_utf8_not_escaped():
    assert dumps({"t": "café ✓"}) == '{"t":"café ✓"}'.encode()


def test_bson_and_python_types_render_deterministically():
    # Given every non-JSON type a MongoDB document carries
    oid = ObjectId("6730f2a1b2c3d4e5f6a7b8c9")
    doc = {
        "_id": oid,
        "at": datetime(2025, 11, 1, 9, 0, 0, 123456),  # naive = UTC, as pymongo returns it
        "aware": datetime(2025, 11, 1, 10, 0, tzinfo=timezone(timedelta(hours=1))),
        "day": date(2025, 11, 9),
        "price": Decimal128("12.50"),
        "exact": Decimal("0.10"),
        "raw": Binary(b"\x00\xff"),
        "bytes": b"hi",
        "uid": uuid.UUID("12345678-1234-5678-1234-567812345678"),
    }
    # When rendered
    out = json.loads(dumps(doc))
    # Then each has one stable string form
    assert out == {
        "_id": "6730f2a1b2c3d4e5f6a7b8c9",
        "at": "2025-11-01T09:00:00.123Z",
        "aware": "2025-11-01T09:00:00.000Z",
        "day": "2025-11-09",
        "price": "12.50",
        "exact": "0.10",
        "raw": "AP8=",
        "bytes": "aGk=",
        "uid": "12345678-1234-5678-1234-567812345678",
    }


@pytest.mark.parametrize(
    "value",
    [
        float("nan"),
        float("inf"),
        Decimal("NaN"),
        Decimal128("Infinity"),
        Timestamp(1, 1),
        Regex("^a"),
        {1, 2},
    ],
)
def test_values_without_a_stable_json_form_are_refused(value):
    # Given a value JSON cannot carry deterministically / Then rendering names the problem
    with pytest.raises(CanonicalError):
        dumps({"v": value})


def test_render_items_is_a_json_array_in_the_given_order_and_hash_is_sha256():
    body = render_items(iter([{"_id": "b"}, {"_id": "a"}]))
    assert body == b'[{"_id":"b"},{"_id":"a"}]'
    assert sha256_hex(b"") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"


def test_iso_ms_truncates_to_milliseconds_in_utc():
    assert iso_ms(datetime(2025, 1, 2, 3, 4, 5, 999999, tzinfo=UTC)) == "2025-01-02T03:04:05.999Z"


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(), children, max_size=4),
    max_leaves=20,
)


@given(json_values)
def test_rendering_is_a_pure_function_of_the_value(value):
    # Given any JSON value / When rendered twice and re-parsed / Then same bytes and same value
    assert dumps(value) == dumps(json.loads(dumps(value)))


def test_render_serialises_once_and_parses_the_published_bytes_back_only_on_demand(monkeypatch):
    from lastgood.site import query

    parsed: list[bytes] = []
    real_loads = json.loads
    monkeypatch.setattr(query.json, "loads", lambda body: parsed.append(body) or real_loads(body))
    # Given documents with a type readers see differently (a datetime becomes a string)
    docs = [{"_id": "a", "at": datetime(2025, 1, 1, tzinfo=UTC)}, {"_id": "b", "n": 1}]
    # When rendered: the bytes and their hash, nothing parsed back yet
    rendered = query.render(docs)
    assert rendered.body == render_items(docs) and rendered.sha256 == sha256_hex(rendered.body)
    assert rendered.count == 2 and parsed == []
    # Then items, when asked for, are exactly what a reader of the published bytes gets (once)
    assert (
        rendered.items
        == real_loads(rendered.body)
        == [{"_id": "a", "at": "2025-01-01T00:00:00.000Z"}, {"_id": "b", "n": 1}]
    )
    assert rendered.items is rendered.items and parsed == [rendered.body]

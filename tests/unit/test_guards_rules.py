"""Publishing guards: never empty, min_count, max_shrink, item schema (pure)."""

from __future__ import annotations

import pytest
from lastgood.core.config import DatasetConfig, get_config
from lastgood.core.errors import ConfigError, GuardRejected
from lastgood.site.guards import (
    check_schema,
    compile_check,
    evaluate,
    guard,
    items_problem,
    schema_errors,
    shrink_problem,
)

PROMPT_SCHEMA = {
    "type": "object",
    "required": ["_id", "title", "rating"],
    "properties": {
        "_id": {"type": "string", "minLength": 1},
        "title": {"type": "string"},
        "rating": {"type": "number", "minimum": 0, "maximum": 5},
        "tags": {"type": "array", "items": {"type": "string"}},
    },
}


def items(n: int) -> list[dict[str, object]]:
    return [{"_id": f"p{i}", "title": f"t{i}", "rating": 3} for i in range(n)]


def test_an_empty_result_is_refused_even_with_min_count_one():
    assert evaluate([], min_count=1, max_shrink=1.0, previous_count=None, schema=None) == (
        "empty result: an empty dataset is never published or served"
    )


def test_a_non_array_is_refused():
    assert "expected a JSON array" in str(items_problem({"items": []}, min_count=1, schema=None))


def test_below_min_count_is_refused_with_both_numbers():
    assert items_problem(items(9), min_count=10, schema=None) == "9 items is below min_count 10"
    assert items_problem(items(10), min_count=10, schema=None) is None


@pytest.mark.parametrize(
    ("count", "previous", "max_shrink", "refused"),
    [
        (30, 296, 0.5, True),  # a sudden 90 % drop
        (147, 296, 0.5, True),
        (148, 296, 0.5, False),  # exactly 50 % is allowed
        (296, 296, 0.5, False),
        (400, 296, 0.5, False),  # growth is always fine
        (1, 296, 1.0, False),  # max_shrink 1.0 allows any drop (but never to empty)
        (5, None, 0.5, False),  # no baseline yet: first publish
        (5, 0, 0.5, False),
    ],
)
def test_shrink_against_last_good(count, previous, max_shrink, refused):
    assert (shrink_problem(count, previous, max_shrink) is not None) is refused


def test_shrink_reason_names_the_drop_and_the_floor():
    reason = shrink_problem(30, 296, 0.5)
    assert reason == "30 items is a 90% drop from the last good 296 (max_shrink 50% allows at least 148)"


def test_schema_failures_are_counted_and_the_first_few_named():
    # Given 5 items of which 3 break the schema in different ways
    bad = items(5)
    bad[1].pop("title")
    bad[2]["rating"] = "five"
    bad[4]["rating"] = 9
    # When checked / Then the reason says how many failed and names the first problems
    reason = items_problem(bad, min_count=1, schema=PROMPT_SCHEMA)
    assert reason is not None
    assert reason.startswith("3 of 5 items fail the schema: ")
    assert "$[1]: missing required 'title'" in reason
    assert "$[2].rating: expected number, got string" in reason
    assert "$[4].rating: 9 is above maximum 5" in reason


@pytest.mark.parametrize(
    ("value", "schema", "ok"),
    [
        (True, {"type": "integer"}, False),  # JSON booleans are not numbers
        (3.0, {"type": "integer"}, True),
        (None, {"type": ["string", "null"]}, True),
        ("x", {"enum": ["a", "b"]}, False),
        ("", {"type": "string", "minLength": 1}, False),
        (["a", 1], {"type": "array", "items": {"type": "string"}}, False),
        ({"a": 1, "b": 2}, {"type": "object", "properties": {"a": {}}, "additionalProperties": False}, False),
        ({"a": 1}, {"type": "object", "properties": {"a": {}}, "additionalProperties": False}, True),
        (
            {"nested": {"n": "x"}},
            {"properties": {"nested": {"properties": {"n": {"type": "integer"}}}}},
            False,
        ),
    ],
)
def test_schema_subset(value, schema, ok):
    assert (schema_errors(value, schema) == []) is ok
    assert compile_check(schema)(value) is ok  # the fast path agrees with the detailed one


def test_guard_order_first_failure_wins():
    # Given a dataset that is both below min_count and a big drop / Then min_count is reported
    assert "below min_count" in str(
        evaluate(items(2), min_count=10, max_shrink=0.5, previous_count=296, schema=None)
    )


def test_guard_raises_guard_rejected_for_a_dataset_config():
    ds = DatasetConfig(name="prompts", collection="prompts", min_count=1, max_shrink=0.5)
    with pytest.raises(GuardRejected) as caught:
        guard(ds, items(10), previous_count=100)
    assert caught.value.dataset == "prompts" and "90% drop" in caught.value.reason
    guard(ds, items(60), previous_count=100)  # passes silently


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "object", "pattern": "^x"},  # unsupported keyword: never silently half-applied
        {"type": "date"},
        {"required": "title"},
        {"additionalProperties": {"type": "string"}},
        {"properties": {"a": {"format": "email"}}},
        [],
    ],
)
def test_unsupported_schemas_are_config_errors(schema):
    with pytest.raises(ConfigError):
        check_schema(schema)


def test_the_shipped_dataset_schemas_use_only_supported_keywords():
    for ds in get_config().datasets:
        assert ds.item_schema is not None
        check_schema(ds.item_schema)


class _FakeSite:
    """Nothing published yet; records what regenerate publishes."""

    def __init__(self) -> None:
        self.published: list[bytes] = []

    def current(self, _name):
        from lastgood.site.publish import Current

        return Current(live=None, last_good=None)

    def history(self, name, _window):
        from lastgood.site.documents import PublishHistory
        from lastgood.site.history import HistoryRead

        return HistoryRead(PublishHistory(dataset=name), None)

    def publish(self, _name, body, *_args, **_kwargs):
        from lastgood.site.publish import PublishResult

        self.published.append(body)
        return PublishResult(True, True, "etag", sequence=1)


@pytest.mark.parametrize("schema", [None, {"type": "object", "properties": {"at": {"type": "number"}}}])
def test_regenerate_guards_the_published_form_and_parses_it_back_only_for_a_schema(monkeypatch, schema):
    from datetime import UTC, datetime

    from lastgood.site import query
    from lastgood.site.canonical import render_items
    from lastgood.site.regenerate import regenerate_dataset

    # Given documents holding a datetime, which readers get as an ISO string
    docs = [{"_id": "a", "at": datetime(2025, 1, 1, tzinfo=UTC)}]
    monkeypatch.setattr(query, "query_documents", lambda _ds: docs)
    parsed: list[bytes] = []
    real_loads = query.json.loads
    monkeypatch.setattr(query.json, "loads", lambda body: parsed.append(body) or real_loads(body))
    extra = {} if schema is None else {"schema": schema}
    dataset = DatasetConfig.model_validate({"name": "d", "collection": "c", "min_count": 1, **extra})
    site = _FakeSite()
    # When regenerated
    outcome = regenerate_dataset(dataset, site=site, generated_at="2025-01-01T00:00:00.000Z")
    if schema is None:
        # Then without a schema the documents are serialised once, never parsed back
        assert outcome.status == "published" and outcome.count == 1
        assert site.published == [render_items(docs)] and parsed == []
    else:
        # Then a schema sees the string readers would get (not the datetime) and refuses it
        assert outcome.status == "rejected" and "expected number, got string" in (outcome.reason or "")
        assert site.published == [] and parsed == [render_items(docs)]

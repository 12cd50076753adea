"""Issue 14, cases 1-3 (published data is checked by content, not by label), against the devstack.

Every test damages what a real S3 (moto) holds or reorders real writes, then runs regenerate
once and checks what a browser / the loader would now get. Fault injection (botocore event
hooks on a real moto client) only for what S3 cannot do on demand: a 500 on HEAD, a delayed
copy.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
from collections.abc import Callable, Iterator
from typing import Any

import boto3
import pytest
from botocore.awsrequest import AWSResponse
from lastgood.core import aws
from lastgood.core.config import get_config
from lastgood.core.settings import get_settings
from lastgood.site import regenerate as regenerate_module
from lastgood.site.documents import PublishedMeta, PublishHistory
from lastgood.site.keys import last_good_key, live_key
from lastgood.site.publish import SiteStore
from lastgood.site.query import query_documents, render
from lastgood.site.regenerate import regenerate

from tests.helpers.regenerate import (
    bucket,
    last_good_bytes,
    live_bytes,
    mongo_collection,
    reseeded_after,
    s3,
)

pytestmark = pytest.mark.devstack


# ---------------------------------------------------------------------------- helpers


def newest_accepted(name: str = "prompts") -> bytes:
    """What regenerate would publish from MongoDB now (the newest acceptable version)."""
    return render(query_documents(get_config().dataset(name))).body


def own_s3_client() -> Any:
    """A fresh client against moto (hooks registered on it do not leak into other tests)."""
    return boto3.session.Session().client(
        "s3", region_name=get_settings().aws_region, config=aws.DEFAULT_CONFIG
    )


def damage(key: str, body: bytes, *, keep_checksum_of: bytes | None = None) -> None:
    """Replace `key` with `body`, keeping its user metadata (the label) and cache headers.

    `keep_checksum_of`: also claim S3's SHA-256 checksum of those (original) bytes — moto accepts
    a wrong `ChecksumSHA256` on put (AWS would not), the worst case for trusting stored checksums.
    """
    head = s3().head_object(Bucket=bucket(), Key=key)
    extra: dict[str, Any] = {}
    if keep_checksum_of is not None:
        digest = base64.b64encode(hashlib.sha256(keep_checksum_of).digest()).decode()
        extra = {"ChecksumSHA256": digest}
    s3().put_object(
        Bucket=bucket(),
        Key=key,
        Body=body,
        Metadata=head["Metadata"],
        ContentType=head.get("ContentType", "application/json"),
        CacheControl=head.get("CacheControl", ""),
        **extra,
    )


def assert_valid_and_equal_to(name: str, expected: bytes) -> None:
    """live and last-good hold exactly `expected`, and their labels describe those bytes."""
    sha = hashlib.sha256(expected).hexdigest()
    assert live_bytes(name) == expected
    assert last_good_bytes(name) == expected
    for key in (live_key(name), last_good_key(name)):
        meta = PublishedMeta.from_s3(s3().head_object(Bucket=bucket(), Key=key)["Metadata"])
        assert meta.sha256 == sha, key
        assert meta.count == len(json.loads(expected)), key


@pytest.fixture
def metrics(monkeypatch: pytest.MonkeyPatch) -> list[tuple[dict[str, Any], dict[str, str]]]:
    """Every metric regenerate emits, as (values, dimensions)."""
    seen: list[tuple[dict[str, Any], dict[str, str]]] = []
    monkeypatch.setattr(regenerate_module, "emit_metrics", lambda values, **dims: seen.append((values, dims)))
    return seen


def repaired_metrics(seen: list[tuple[dict[str, Any], dict[str, str]]], name: str) -> int:
    return sum(1 for values, dims in seen if "DatasetRepaired" in values and dims.get("dataset") == name)


@pytest.fixture
def published(clean_aws: Any) -> Iterator[bytes]:
    report = regenerate()
    assert [o.status for o in report.outcomes] == ["published"] * 3, report.as_dict()
    body = live_bytes("prompts")
    assert body is not None
    yield body


class _Raw:
    """The raw stream botocore reads an injected response body from."""

    def __init__(self, body: bytes) -> None:
        self._body = io.BytesIO(body)

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._body.read()


# ---------------------------------------------------------------------------- case 1


@pytest.mark.parametrize(
    "replacement",
    [
        pytest.param(lambda good: good[: len(good) // 2], id="cut-in-half"),
        pytest.param(lambda good: b"[]", id="replaced-by-empty-array"),
        pytest.param(lambda good: json.dumps(json.loads(good)[:10]).encode(), id="replaced-by-valid-json"),
    ],
)
def test_case_1_damaged_live_with_its_label_kept_is_repaired_by_one_run(
    published: bytes, metrics: list[Any], replacement: Callable[[bytes], bytes]
) -> None:
    # Given live/data/prompts.json replaced with other bytes, its metadata (sha256, count) kept and
    # even S3's SHA-256 checksum claiming the original bytes (moto accepts a wrong one)
    damage(live_key("prompts"), replacement(published), keep_checksum_of=published)
    assert live_bytes("prompts") != published
    # When regenerate runs once
    report = regenerate(["prompts"])
    # Then it reports `repaired` (not "unchanged"), names live, and emits DatasetRepaired
    outcome = report.outcomes[0]
    assert outcome.status == "repaired", outcome.as_dict()
    assert outcome.as_dict()["repaired"] == ["live"]
    assert outcome.live_changed and report.invalidation is not None
    assert report.invalidation["paths"] == ["/data/prompts.json"]  # the CDN's cached bad copy goes too
    assert repaired_metrics(metrics, "prompts") == 1
    # And live and last-good are valid and equal to the newest accepted version
    assert_valid_and_equal_to("prompts", newest_accepted())
    # And the next run has nothing to do
    assert regenerate(["prompts"]).outcomes[0].status == "unchanged"


def test_case_1_live_and_last_good_both_damaged_are_both_repaired(
    published: bytes, metrics: list[Any]
) -> None:
    # Given live cut in half and last-good replaced by an empty array, both labels kept
    damage(live_key("prompts"), published[: len(published) // 2])
    damage(last_good_key("prompts"), b"[]")
    # When regenerate runs once
    report = regenerate(["prompts"])
    # Then both are rewritten and reported, and both are valid and equal to the newest version
    outcome = report.outcomes[0]
    assert outcome.status == "repaired", outcome.as_dict()
    assert outcome.as_dict()["repaired"] == ["live", "last-good"]
    assert repaired_metrics(metrics, "prompts") == 1
    assert_valid_and_equal_to("prompts", newest_accepted())


def test_case_1_damage_and_new_data_together_publish_the_new_data_and_report_the_repair(
    published: bytes, metrics: list[Any], devstack: Any
) -> None:
    with reseeded_after(devstack):
        # Given a damaged last-good and an edit in MongoDB
        damage(last_good_key("prompts"), published[:100])
        mongo_collection("prompts").update_one({"_id": "prompt-007"}, {"$set": {"title": "Edited"}})
        # When regenerate runs once
        outcome = regenerate(["prompts"]).outcomes[0]
        # Then the new version is published and the repair of last-good is reported
        assert outcome.status == "published", outcome.as_dict()
        assert outcome.as_dict()["repaired"] == ["last-good"]
        assert repaired_metrics(metrics, "prompts") == 1
        assert_valid_and_equal_to("prompts", newest_accepted())


def test_case_1_s3_500_on_head_but_200_on_get_still_checks_content_and_repairs(published: bytes) -> None:
    # Given a damaged live, and an S3 that answers every HEAD with 500 but serves GETs
    damage(live_key("prompts"), published[: len(published) // 3])
    client = own_s3_client()
    heads: list[str] = []

    def head_fails(**kwargs: Any) -> AWSResponse:
        heads.append(kwargs["request"].url)
        body = b"<Error><Code>InternalError</Code><Message>injected</Message></Error>"
        return AWSResponse(kwargs["request"].url, 500, {}, _Raw(body))

    client.meta.events.register("before-send.s3.HeadObject", head_fails)
    assert (
        client.get_object(Bucket=bucket(), Key=live_key("prompts"))["ResponseMetadata"]["HTTPStatusCode"]
        == 200
    )
    # When regenerate runs with that client
    report = regenerate(["prompts"], site=SiteStore(bucket(), client))
    # Then the content check does not depend on HEAD: live is repaired, nothing reported failed
    assert report.outcomes[0].status == "repaired", report.outcomes[0].as_dict()
    assert_valid_and_equal_to("prompts", newest_accepted())


def test_case_1_health_does_not_call_a_damaged_live_object_fresh(published: bytes) -> None:
    from lastgood.monitoring.freshness import dataset_freshness

    # Given live cut in half with its label kept, a minute after publishing (well within 2h)
    damage(live_key("prompts"), published[: len(published) // 2])
    # When health checks dataset freshness
    items = {i.dataset: i for i in dataset_freshness(get_config())}
    # Then prompts is not ok and says why; the intact datasets are fresh
    assert not items["prompts"].ok
    assert str(items["prompts"].as_dict()["error"]).startswith("damaged: its bytes hash to")
    assert items["patterns"].ok and items["learning"].ok
    # And after one regenerate run it is fresh again
    regenerate(["prompts"])
    assert {i.dataset: i.ok for i in dataset_freshness(get_config())}["prompts"]


# ---------------------------------------------------------------------------- case 2


def test_case_2_a_delayed_last_good_copy_never_moves_last_good_backwards(
    published: bytes, devstack: Any
) -> None:
    with reseeded_after(devstack):
        # Given run A with new data (title "A") whose last-good write is delayed until a later run B
        # (title "B") has published live AND last-good
        mongo_collection("prompts").update_one({"_id": "prompt-001"}, {"$set": {"title": "A"}})
        client = own_s3_client()
        runs_b: list[Any] = []

        def run_b_first(params: dict[str, Any], **_: Any) -> None:
            if params.get("Key") == last_good_key("prompts") and not runs_b:
                mongo_collection("prompts").update_one({"_id": "prompt-001"}, {"$set": {"title": "B"}})
                runs_b.append(regenerate(["prompts"]))  # its own client: no hook

        for operation in ("PutObject", "CopyObject"):
            client.meta.events.register(f"before-parameter-build.s3.{operation}", run_b_first)
        # When A runs (B runs inside A's delayed last-good write)
        report_a = regenerate(["prompts"], site=SiteStore(bucket(), client))
        # Then B published, and last-good still holds B's (newer) version, equal to live
        assert runs_b and runs_b[0].outcomes[0].status == "published", runs_b[0].as_dict()
        newest = newest_accepted()
        assert b'"title":"B"' in newest
        assert_valid_and_equal_to("prompts", newest)
        # And A says why it did not write last-good (it did publish its live version first)
        outcome_a = report_a.outcomes[0]
        assert outcome_a.status == "published", outcome_a.as_dict()
        assert "newer" in str(outcome_a.reason)
        # And the next run finds everything current
        assert regenerate(["prompts"]).outcomes[0].status == "unchanged"


def test_case_2_publish_steps_called_out_of_order_keep_the_newer_last_good(
    published: bytes, monkeypatch: pytest.MonkeyPatch
) -> None:
    from lastgood.site.canonical import render_items, sha256_hex

    store = SiteStore(bucket(), s3())
    a_body = render_items([{"_id": f"p-{i:03d}", "title": "A"} for i in range(296)])
    b_body = render_items([{"_id": f"p-{i:03d}", "title": "B"} for i in range(296)])
    # Given run A published live but its last-good step is held back (captured, not run)
    held: list[tuple[Any, ...]] = []
    real_promote = store.promote
    monkeypatch.setattr(store, "promote", lambda *args: held.append(args) or (False, None))
    store.publish(
        "prompts", a_body, sha256_hex(a_body), 296, "2025-11-09T10:00:00.000Z", store.current("prompts")
    )
    monkeypatch.setattr(store, "promote", real_promote)
    # And run B, which read A's live, published live and last-good completely
    store.publish(
        "prompts", b_body, sha256_hex(b_body), 296, "2025-11-09T10:05:00.000Z", store.current("prompts")
    )
    assert last_good_bytes("prompts") == b_body
    # When A's held-back last-good step finally runs, with what A had read
    assert len(held) == 1
    written, note = real_promote(*held[0])
    # Then it refuses: last-good (and live) still hold B, and the reason names the newer version
    assert not written and "newer version" in str(note)
    assert last_good_bytes("prompts") == b_body
    assert live_bytes("prompts") == b_body


# ---------------------------------------------------------------------------- case 3


def test_case_3_two_forty_percent_drops_in_a_row_the_second_is_refused(
    published: bytes, devstack: Any
) -> None:
    with reseeded_after(devstack):
        # Given 296 prompts published, then a 40 % drop (296 -> 178) that max_shrink 0.5 allows
        mongo_collection("prompts").delete_many({"_id": {"$gt": "prompt-178"}})
        first = regenerate(["prompts"]).outcomes[0]
        assert (first.status, first.count) == ("published", 178), first.as_dict()
        after_first = live_bytes("prompts")
        # When a second 40 % drop (178 -> 107) is regenerated within the shrink window
        mongo_collection("prompts").delete_many({"_id": {"$gt": "prompt-107"}})
        second = regenerate(["prompts"]).outcomes[0]
        # Then it is refused against the largest count published in the window (296), not 178
        assert second.status == "rejected", second.as_dict()
        assert "296" in str(second.reason) and "64% drop" in str(second.reason)
        assert second.previous_count == 296
        # And live and last-good still hold the 178 version
        assert live_bytes("prompts") == after_first
        assert last_good_bytes("prompts") == after_first


def test_case_3_history_lost_is_rebuilt_from_the_version_copies(published: bytes, devstack: Any) -> None:
    from lastgood.site.keys import history_key

    with reseeded_after(devstack):
        # Given one 40 % drop published, then the history document deleted (or never written)
        mongo_collection("prompts").delete_many({"_id": {"$gt": "prompt-178"}})
        assert regenerate(["prompts"]).outcomes[0].status == "published"
        s3().delete_object(Bucket=bucket(), Key=history_key("prompts"))
        # When a run finds the data unchanged / Then it stores the history rebuilt from versions/
        assert regenerate(["prompts"]).outcomes[0].status == "unchanged"
        stored = s3().get_object(Bucket=bucket(), Key=history_key("prompts"))["Body"].read()
        assert sorted(e.count for e in PublishHistory.parse(stored).entries) == [178, 296]
        # When the second drop is regenerated
        mongo_collection("prompts").delete_many({"_id": {"$gt": "prompt-107"}})
        second = regenerate(["prompts"]).outcomes[0]
        # Then the versions/ copies in the window still give the 296 baseline
        assert second.status == "rejected", second.as_dict()
        assert second.previous_count == 296


def test_case_3_a_damaged_history_document_is_rebuilt_not_trusted(published: bytes, devstack: Any) -> None:
    from lastgood.site.keys import history_key

    with reseeded_after(devstack):
        # Given one drop published, then the history document truncated
        mongo_collection("prompts").delete_many({"_id": {"$gt": "prompt-178"}})
        assert regenerate(["prompts"]).outcomes[0].status == "published"
        raw = s3().get_object(Bucket=bucket(), Key=history_key("prompts"))["Body"].read()
        s3().put_object(Bucket=bucket(), Key=history_key("prompts"), Body=raw[: len(raw) // 2])
        # When the second drop is regenerated / Then it is still refused against 296
        mongo_collection("prompts").delete_many({"_id": {"$gt": "prompt-107"}})
        second = regenerate(["prompts"]).outcomes[0]
        assert second.status == "rejected", second.as_dict()
        assert second.previous_count == 296

"""The conditional live write against moto: two regenerates racing never interleave."""

from __future__ import annotations

import pytest
from lastgood.site.canonical import render_items, sha256_hex
from lastgood.site.keys import live_key
from lastgood.site.publish import ConcurrentUpdate, Current
from lastgood.site.regenerate import regenerate

from tests.helpers.regenerate import (
    bucket,
    last_good_bytes,
    live_bytes,
    mongo_collection,
    reseeded_after,
    s3,
    site,
)

pytestmark = pytest.mark.devstack


def body_of(title: str) -> tuple[bytes, str]:
    body = render_items([{"_id": f"prompt-{i:03d}", "title": title} for i in range(20)])
    return body, sha256_hex(body)


def test_two_publishers_with_the_same_previous_etag_exactly_one_wins(clean_aws):
    # Given prompts published once, and two runs that both read the same live ETag
    regenerate(["prompts"])
    store = site()
    seen: Current = store.current("prompts")
    a_body, a_sha = body_of("A")
    b_body, b_sha = body_of("B")
    # When both publish against that ETag
    store.publish("prompts", a_body, a_sha, 20, "2025-11-09T10:00:00.000Z", seen)
    with pytest.raises(ConcurrentUpdate, match="concurrent update"):
        store.publish("prompts", b_body, b_sha, 20, "2025-11-09T10:00:01.000Z", seen)
    # Then live and last-good hold the winner's bytes, never a mix, and the loser wrote no live/last-good
    assert live_bytes("prompts") == a_body
    assert last_good_bytes("prompts") == a_body


def test_a_concurrent_regenerate_is_reported_as_failed_concurrent_update(clean_aws, devstack, monkeypatch):
    # Given published prompts, then an edit in MongoDB (so our run has something to publish)
    regenerate(["prompts"])
    with reseeded_after(devstack):
        mongo_collection("prompts").update_one({"_id": "prompt-001"}, {"$set": {"title": "ours"}})
        _race(monkeypatch)


def _race(monkeypatch):
    # And another run that publishes different content right after our run read live
    store = site()
    winner, winner_sha = body_of("winner")
    real_current = store.current

    def current_then_someone_else_publishes(name):
        seen = real_current(name)
        store.publish(name, winner, winner_sha, 20, "2025-11-09T10:00:00.000Z", seen)
        return seen

    monkeypatch.setattr(store, "current", current_then_someone_else_publishes)
    # When our run tries to publish with the stale ETag
    report = regenerate(["prompts"], site=store)
    # Then it reports failed(concurrent update) and live is the winner's bytes
    assert report.outcomes[0].status == "failed"
    assert str(report.outcomes[0].reason).startswith("concurrent update:")
    assert live_bytes("prompts") == winner
    assert report.invalidation is None


def test_first_publish_uses_if_none_match_so_a_racing_first_publish_loses(clean_aws):
    # Given no live object yet, seen as absent by two runs
    store = site()
    nothing = store.current("prompts")
    assert nothing.live is None
    a_body, a_sha = body_of("A")
    b_body, b_sha = body_of("B")
    # When both create it / Then the second gets ConcurrentUpdate (If-None-Match: *) and live is A
    store.publish("prompts", a_body, a_sha, 20, "2025-11-09T10:00:00.000Z", nothing)
    with pytest.raises(ConcurrentUpdate):
        store.publish("prompts", b_body, b_sha, 20, "2025-11-09T10:00:00.000Z", nothing)
    assert live_bytes("prompts") == a_body
    assert s3().head_object(Bucket=bucket(), Key=live_key("prompts"))["Metadata"]["sha256"] == a_sha


def test_racing_threads_with_the_same_etag_one_winner_and_live_is_whole(clean_aws):
    import threading

    # Given prompts published and 4 runs that all read the same live ETag
    regenerate(["prompts"])
    store = site()
    seen = store.current("prompts")
    bodies = [body_of(f"run{i}") for i in range(4)]
    barrier = threading.Barrier(len(bodies))
    outcomes: dict[int, str] = {}

    def publish(i: int) -> None:
        body, sha = bodies[i]
        barrier.wait()
        try:
            store.publish("prompts", body, sha, 20, "2025-11-09T10:00:00.000Z", seen)
            outcomes[i] = "won"
        except ConcurrentUpdate:
            outcomes[i] = "lost"

    threads = [threading.Thread(target=publish, args=(i,)) for i in range(len(bodies))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    # Then exactly one won and live is exactly its bytes
    winners = [i for i, o in outcomes.items() if o == "won"]
    assert len(outcomes) == len(bodies) and len(winners) == 1, outcomes
    assert live_bytes("prompts") == bodies[winners[0]][0]

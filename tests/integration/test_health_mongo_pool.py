"""Seed 000: a MongoDB pool that cannot hand out a connection within waitQueueTimeoutMS is
reported as the dependency being down — quickly, never as a hang or a crash.

Fault injection (allowed: a real server cannot be made to hold a pooled connection on
demand): a mockupdb server that never answers the first query keeps the single pooled
connection (maxPoolSize 1) checked out.
"""

from __future__ import annotations

import contextlib
import threading
import time

import pytest
from lastgood.core.settings import reset_settings
from lastgood.engines import mongodb
from mockupdb import MockupDB


@pytest.fixture
def silent_server():
    server = MockupDB(auto_ismaster={"maxWireVersion": 21, "minWireVersion": 0})
    server.run()
    yield server
    server.stop()


def test_pool_exhaustion_is_reported_as_not_ok_with_the_wait_queue_timeout(monkeypatch, silent_server):
    # Given maxPoolSize 1 and a short wait-queue timeout
    monkeypatch.setenv("MONGODB_MAX_POOL_SIZE", "1")
    monkeypatch.setenv("MONGODB_WAIT_QUEUE_TIMEOUT_MS", "300")
    reset_settings()
    url = silent_server.uri
    client = mongodb.get_client(url, server_selection_timeout_ms=2000)
    # And the only connection is busy with a query the server never answers
    holder = threading.Thread(target=lambda: _swallow(lambda: client.db.c.find_one({})), daemon=True)
    holder.start()
    silent_server.receives(timeout=5)  # the query arrived: the connection is checked out
    try:
        # When the health probe runs
        started = time.perf_counter()
        result = mongodb.ENGINE.probe(url, timeout_s=2.0)
        elapsed = time.perf_counter() - started
        # Then it fails fast with the pool's wait-queue timeout
        assert result.ok is False
        assert "WaitQueueTimeout" in (result.error or "") or "Timeout" in (result.error or "")
        assert elapsed < 2.5
    finally:
        mongodb.close_clients()
        reset_settings()


def _swallow(fn):
    with contextlib.suppress(Exception):
        fn()

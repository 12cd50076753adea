"""docs/runbook.md, run as written (issue 9: every runbook command has been run in a test or the demo).

Scenarios 1 (data deleted) and 2 (JSON missing in production) drive the `lastgood` CLI the way
an operator would; restores go into the scratch targets so the session's seeded data stays as
it is. The other scenarios' commands are run by the demo and the restore/verify/kv tests
(`tests/unit/test_docs_commands.py` checks that each one is).
"""

from __future__ import annotations

import json
import os
import time

import pytest
from lastgood.site import loader
from pymongo import MongoClient

from tests.helpers.regenerate import bucket, s3
from tests.helpers.restore import backup_now, run_cli

pytestmark = pytest.mark.devstack

RTO_USER_DATA_S = 4 * 3600  # seed 003: user data (the mongodb source's category)


def test_runbook_data_deleted_restores_the_collection_and_republishes(devstack):
    # Given a complete MongoDB backup of the seeded data
    backup_now("mongodb")
    scratch = os.environ["SCRATCH_MONGODB_URI"]
    db_name = os.environ["MONGODB_DB_NAME"]
    started = time.monotonic()

    # When the operator follows runbook section 1
    health = run_cli("health", "--json")
    listing = run_cli("list", "--source", "mongodb")
    everything = run_cli("restore", "--latest", "--source", "mongodb", "--target", scratch, "--force")
    only = run_cli(
        "restore",
        "--latest",
        "--source",
        "mongodb",
        "--target",
        scratch,
        "--only",
        f"{db_name}.prompts",
        "--force",
        "--yes",  # the runbook's command restores into production; here the scratch target
    )
    republished = run_cli("regenerate", "--dataset", "prompts")
    elapsed = time.monotonic() - started

    # Then each step answers, the restores match the manifest, and it all fits the RTO
    assert "sources" in json.loads(health.out) or health.out.strip(), health.err
    assert listing.code == 0 and "complete" in listing.out, listing.err
    assert everything.code == 0, everything.err
    assert only.code == 0, only.err
    client: MongoClient = MongoClient(scratch)
    try:
        restored = client.get_default_database().list_collection_names()
    finally:
        client.close()
    assert "prompts" in restored
    assert republished.code == 0, republished.err
    assert elapsed < RTO_USER_DATA_S


def test_runbook_json_missing_serves_from_a_fallback_and_refreshes_the_bundle(
    devstack, tmp_path, monkeypatch
):
    # Given every dataset published, then the live prompts object deleted (the seed-000 incident)
    assert run_cli("regenerate").code == 0
    s3().delete_object(Bucket=bucket(), Key="live/data/prompts.json")
    loader.clear_cache()

    # When the operator follows runbook section 2
    loaded = run_cli("load", "prompts")
    republished = run_cli("regenerate", "--dataset", "prompts")
    bundled = run_cli("bundle", "--dir", str(tmp_path))  # the runbook's `lastgood bundle`, into a temp dir

    # Then the data was served all along, live is back, and the bundled copy refreshed
    assert loaded.code == 0 and len(json.loads(loaded.out)) == 296, loaded.err
    assert "last-good" in loaded.err
    assert republished.code == 0, republished.err
    assert s3().head_object(Bucket=bucket(), Key="live/data/prompts.json")["ContentLength"] > 0
    assert bundled.code == 0, bundled.err
    assert len(json.loads((tmp_path / "prompts.json").read_text())) == 296

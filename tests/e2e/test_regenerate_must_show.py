"""Issue 4 "Must show", end to end: the regenerate function through the local invoker,
`lastgood load` as a user runs it (a subprocess), against the devstack."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from lastgood.cli.invoker import invoke
from lastgood.core.errors import SourceUnavailable
from lastgood.site.keys import live_key

from tests.helpers.events import event_path
from tests.helpers.regenerate import (
    bucket,
    invalidation_count,
    live_bytes,
    mongo_collection,
    reseeded_after,
    s3,
    wait_mongodb_down,
)

pytestmark = pytest.mark.devstack

LASTGOOD = [str(Path(sys.executable).parent / "lastgood"), "--no-env-file"]


def run_regenerate(event: str = "regenerate-schedule.json") -> dict:
    result = invoke("regenerate", event_path(event))
    assert isinstance(result, dict)
    return {d["dataset"]: d for d in result["datasets"]} | {"_report": result}


def lastgood_load(dataset: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    child_env = {**os.environ, **env}
    return subprocess.run(
        [*LASTGOOD, "load", dataset],
        capture_output=True,
        text=True,
        env=child_env,
        cwd=tmp_path,
        timeout=120,
    )


def test_invoke_publishes_296_prompts_then_a_second_run_is_unchanged_without_invalidation(clean_aws):
    # When the scheduled event is invoked
    first = run_regenerate()
    # Then live/data/prompts.json holds 296 items
    assert first["prompts"]["status"] == "published" and first["prompts"]["count"] == 296
    assert len(json.loads(live_bytes("prompts") or b"")) == 296
    # When it runs again with the same data
    before = invalidation_count()
    second = run_regenerate()
    # Then it reports unchanged and creates no invalidation
    assert {second[n]["status"] for n in ("prompts", "patterns", "learning")} == {"unchanged"}
    assert second["_report"]["invalidation"] is None
    assert invalidation_count() == before


def test_deleting_every_prompt_is_rejected_and_live_stays_byte_identical(clean_aws, devstack):
    run_regenerate()
    live = live_bytes("prompts")
    with reseeded_after(devstack):
        # Given every prompts document deleted
        mongo_collection("prompts").delete_many({})
        # When the prompts event is invoked
        result = run_regenerate("regenerate-prompts.json")
        # Then it is rejected and live is byte-identical
        assert result["prompts"]["status"] == "rejected"
        assert "empty result" in result["prompts"]["reason"]
        assert live_bytes("prompts") == live


def test_the_handler_raises_only_when_every_dataset_failed(clean_aws, stopped):
    with stopped("mongodb"):
        wait_mongodb_down()
        with pytest.raises(SourceUnavailable, match="every dataset failed"):
            invoke("regenerate", event_path("regenerate-schedule.json"))


def test_load_answers_from_last_good_then_bundled_then_fails_loudly(clean_aws, stopped, tmp_path):
    run_regenerate()
    # Given live deleted and MongoDB stopped
    s3().delete_object(Bucket=bucket(), Key=live_key("prompts"))
    with stopped("mongodb"):
        # When `lastgood load prompts` runs / Then 296 items from last-good
        result = lastgood_load("prompts", tmp_path)
        assert result.returncode == 0, result.stderr
        assert len(json.loads(result.stdout)) == 296
        assert "296 items from last-good" in result.stderr
        # When S3 is unreachable too / Then the bundled copy shipped in the package answers
        down = {"AWS_ENDPOINT_URL_S3": "http://127.0.0.1:9"}
        result = lastgood_load("prompts", tmp_path, **down)
        assert result.returncode == 0, result.stderr
        assert len(json.loads(result.stdout)) == 296
        assert "296 items from bundled" in result.stderr
        # When the bundled copy is missing as well / Then non-zero exit and CRITICAL
        empty = tmp_path / "no-bundle"
        empty.mkdir()
        result = lastgood_load("prompts", tmp_path, LASTGOOD_BUNDLED_DIR=str(empty), **down)
        assert result.returncode == 3
        assert result.stdout == ""
        assert "CRITICAL: All fallbacks failed" in result.stderr

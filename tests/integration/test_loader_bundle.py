"""`lastgood bundle` against the devstack: refreshes from last-good, never with bad data."""

from __future__ import annotations

import json

import pytest
from lastgood.site.bundle import refresh
from lastgood.site.keys import BUNDLE_INDEX, last_good_key
from lastgood.site.regenerate import regenerate

from tests.helpers.regenerate import bucket, last_good_bytes, s3

pytestmark = pytest.mark.devstack


def test_bundle_copies_last_good_bytes_and_records_their_age(clean_aws, tmp_path):
    regenerate()
    results = refresh(target=tmp_path)
    assert {r.dataset: (r.status, r.count) for r in results} == {
        "prompts": ("updated", 296),
        "patterns": ("updated", 18),
        "learning": ("updated", 20),
    }
    assert (tmp_path / "prompts.json").read_bytes() == last_good_bytes("prompts")
    assert (tmp_path / "prompts.json").stat().st_mode & 0o777 == 0o644  # readable by the Lambda user
    index = json.loads((tmp_path / BUNDLE_INDEX).read_text())
    assert index["prompts"]["count"] == 296 and index["prompts"]["generated_at"]
    # A second refresh rewrites nothing
    mtime = (tmp_path / "prompts.json").stat().st_mtime_ns
    assert {r.status for r in refresh(target=tmp_path)} == {"unchanged"}
    assert (tmp_path / "prompts.json").stat().st_mtime_ns == mtime


@pytest.mark.parametrize("bad", [b"[]", b"[{", b'{"a": 1}'], ids=["empty", "truncated", "not-an-array"])
def test_bundle_never_overwrites_a_good_copy_with_bad_last_good(clean_aws, tmp_path, bad):
    regenerate()
    refresh(target=tmp_path)
    good = (tmp_path / "prompts.json").read_bytes()
    s3().put_object(Bucket=bucket(), Key=last_good_key("prompts"), Body=bad)
    results = {r.dataset: r for r in refresh(["prompts"], target=tmp_path)}
    assert results["prompts"].status == "kept"
    assert (tmp_path / "prompts.json").read_bytes() == good


def test_bundle_keeps_the_copy_when_last_good_is_missing(clean_aws, tmp_path):
    (tmp_path / "prompts.json").write_bytes(b"[1]")
    results = refresh(["prompts"], target=tmp_path)
    assert results[0].status == "kept" and "unreadable" in str(results[0].reason)
    assert (tmp_path / "prompts.json").read_bytes() == b"[1]"

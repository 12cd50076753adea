"""`make bench` output naming per BENCH_SCALE and the limits table computed from a run's curves (pure)."""

from __future__ import annotations

import pytest

from bench import limits, report


@pytest.mark.parametrize(
    ("scale", "expected"),
    [(1.0, "results.json"), (10.0, "results-scale10.json"), (0.5, "results-scale0.5.json")],
)
def test_each_scale_writes_its_own_results_file_so_the_1x_file_is_never_overwritten(
    monkeypatch, scale, expected
):
    monkeypatch.setattr(report, "SCALE", scale)
    assert report.file_name("results.json") == expected
    assert report.file_name("curves.png") == expected.replace("results", "curves").replace(".json", ".png")


def test_limits_come_from_the_largest_measured_point_of_each_curve():
    def point(op, factor, mb, seconds, rss):
        return {
            "engine": "postgres",
            "op": op,
            "factor": factor,
            "items": factor * 1000,
            "data_mb": mb,
            "seconds": seconds,
            "mb_s": mb / seconds,
            "total_mb": rss,
        }

    # Given a small point dominated by fixed costs and a large one
    doc = {
        "series": {
            "curves": [
                point("backup", 1, 10, 5, 120),
                point("backup", 10, 100, 20, 110),
                point("restore", 10, 100, 10, 90),
            ]
        }
    }
    backup, restore = limits.rows(doc)
    # Then the throughput is the large point's (5 MB/s), the RSS the largest peak of any point
    assert backup[1].startswith("5.0 MB/s") and backup[2] == "120 MB"
    assert backup[3].startswith("~4.3 GB") and backup[4] == "~3.0 GB"  # 870 s and 600 s at 5 MB/s
    assert restore[3].startswith("~8.7 GB") and restore[4] == "—"

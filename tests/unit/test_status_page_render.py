"""The status page's pure rendering: escaping, first deploy, only failures, 10,000 backups."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser

from lastgood.monitoring.status_model import (
    STATES,
    WINDOW,
    BackupMark,
    DatasetRow,
    DrillMark,
    SourceTimeline,
    StatusInputs,
)
from lastgood.monitoring.status_page import BUCKETS, MAX_MARKS, render

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


class Elements(HTMLParser):
    """Every start tag with its attributes, and the text, of a rendered page."""

    def __init__(self, html: str) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.text: list[str] = []
        self.feed(html)

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))

    def handle_data(self, data: str) -> None:
        self.text.append(data)

    def with_attr(self, name: str, source: str | None = None) -> list[dict[str, str | None]]:
        out, current = [], None
        for tag, attrs in self.tags:
            if tag == "svg" and "data-source" in attrs:
                current = attrs["data-source"]
            if name in attrs and (source is None or current == source):
                out.append(attrs)
        return out


def _source(
    name: str, n: int, *, states: tuple[str, ...] = STATES, every: timedelta | None = None
) -> SourceTimeline:
    src = SourceTimeline(name, "postgres", 3600, 14400)
    step = every or (WINDOW / max(n, 1)) * 0.99
    src.marks = [
        BackupMark(
            f"20261101T000000.{i:06d}Z-abcdef",
            NOW - step * (n - i),
            states[i % len(states)],
            pinned=i % 97 == 0,
        )
        for i in range(n)
    ]
    return src


def test_every_outside_string_is_escaped_and_the_page_has_no_script():
    # Given a source name, a backup id, a reason, a drill error and a dataset with markup in them
    src = _source("<script>alert(1)</script>", 2)
    src.marks[0] = BackupMark(
        'x"><script>alert(2)</script>',
        NOW - timedelta(hours=2),
        "failed",
        reason="<img src=x onerror=alert(3)>",
    )
    src.drills = [
        DrillMark("<b>id</b>", NOW - timedelta(hours=1), False, 10.0, 60, error="<script>alert(4)</script>")
    ]
    inputs = StatusInputs(
        "<i>dev</i>", NOW, [src], [DatasetRow("<u>ds</u>", 60, None, None, "not published <script>")]
    )
    # When rendered
    html = render(inputs)
    # Then no markup from the inputs survives: there is no script at all, every string is escaped
    assert "<script" not in html.lower() and "<img" not in html and "<b>id" not in html and "<u>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=alert(3)&gt;" in html and "&lt;i&gt;dev&lt;/i&gt;" in html
    page = Elements(html)
    assert [a["data-source"] for a in page.with_attr("data-backups")] == ["<script>alert(1)</script>"]
    assert {a["data-backup"] for a in page.with_attr("data-backup")} >= {'x"><script>alert(2)</script>'}
    # and it is self-contained: no external reference of any kind
    assert "http://" not in html.replace("http://www.w3.org", "") and "https://" not in html
    assert not [a for _, a in page.tags if "src" in a] and "<link" not in html


def test_first_deploy_says_no_backups_yet_for_each_source():
    # Given declared sources with no backup at all (first deploy)
    inputs = StatusInputs(
        "dev",
        NOW,
        [SourceTimeline("pg", "postgres", 3600, 3600), SourceTimeline("kv", "upstash", 86400, 3600)],
    )
    page = Elements(render(inputs))
    # Then each source says so, plainly, and has no mark
    assert len(page.with_attr("data-empty")) == 2
    assert sum("no backups yet" in t for t in page.text) == 2
    assert page.with_attr("data-backup") == []
    # and the header says attention is needed (no good backup anywhere)
    assert [a["data-health"] for a in page.with_attr("data-health")] == ["attention"]


def test_a_source_with_only_failed_backups_shows_each_failure_and_no_rpo_coverage():
    src = _source("pg", 5, states=("failed",))
    page = Elements(render(StatusInputs("dev", NOW, [src])))
    marks = page.with_attr("data-backup", "pg")
    assert len(marks) == 5 and {m["data-state"] for m in marks} == {"failed"}
    assert not [a for _, a in page.tags if a.get("class") == "rpo-ok"]  # never within the RPO
    assert any("no good backup" in t for t in page.text)
    assert [a["data-health"] for a in page.with_attr("data-health")] == ["attention"]


def test_healthy_sources_get_an_ok_header_and_rpo_coverage():
    src = _source("pg", 24 * 30, states=("verified", "complete"), every=timedelta(hours=1))
    page = Elements(render(StatusInputs("dev", NOW, [src])))
    assert [a["data-health"] for a in page.with_attr("data-health")] == ["ok"]
    assert [a for _, a in page.tags if a.get("class") == "rpo-ok"]


def test_up_to_max_marks_backups_each_backup_is_one_mark():
    src = _source("pg", MAX_MARKS)
    page = Elements(render(StatusInputs("dev", NOW, [src])))
    marks = page.with_attr("data-backup", "pg")
    assert len(marks) == MAX_MARKS and len({m["data-backup"] for m in marks}) == MAX_MARKS
    assert Counter(m["data-state"] for m in marks) == Counter(m.state for m in src.marks)
    assert page.with_attr("data-bucket") == []


def test_10000_backups_render_under_1_mb_aggregated_per_bucket_with_every_backup_counted():
    # Given 10,000 backups of one source in the window (and a small source beside it)
    big, small = _source("big", 10_000), _source("small", 7)
    html = render(StatusInputs("dev", NOW, [big, small]))
    # Then the page stays under 1 MB
    assert len(html.encode("utf-8")) < 1_000_000
    page = Elements(html)
    # and the big source is drawn per time bucket and state, counting every backup exactly once
    buckets = page.with_attr("data-bucket", "big")
    assert page.with_attr("data-backup", "big") == []
    assert len(buckets) <= BUCKETS * len(STATES)
    assert sum(int(b["data-count"] or 0) for b in buckets) == 10_000
    per_state = Counter()
    for b in buckets:
        per_state[b["data-state"]] += int(b["data-count"] or 0)
    assert per_state == Counter(m.state for m in big.marks)
    # while the small one still has one mark per backup
    assert len(page.with_attr("data-backup", "small")) == 7

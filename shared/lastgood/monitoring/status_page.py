"""The status page: one self-contained HTML file (inline CSS and SVG, no script, no external asset).

Pure: `render(inputs)` turns `status_model.StatusInputs` into the page's text. Per declared
source an SVG timeline over the last 30 days:

- a row per backup state (verified, complete, suspect, failed), each with its own shape *and*
  colour (Okabe-Ito palette, safe for colour-blind readers) *and* position, so no meaning rests
  on colour alone; pinned backups carry a blue square frame; every mark has a `<title>` tooltip;
- the RPO band: green where the newest good backup was within the RPO, hatched red where not;
- the restore drills as bars of recovery time against the RTO line (purple past the RTO,
  a cross for a failed drill).

One mark per backup (`data-backup="<id>"`, `data-state`, `data-pinned`) while a source has at
most `MAX_MARKS` backups in the window; above that the marks are aggregated per time bucket
(`BUCKETS` over the window, one mark per bucket and state: `data-bucket`, `data-state`,
`data-count` = the backups it stands for), so 10,000 backups stay well under 1 MB.
Every string that comes from outside (source names, ids, reasons) is HTML-escaped.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from html import escape

from lastgood.core.timefmt import human_bytes, human_duration, to_utc
from lastgood.monitoring.status_model import STATES, BackupMark, DrillMark, SourceTimeline, StatusInputs

MAX_MARKS = 800  # per source in the window: up to here one mark per backup (hourly for 30 days fits)
BUCKETS = 240  # above it: one mark per state per 3-hour bucket
MAX_DRILL_LABELS = 12
DODGE_MAX, DODGE_GAP = 40, 9.0  # rows this sparse: marks closer than the gap are set side by side
MAX_PROBLEMS = 8

WIDTH, LEFT, RIGHT = 1000, 92, 16
PLOT = WIDTH - LEFT - RIGHT
ROW_Y = {"verified": 44, "complete": 58, "suspect": 72, "failed": 86}
RPO_Y, RPO_H = 22, 10
DRILL_BASE, DRILL_H = 136, 26
HEIGHT = 150
COLOURS = {"verified": "#009E73", "complete": "#009E73", "suspect": "#E69F00", "failed": "#D55E00"}
PIN, DRILL_OK, DRILL_SLOW = "#0072B2", "#0072B2", "#CC79A7"
LABELS = {
    "verified": "verified (check passed)",
    "complete": "complete (not yet verified)",
    "suspect": "suspect (shrank, not accepted)",
    "failed": "failed (nothing committed)",
}

CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:0;color:#1b1b1b;background:#f6f7f9}
main{max-width:1040px;margin:0 auto;padding:16px}
header{display:flex;flex-wrap:wrap;align-items:center;gap:12px;margin-bottom:8px}
h1{font-size:20px;margin:0}h2{font-size:16px;margin:0 0 4px}
.badge{border-radius:4px;padding:3px 10px;font-weight:600;border:2px solid}
.ok{background:#e3f4ee;border-color:#009E73}.attention{background:#fdf0d9;border-color:#E69F00}
.unknown{background:#eee;border-color:#777}
.muted{color:#555}.card{background:#fff;border:1px solid #d9dce1;border-radius:6px;padding:12px;margin:12px 0}
ul.issues{margin:4px 0 0 18px;padding:0}
svg{display:block;width:100%;height:auto}
svg text{font:11px system-ui,sans-serif;fill:#333}
.facts{display:flex;flex-wrap:wrap;gap:4px 18px;margin:6px 0 0}
table{border-collapse:collapse;width:100%}th,td{text-align:left;padding:4px 8px;border-bottom:1px solid #e4e6ea}
.empty{font-size:15px;font-weight:600}
"""

DEFS = (
    "<defs>"
    '<circle id="s-verified" r="5" fill="#009E73" stroke="#00573f" stroke-width="1"/>'
    '<circle id="s-complete" r="4.5" fill="#fff" stroke="#009E73" stroke-width="2"/>'
    '<path id="s-suspect" d="M0,-6L5.5,4H-5.5Z" fill="#E69F00" stroke="#6b4a00" stroke-width="1"/>'
    '<path id="s-failed" d="M-4.5,-4.5L4.5,4.5M-4.5,4.5L4.5,-4.5" stroke="#D55E00" stroke-width="2.6"/>'
    '<rect id="s-pin" x="-8" y="-8" width="16" height="16" rx="2" fill="none" stroke="#0072B2" stroke-width="2"/>'
    '<pattern id="hatch" width="6" height="6" patternUnits="userSpaceOnUse" patternTransform="rotate(45)">'
    '<rect width="6" height="6" fill="#f9d9c8"/><path d="M0,0V6" stroke="#D55E00" stroke-width="2"/></pattern>'
    "</defs>"
)


def e(value: object) -> str:
    """HTML-escape anything shown on the page (text and attribute values alike)."""
    return escape(str(value), quote=True)


def _x(at: datetime, start: datetime, end: datetime) -> float:
    span = (end - start).total_seconds() or 1.0
    frac = min(1.0, max(0.0, (at - start).total_seconds() / span))
    return round(LEFT + frac * PLOT, 1)


def _when(at: datetime | None) -> str:
    return to_utc(at).strftime("%Y-%m-%d %H:%M UTC") if at else "?"


def _mark_title(mark: BackupMark) -> str:
    parts = [f"{mark.backup_id} — {mark.state}" + (", pinned" if mark.pinned else ""), _when(mark.at)]
    if mark.size_bytes is not None and mark.state != "failed":
        parts.append(human_bytes(mark.size_bytes))
    if mark.duration_s is not None:
        parts.append(f"took {human_duration(mark.duration_s)}")
    if mark.reason:
        parts.append(mark.reason)
    return "; ".join(parts)


def _use(shape: str, x: float, y: float) -> str:
    return f'<use href="#s-{shape}" x="{x}" y="{y}"/>'


def _dodged(src: SourceTimeline, start: datetime, end: datetime) -> dict[int, float]:
    """x of each mark (by index); in a row of at most `DODGE_MAX` marks, marks closer than
    `DODGE_GAP` px are pushed left of the newer one so each stays visible (the tooltip keeps
    the exact time). Denser rows are drawn where they fall."""
    xs: dict[int, float] = {}
    for state in STATES:
        row = [i for i, m in enumerate(src.marks) if m.state == state]
        dodge = len(row) <= DODGE_MAX
        previous: float | None = None
        for i in reversed(row):  # newest first
            x = _x(src.marks[i].at, start, end)
            if dodge and previous is not None:
                x = max(LEFT, min(x, round(previous - DODGE_GAP, 1)))
            xs[i] = previous = x
    return xs


def _single_marks(src: SourceTimeline, start: datetime, end: datetime) -> Iterable[str]:
    xs = _dodged(src, start, end)
    for i, mark in enumerate(src.marks):
        x, y = xs[i], ROW_Y[mark.state]
        pin = _use("pin", x, y) if mark.pinned else ""
        yield (
            f'<g class="mark" data-backup="{e(mark.backup_id)}" data-state="{mark.state}" '
            f'data-pinned="{str(mark.pinned).lower()}"><title>{e(_mark_title(mark))}</title>'
            f"{_use(mark.state, x, y)}{pin}</g>"
        )


def _bucket_marks(src: SourceTimeline, start: datetime, end: datetime) -> Iterable[str]:
    span = (end - start).total_seconds() or 1.0
    grouped: dict[tuple[int, str], list[BackupMark]] = {}
    for mark in src.marks:
        index = min(BUCKETS - 1, max(0, int((mark.at - start).total_seconds() / span * BUCKETS)))
        grouped.setdefault((index, mark.state), []).append(mark)
    for (index, state), marks in sorted(grouped.items()):
        x = round(LEFT + (index + 0.5) / BUCKETS * PLOT, 1)
        y = ROW_Y[state]
        pinned = sum(1 for m in marks if m.pinned)
        title = f"{len(marks)} {state} backup{'s' if len(marks) != 1 else ''} {_when(marks[0].at)} to {_when(marks[-1].at)}"
        title += f", {pinned} pinned" if pinned else ""
        reasons = sorted({m.reason for m in marks if m.reason and state in ("failed", "suspect")})
        title += ("; " + "; ".join(reasons[:3])) if reasons else ""
        pin = _use("pin", x, y) if pinned else ""
        yield (
            f'<g class="mark" data-bucket="{index}" data-state="{state}" data-count="{len(marks)}" '
            f'data-pinned="{str(bool(pinned)).lower()}"><title>{e(title)}</title>{_use(state, x, y)}{pin}</g>'
        )


def _rpo_band(src: SourceTimeline, start: datetime, end: datetime) -> str:
    parts = [
        f'<text x="{LEFT - 8}" y="{RPO_Y + 8}" text-anchor="end">RPO {e(human_duration(src.rpo_s))}</text>'
    ]
    parts.append(
        f'<rect x="{LEFT}" y="{RPO_Y}" width="{PLOT}" height="{RPO_H}" fill="url(#hatch)">'
        f"<title>outside the RPO: no good backup within {e(human_duration(src.rpo_s))}</title></rect>"
    )
    for lo, hi in src.coverage(start, end):
        x0, x1 = _x(lo, start, end), _x(hi, start, end)
        parts.append(
            f'<rect class="rpo-ok" x="{min(x0, LEFT + PLOT - 4)}" y="{RPO_Y}" width="{max(4, round(x1 - x0, 1))}" '
            f'height="{RPO_H}" fill="#8fd3bd"><title>within the RPO {_when(lo)} to {_when(hi)}</title></rect>'
        )
    return "".join(parts)


def _drill_title(src: SourceTimeline, drill: DrillMark) -> str:
    verdict = "FAILED" if not drill.passed else ("over the RTO" if drill.over_rto else "passed")
    text = (
        f"restore drill of {drill.backup_id} {verdict}, {_when(drill.at)}; recovery "
        f"{human_duration(drill.recovery_time_s)} (RTO {human_duration(drill.rto_s)})"
    )
    return text + (f"; {drill.error}" if drill.error and not drill.passed else "")


def _drills(src: SourceTimeline, start: datetime, end: datetime) -> str:
    top = DRILL_BASE - DRILL_H
    parts = [
        f'<text x="{LEFT - 8}" y="{DRILL_BASE - 8}" text-anchor="end">drills</text>',
        f'<text x="{LEFT - 8}" y="{top + 3}" text-anchor="end">RTO {e(human_duration(src.rto_s))}</text>',
        f'<line x1="{LEFT}" x2="{LEFT + PLOT}" y1="{top}" y2="{top}" stroke="#777" stroke-dasharray="4 3"/>',
        f'<line x1="{LEFT}" x2="{LEFT + PLOT}" y1="{DRILL_BASE}" y2="{DRILL_BASE}" stroke="#bbb"/>',
    ]
    label = len(src.drills) <= MAX_DRILL_LABELS
    for drill in src.drills:
        x = _x(drill.at, start, end)
        title = f"<title>{e(_drill_title(src, drill))}</title>"
        attrs = f'class="drill" data-drill="{e(drill.backup_id)}" data-passed="{str(drill.passed).lower()}"'
        if not drill.passed:
            parts.append(f"<g {attrs}>{title}{_use('failed', x, DRILL_BASE - 8)}</g>")
            continue
        ratio = min(1.25, (drill.recovery_time_s or 0) / max(1, drill.rto_s))
        h = max(4.0, round(ratio * DRILL_H, 1))
        fill = DRILL_SLOW if drill.over_rto else DRILL_OK
        text = (
            f'<text x="{x}" y="{DRILL_BASE - h - 3}" text-anchor="middle">{e(human_duration(drill.recovery_time_s))}</text>'
            if label
            else ""
        )
        parts.append(
            f'<g {attrs}>{title}<rect x="{x - 3}" y="{DRILL_BASE - h}" width="6" height="{h}" fill="{fill}"/>{text}</g>'
        )
    return "".join(parts)


def _axis(start: datetime, end: datetime) -> str:
    from datetime import timedelta

    parts = []
    day = start.replace(hour=0, minute=0, second=0, microsecond=0) + timedelta(days=1)
    n = 0
    while day < end:
        x = _x(day, start, end)
        parts.append(f'<line x1="{x}" x2="{x}" y1="16" y2="{DRILL_BASE}" stroke="#eceef1"/>')
        if n % 5 == 0:
            parts.append(f'<text x="{x}" y="12" text-anchor="middle">{day:%b %d}</text>')
        day += timedelta(days=1)
        n += 1
    now_x = _x(end, start, end)
    parts.append(
        f'<line x1="{now_x}" x2="{now_x}" y1="16" y2="{DRILL_BASE}" stroke="#333" stroke-width="1"/>'
    )
    for state in STATES:
        parts.append(f'<text x="{LEFT - 8}" y="{ROW_Y[state] + 4}" text-anchor="end">{state}</text>')
    return "".join(parts)


def timeline_svg(src: SourceTimeline, start: datetime, end: datetime) -> str:
    body = [_axis(start, end), _rpo_band(src, start, end)]
    aggregated = len(src.marks) > MAX_MARKS
    if not src.marks:
        message = "could not read backups" if src.error else "no backups yet"
        body.append(
            f'<text class="empty" x="{LEFT + PLOT / 2}" y="{ROW_Y["complete"] + 8}" text-anchor="middle" '
            f'style="font-size:15px;font-weight:600">{message}</text>'
        )
    else:
        body.extend(_bucket_marks(src, start, end) if aggregated else _single_marks(src, start, end))
    body.append(_drills(src, start, end))
    return (
        f'<svg class="timeline" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" data-source="{e(src.name)}" '
        f'data-backups="{len(src.marks)}" data-aggregated="{str(aggregated).lower()}" '
        f'aria-label="{e(src.name)}: backups over the last 30 days">{"".join(body)}</svg>'
    )


def _facts(src: SourceTimeline, now: datetime) -> str:
    if src.error:
        return f'<p class="facts"><strong>could not read backups:</strong> {e(src.error)}</p>'
    counts = src.counts()
    newest = src.newest_good
    if not src.marks:
        return (
            '<p class="empty" data-empty="true">No backups yet: the first scheduled backup of this '
            "source will appear here.</p>"
        )
    items = []
    if newest is None:
        items.append("<span><strong>no good backup</strong> in the last 30 days</span>")
    else:
        age = (now - newest.at).total_seconds()
        late = " — <strong>older than the RPO</strong>" if age > src.rpo_s else " (within the RPO)"
        items.append(f"<span>newest good backup {e(human_duration(age))} ago{late}</span>")
    items.append("<span>" + ", ".join(f"{counts[s]} {s}" for s in STATES) + "</span>")
    items.append(f"<span>{sum(1 for m in src.marks if m.pinned)} pinned</span>")
    if src.drills:
        last = src.drills[-1]
        verdict = "FAILED" if not last.passed else ("over the RTO" if last.over_rto else "passed")
        items.append(
            f"<span>last drill {verdict}: recovery {e(human_duration(last.recovery_time_s))} "
            f"(RTO {e(human_duration(last.rto_s))})</span>"
        )
    else:
        items.append("<span>no restore drill in the window</span>")
    problems = [m for m in reversed(src.marks) if m.state in ("failed", "suspect")][:MAX_PROBLEMS]
    listed = "".join(f"<li>{e(_mark_title(m))}</li>" for m in problems)
    return f'<p class="facts">{"".join(items)}</p>' + (f'<ul class="issues">{listed}</ul>' if listed else "")


def _legend() -> str:
    items = []
    x = 10
    for state in STATES:
        items.append(f'{_use(state, x, 14)}<text x="{x + 10}" y="18">{e(LABELS[state])}</text>')
        x += 240
    items.append(
        f"{_use('complete', 10, 40)}{_use('pin', 10, 40)}"
        '<text x="20" y="44">pinned (kept by retention)</text>'
        '<rect x="250" y="34" width="18" height="10" fill="#8fd3bd"/><text x="274" y="44">within the RPO</text>'
        '<rect x="400" y="34" width="18" height="10" fill="url(#hatch)"/><text x="424" y="44">outside the RPO</text>'
        f'<rect x="560" y="32" width="6" height="12" fill="{DRILL_OK}"/><text x="572" y="44">drill: recovery time</text>'
        f'<rect x="700" y="32" width="6" height="12" fill="{DRILL_SLOW}"/><text x="712" y="44">drill over the RTO</text>'
        '<line x1="840" x2="860" y1="38" y2="38" stroke="#777" stroke-dasharray="4 3"/><text x="866" y="42">RTO</text>'
    )
    return (
        f'<svg class="legend" viewBox="0 0 {WIDTH} 52" role="img" aria-label="legend">{"".join(items)}</svg>'
    )


def _datasets(inputs: StatusInputs) -> str:
    if inputs.datasets_error:
        return f"<p><strong>could not read the datasets:</strong> {e(inputs.datasets_error)}</p>"
    if not inputs.datasets:
        return '<p class="muted">No datasets are declared.</p>'
    rows = []
    for ds in inputs.datasets:
        state = "fresh" if ds.ok else (ds.error or "?")
        mark = "&#10003;" if ds.ok else "&#9888;"
        rows.append(
            f'<tr data-dataset="{e(ds.name)}" data-ok="{str(ds.ok).lower()}"><td>{e(ds.name)}</td>'
            f"<td>{mark} {e(state)}</td><td>{e(_when(ds.last_modified)) if ds.last_modified else 'never'}</td>"
            f"<td>{e(human_duration(ds.age_s)) if ds.age_s is not None else '—'}</td>"
            f"<td>{e(human_duration(ds.freshness_s))}</td></tr>"
        )
    head = (
        "<tr><th>dataset</th><th>state</th><th>last published</th><th>age</th><th>freshness budget</th></tr>"
    )
    return f"<table>{head}{''.join(rows)}</table>"


def render(inputs: StatusInputs) -> str:
    """The whole page (UTF-8 text)."""
    now, start = inputs.generated_at, inputs.window_start
    issues = inputs.issues()
    health = inputs.health
    badge = {"ok": "All good", "attention": f"{len(issues)} need attention", "unknown": "Nothing declared"}
    issue_list = "".join(f"<li>{e(i)}</li>" for i in issues)
    sources = []
    for src in inputs.sources:
        sources.append(
            f'<section class="card source" data-source="{e(src.name)}"><h2>{e(src.name)} '
            f'<span class="muted">({e(src.engine)}, RPO {e(human_duration(src.rpo_s))}, '
            f"RTO {e(human_duration(src.rto_s))})</span></h2>"
            f"{timeline_svg(src, start, now)}{_facts(src, now)}</section>"
        )
    if not sources:
        sources.append('<section class="card"><p>No sources are declared in lastgood.toml.</p></section>')
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        f"<title>lastgood status: {e(inputs.stage)}</title><style>{CSS}</style></head><body>"
        f'<svg width="0" height="0" style="position:absolute" aria-hidden="true">{DEFS}</svg><main>'
        f'<header><h1>lastgood status <span class="muted">— {e(inputs.stage)}</span></h1>'
        f'<span class="badge {health}" data-health="{health}">{e(badge[health])}</span>'
        f'<span class="muted">generated {e(_when(now))}, last 30 days</span></header>'
        + (
            f'<div class="card"><strong>Needs attention</strong><ul class="issues">{issue_list}</ul></div>'
            if issues
            else ""
        )
        + "".join(f'<p class="muted note">{e(n)}</p>' for n in inputs.notes)
        + f'<div class="card">{_legend()}</div>'
        + "".join(sources)
        + f'<section class="card"><h2>Datasets</h2>{_datasets(inputs)}</section>'
        "</main></body></html>\n"
    )

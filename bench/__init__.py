"""`make bench` (`python -m bench`): lastgood against the native tools, measured in the same run.

Starts its own devstack in a temp dir (stopped at the end, even on failure), generates
data (`BENCH_SCALE` multiplies every size; the default runs in a few minutes on 2
cores) and prints ONE table: each row a ratio with the absolute figures beside it, the
goal and PASS/MISS. Goals are the issues' goals and are never tuned; a row that could
not be measured says "not measured: <reason>" instead of a number. Results go to
`bench/results.json` (at BENCH_SCALE=1; `bench/results-scale10.json` at 10, and so on:
one scale never overwrites another), with the scale, total and per-area seconds, cores and
Python; plots beside it: `throughput.png` (PostgreSQL backup throughput and peak RSS) and
`curves.png` (every engine's backup and restore throughput and peak RSS against size),
suffixed `-scale<N>` likewise.

One module per area: `postgres`, `mongodb`, `upstash` (backup/restore vs the native
tool), `curves` (backup and restore of every engine in fresh processes at 1x/3x/10x data;
100x with BENCH_CURVES_100=1), `memory` (the PostgreSQL backup's peak RSS goal, from the
curves' runs; 100x with BENCH_RSS_100=1), `regenerate` (regenerate at 20k and 100k docs,
and the loader), `prune` (planning and DeleteObjects requests), `imports` (handler cold
imports; drivers loaded by prune and the loader path); `common` holds the row/timing
helpers, `data` the generators, `report` the table, JSON and plots.

`python -m bench --only postgres,memory` runs some areas; a partial run writes to
`bench/data/` (git-ignored) and never overwrites the committed results.
"""

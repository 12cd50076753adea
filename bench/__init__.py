"""`make bench` (`python -m bench`): lastgood against the native tools, measured in the same run.

Starts its own devstack in a temp dir (stopped at the end, even on failure), generates
data (`BENCH_SCALE` multiplies every size; the default runs in a few minutes on 2
cores) and prints ONE table: each row a ratio with the absolute figures beside it, the
goal and PASS/MISS. Goals are the issues' goals and are never tuned; a row that could
not be measured says "not measured: <reason>" instead of a number. Results go to
`bench/results.json`, a plot of backup throughput and peak RSS against data size to
`bench/throughput.png`.

One module per area: `postgres`, `mongodb`, `upstash` (backup/restore vs the native
tool), `memory` (peak RSS of a backup in a fresh process at 1x/3x/10x data), `regenerate`
(regenerate and the loader), `prune` (planning and DeleteObjects requests), `imports`
(handler cold imports; drivers loaded by prune and the loader path); `common` holds the
row/timing helpers, `data` the generators, `report` the table, JSON and plot.

`python -m bench --only postgres,memory` runs some areas; a partial run writes to
`bench/data/` (git-ignored) and never overwrites the committed results.
"""

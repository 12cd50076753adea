"""PostgreSQL: lastgood backup vs `pg_dump -Fc > /dev/null`, restore vs `pg_restore` of the same file.

The data (`bench.data.generate_postgres`): five tables of different sizes with secondary
indexes and foreign keys. The goal rows are judged where the issue sets them, at >= 190 MB of
custom-format dump (`GOAL_ROWS`, ~200 MB; BENCH_SCALE above 10 goes bigger): small data
hides what matters and shows what does not. At BENCH_SCALE=1 the ~20 MB point is measured
too and reported without a goal: there, fixed costs (the S3 stand-in's CompleteMultipartUpload,
which concatenates the parts on the same 2 cores, and the manifest commit, ~0.1 s together)
are ~5% of a 2.5 s dump.
Both sides run the same flags: the backup `pg_dump -Fc` (lastgood adds only `--snapshot`);
the restore `pg_restore --no-owner --no-privileges --exit-on-error --single-transaction`
(pg_restore's documented all-or-nothing restore; lastgood also needs it to roll back a
damaged download, so no `--jobs`, which cannot be combined with it).
"""

from __future__ import annotations

import shutil
import subprocess
from typing import Any

from bench.common import Context, best_of, pg_bin, scaled
from bench.data import generate_postgres, postgres_table_rows

ROWS = 200_000  # ~130 MB of tables and indexes, ~20 MB custom-format dump at BENCH_SCALE=1
GOAL_ROWS = 2_000_000  # ~200 MB of dump: the goals hold "at >= 190 MB of dump"
GOAL_MB = 190
ROUNDS = 3
GOAL_ROUNDS = 5  # the judged point: ~25 s runs on a shared 2-core machine
NATIVE_RESTORE_FLAGS = ("--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction")


def run(ctx: Context) -> None:
    small = scaled(ROWS)
    if small < GOAL_ROWS:
        _measure(ctx, small, judged=False)  # reported: where fixed costs dominate
    _measure(ctx, max(small, GOAL_ROWS), judged=True)


def _checkpoint(url: str) -> None:
    """Untimed, before every run: write out the dirty buffers the previous run (or the data
    generation) left, so no run pays for another's checkpoint."""
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("CHECKPOINT")


def _measure(ctx: Context, rows: int, *, judged: bool) -> None:
    from lastgood.backups.restore import restore_backup
    from lastgood.backups.run import run_backup
    from lastgood.engines.pg_compress import compress_threads
    from lastgood.engines.pg_tools import tool_version
    from lastgood.engines.postgres import ENGINE

    url = ctx.env["DATABASE_URL"]
    generate_postgres(url, rows)
    rounds = GOAL_ROUNDS if judged else ROUNDS

    def native() -> None:
        with open("/dev/null", "wb") as sink:
            subprocess.run([pg_bin("pg_dump"), "-Fc", url], check=True, stdout=sink)

    def ours() -> object:
        return run_backup("postgres", on_demand=True, store=ctx.store)

    (native_s, _), (ours_s, result) = best_of(rounds, native, ours, before=lambda: _checkpoint(url))
    assert result.manifest is not None
    size = result.manifest.totals.bytes
    judge = judged and size >= GOAL_MB * 1e6
    at = f" ({size / 1e6:.0f} MB dump)"
    ratio = native_s / ours_s
    threads = compress_threads([], tool_version("pg_dump"))
    how = f"gzip on {threads} threads" if threads else "gzip by pg_dump"
    ctx.results.add(
        "PostgreSQL backup throughput vs pg_dump -Fc > /dev/null" + at,
        ratio,
        "×",
        f"≥ 0.95 at ≥ {GOAL_MB} MB" if judged else "reported (goal at ≥ 190 MB)",
        ratio >= 0.95 if judge else None,
        f"{sum(postgres_table_rows(rows).values())} rows in 5 tables, {size / 1e6:.1f} MB dump: "
        f"pg_dump -Fc {native_s:.2f}s, lastgood {ours_s:.2f}s "
        f"({size / ours_s / 1e6:.1f} MB/s, {how}, streamed to S3 with SHA-256 + SSE-KMS; best of {rounds}, "
        "a CHECKPOINT before each run)",
        "postgres",
    )
    if judged:
        ctx.results.series["pg_backup_mb_s"] = [(size / 1e6, size / ours_s / 1e6)]

    # the very object lastgood stored, downloaded once, is what pg_restore gets
    entry = next(o for o in result.manifest.objects if o.key.endswith(".dump"))
    dump_file = ctx.scratch / "pg.dump"
    with ctx.store.open_object("postgres", result.backup_id, entry.key) as body, dump_file.open("wb") as out:
        shutil.copyfileobj(body, out, 1 << 20)
    target = ctx.env["SCRATCH_DATABASE_URL"]

    def native_restore() -> None:
        subprocess.run(
            [pg_bin("pg_restore"), *NATIVE_RESTORE_FLAGS, "-d", target, str(dump_file)],
            check=True,
            capture_output=True,
        )

    def ours_restore() -> Any:
        # the target is emptied before every run: no force, so no --clean (the same flags as pg_restore's)
        return restore_backup(result.backup_id, source="postgres", target_url=target, store=ctx.store)

    def wipe() -> None:  # untimed, before every run
        ENGINE.wipe(target)
        _checkpoint(target)

    (native_r, _), (ours_r, report) = best_of(rounds, native_restore, ours_restore, before=wipe)
    ENGINE.wipe(target)
    dump_file.unlink()
    ratio = native_r / ours_r
    ctx.results.add(
        "PostgreSQL restore vs pg_restore of the same file" + at,
        ratio,
        "×",
        f"≥ 0.9 at ≥ {GOAL_MB} MB" if judged else "reported (goal at ≥ 190 MB)",
        ratio >= 0.9 if judge else None,
        f"pg_restore {' '.join(NATIVE_RESTORE_FLAGS)} (local file) {native_r:.2f}s, lastgood "
        f"{ours_r:.2f}s (streamed once from S3 into the same pg_restore, SHA-256 checked before its "
        f"transaction can commit; separate verify pass {report.verify_seconds:.2f}s; "
        f"counts match: {report.ok}; best of {rounds}, emptied and CHECKPOINTed before each run)",
        "postgres",
    )

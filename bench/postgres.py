"""PostgreSQL: lastgood backup vs `pg_dump -Fc > /dev/null`, restore vs `pg_restore` of the same file.

The data (`bench.data.generate_postgres`): five tables of different sizes with secondary
indexes and foreign keys, ~20 MB of custom-format dump at BENCH_SCALE=1 and ~200 MB at 10.
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
NATIVE_RESTORE_FLAGS = ("--no-owner", "--no-privileges", "--exit-on-error", "--single-transaction")


def run(ctx: Context) -> None:
    from lastgood.backups.restore import restore_backup
    from lastgood.backups.run import run_backup
    from lastgood.engines.postgres import ENGINE

    url = ctx.env["DATABASE_URL"]
    rows = scaled(ROWS)
    generate_postgres(url, rows)

    def native() -> None:
        with open("/dev/null", "wb") as sink:
            subprocess.run([pg_bin("pg_dump"), "-Fc", url], check=True, stdout=sink)

    def ours() -> object:
        return run_backup("postgres", on_demand=True, store=ctx.store)

    (native_s, _), (ours_s, result) = best_of(3, native, ours)
    assert result.manifest is not None
    size = result.manifest.totals.bytes
    ratio = native_s / ours_s
    ctx.results.add(
        "PostgreSQL backup throughput vs pg_dump -Fc > /dev/null",
        ratio,
        "×",
        "≥ 0.95",
        ratio >= 0.95,
        f"{sum(postgres_table_rows(rows).values())} rows in 5 tables, {size / 1e6:.1f} MB dump: "
        f"pg_dump -Fc {native_s:.2f}s, lastgood {ours_s:.2f}s "
        f"({size / ours_s / 1e6:.1f} MB/s streamed to S3 with SHA-256 + SSE-KMS; best of 3)",
        "postgres",
    )
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

    wipe = lambda: ENGINE.wipe(target)  # noqa: E731 - untimed, before every run
    (native_r, _), (ours_r, report) = best_of(3, native_restore, ours_restore, before=wipe)
    ENGINE.wipe(target)
    dump_file.unlink()
    ratio = native_r / ours_r
    ctx.results.add(
        "PostgreSQL restore vs pg_restore of the same file",
        ratio,
        "×",
        "≥ 0.9",
        ratio >= 0.9,
        f"pg_restore {' '.join(NATIVE_RESTORE_FLAGS)} (local file) {native_r:.2f}s, lastgood "
        f"{ours_r:.2f}s (streamed once from S3 into the same pg_restore, SHA-256 checked before its "
        f"transaction can commit; separate verify pass {report.verify_seconds:.2f}s; "
        f"counts match: {report.ok}; best of 3)",
        "postgres",
    )

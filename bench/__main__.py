"""`python -m bench` (= `make bench`): see the package docstring. `--only prune,imports` runs some areas."""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench import curves, imports, memory, mongodb, postgres, prune, regenerate, report, upstash
from bench.common import OUT, ROOT, Context, Results, run_area

# areas that need the devstack, in the order they run
STACK_AREAS: dict[str, Callable[[Context], None]] = {
    "postgres": postgres.run,
    "mongodb": mongodb.run,
    "upstash": upstash.run,
    "curves": curves.run,
    "memory": memory.run,  # reuses the curves' PostgreSQL backup points when curves ran
    "regenerate": regenerate.run,
    "prune": prune.run,
    "pitr": lambda ctx: __import__("bench.pitr", fromlist=["run"]).run(ctx),
    "runtime-imports": lambda ctx: imports.run_runtime(ctx, _bench_config(ctx)),
    "status": lambda ctx: __import__("bench.status", fromlist=["run"]).run(ctx),
}
AREAS = (*STACK_AREAS, "imports")


def _bench_config(ctx: Context) -> str | None:
    path = ctx.scratch / "bench-config.json"  # written by the regenerate area
    return str(path) if path.exists() else None


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument(
        "--only",
        type=lambda text: [a.strip() for a in text.split(",") if a.strip()],
        default=list(AREAS),
        help=f"comma-separated areas (default: all): {', '.join(AREAS)}",
    )
    args = parser.parse_args(argv)
    unknown = sorted(set(args.only) - set(AREAS))
    if unknown:
        parser.error(f"unknown area(s) {', '.join(unknown)}; areas: {', '.join(AREAS)}")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    sys.path.insert(0, str(ROOT))
    from devstack.stack import Devstack, demo_env

    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    os.environ["POWERTOOLS_METRICS_DISABLED"] = "true"
    from lastgood.cli.backup import logs_to_stderr

    logs_to_stderr()  # stdout is the table only
    results = Results()
    started = time.perf_counter()
    wanted = [a for a in STACK_AREAS if a in args.only]
    if wanted:
        with tempfile.TemporaryDirectory(prefix="lastgood-bench-") as tmp:
            stack = Devstack(Path(tmp) / "devstack", mongodb_uri_from_env=False)
            try:
                sys.stderr.write("bench: starting the devstack\n")
                stack.up()
                ctx = _context({**demo_env(), **stack.env}, Path(tmp), results)
                for area in wanted:
                    run_area(results, area, lambda fn=STACK_AREAS[area]: fn(ctx))
            finally:
                sys.stderr.write("bench: stopping the devstack\n")
                stack.down()
    if "imports" in args.only:
        run_area(results, "imports", lambda: imports.run_cold(results))  # services stopped: less noise
    # a partial run (--only) never overwrites the committed results
    out = OUT if set(args.only) == set(AREAS) else OUT / "data"
    out.mkdir(exist_ok=True)
    run_area(results, "plot", lambda: report.plot(results, out / report.file_name("throughput.png")))
    run_area(
        results, "plot-curves", lambda: report.plot_curves(results, out / report.file_name("curves.png"))
    )
    seconds = time.perf_counter() - started
    sys.stdout.write(report.table(results) + "\n\n" + report.summary(results, seconds) + "\n")
    written = report.write_json(results, seconds, out / report.file_name("results.json"))
    sys.stdout.write(f"wrote {written.relative_to(ROOT)} and the plots beside it\n")
    return 0


def _context(env: dict[str, str], scratch: Path, results: Results) -> Context:
    os.environ.update(env)
    from lastgood.backups.store import BackupStore
    from lastgood.core import aws
    from lastgood.core.config import reset_config
    from lastgood.core.settings import reset_settings

    reset_settings()
    reset_config()
    aws.reset_clients()
    store = BackupStore(env["BACKUP_BUCKET"], env["KMS_KEY_ID"], aws.client("s3"))
    return Context(env, store, scratch, results)


if __name__ == "__main__":
    raise SystemExit(main())

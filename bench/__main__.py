"""`make bench`: lastgood against the native tools, measured in the same run.

Starts its own devstack in a temp dir, generates data (`BENCH_SCALE` multiplies every
size; the default runs in a few minutes on 2 cores), and prints one table: each row a
ratio with the absolute figures beside it, the goal, and PASS/MISS. Goals are the
issues' goals and are never tuned. Results go to bench/results.json and a plot of
backup throughput and peak RSS against data size to bench/throughput.png.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OUT = Path(__file__).resolve().parent
SCALE = float(os.environ.get("BENCH_SCALE", "1"))


@dataclass
class Row:
    name: str
    value: float | None
    unit: str
    goal: str
    passed: bool | None
    detail: str

    def line(self) -> str:
        value = "—" if self.value is None else f"{self.value:.3g}{self.unit}"
        verdict = {True: "PASS", False: "MISS", None: "n/a"}[self.passed]
        return f"| {self.name} | {value} | {self.goal} | {verdict} | {self.detail} |"


ROWS: list[Row] = []
SERIES: dict[str, list[tuple[float, float]]] = {"throughput_mb_s": [], "peak_rss_mb": []}


def row(name: str, value: float | None, unit: str, goal: str, passed: bool | None, detail: str) -> None:
    r = Row(name, value, unit, goal, passed, detail)
    ROWS.append(r)
    sys.stderr.write(r.line() + "\n")


def measured(name: str, fn: Callable[[], None]) -> None:
    """Run one measurement; a failure is a row saying so, never a fake number."""
    try:
        fn()
    except Exception as exc:
        traceback.print_exc()
        row(name, None, "", "", None, f"not measured: {type(exc).__name__}: {str(exc)[:160]}")


def timed(fn: Callable[[], Any]) -> tuple[float, Any]:
    start = time.perf_counter()
    result = fn()
    return time.perf_counter() - start, result


# --------------------------------------------------------------------------- data


def pg_bin(tool: str) -> str:
    from lastgood.sources.postgres import pg_bin_dir

    return str(pg_bin_dir() / tool)


def generate_postgres(url: str, rows: int) -> None:
    import psycopg

    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute("DROP TABLE IF EXISTS bench_rows")
        conn.execute(
            "CREATE TABLE bench_rows (id bigint PRIMARY KEY, payload text, blob bytea, n double precision)"
        )
        conn.execute(
            "INSERT INTO bench_rows SELECT g, md5(g::text) || repeat(md5((g * 7)::text), 6), "
            "decode(md5((g * 13)::text) || md5((g * 17)::text), 'hex'), random() FROM generate_series(1, %s) g",
            (rows,),
        )


def generate_mongo(uri: str, db: str, docs: int) -> None:
    from pymongo import MongoClient

    client: MongoClient[Any] = MongoClient(uri)
    coll = client[db]["bench_docs"]
    coll.drop()
    batch = []
    for i in range(docs):
        batch.append(
            {
                "_id": f"doc-{i:07d}",
                "title": f"Document {i}",
                "body": "lorem ipsum " * 20,
                "n": i,
                "tags": ["a", "b"],
            }
        )
        if len(batch) == 5000:
            coll.insert_many(batch)
            batch = []
    if batch:
        coll.insert_many(batch)
    client.close()


def generate_redis(url: str, keys: int) -> None:
    import valkey

    client = valkey.Valkey.from_url(url)
    client.flushdb()
    pipe = client.pipeline(transaction=False)
    for i in range(keys):
        pipe.set(f"bench:{i:07d}", os.urandom(64))
        if i % 1000 == 999:
            pipe.execute()
    pipe.execute()


# --------------------------------------------------------------------------- rows


def bench_postgres(env: dict[str, str], store: Any, scratch: Path) -> None:
    from lastgood.backup import run_backup
    from lastgood.restore import restore_backup

    url = env["DATABASE_URL"]
    generate_postgres(url, int(200_000 * SCALE))
    native_s, _ = timed(
        lambda: subprocess.run([pg_bin("pg_dump"), "-Fc", url], check=True, stdout=subprocess.DEVNULL)
    )
    ours_s, result = timed(lambda: run_backup("postgres", on_demand=True, store=store))
    size = result.manifest.totals.bytes
    ratio = native_s / ours_s
    row(
        "PostgreSQL backup throughput vs pg_dump -Fc > /dev/null",
        ratio,
        "×",
        "≥ 0.9",
        ratio >= 0.9,
        f"pg_dump {native_s:.2f}s, lastgood {ours_s:.2f}s ({size / ours_s / 1e6:.1f} MB/s of dump to S3)",
    )
    dump_file = scratch / "pg.dump"
    with dump_file.open("wb") as handle:
        body = store.s3.get_object(Bucket=store.bucket, Key=f"backups/postgres/{result.backup_id}/app.dump")[
            "Body"
        ]
        for chunk in iter(lambda: body.read(1 << 20), b""):
            handle.write(chunk)
    target = env["SCRATCH_DATABASE_URL"]
    from lastgood.sources.postgres import ENGINE

    ENGINE.wipe(target)
    native_r, _ = timed(
        lambda: subprocess.run(
            [
                pg_bin("pg_restore"),
                "--no-owner",
                "--no-privileges",
                "--single-transaction",
                "-d",
                target,
                str(dump_file),
            ],
            check=True,
            capture_output=True,
        )
    )
    ENGINE.wipe(target)
    ours_r, report = timed(
        lambda: restore_backup(
            result.backup_id, source="postgres", target_url=target, force=True, store=store
        )
    )
    ENGINE.wipe(target)
    ratio = native_r / ours_r
    row(
        "PostgreSQL restore vs pg_restore of the same file",
        ratio,
        "×",
        "≥ 0.9",
        ratio >= 0.9,
        f"pg_restore {native_r:.2f}s, lastgood {ours_r:.2f}s (incl. SHA-256 verify; counts ok: {report.ok})",
    )


def bench_mongo(env: dict[str, str], store: Any) -> None:
    from bson.raw_bson import RawBSONDocument
    from lastgood.backup import run_backup
    from lastgood.restore import restore_backup
    from pymongo import MongoClient

    docs = int(50_000 * SCALE)
    generate_mongo(env["MONGODB_URI"], env["MONGODB_DB_NAME"], docs)
    client: MongoClient[Any] = MongoClient(env["MONGODB_URI"], document_class=RawBSONDocument)
    db = client[env["MONGODB_DB_NAME"]]

    def drain() -> int:
        total = 0
        for name in db.list_collection_names():
            for doc in db[name].find({}, batch_size=1000):
                total += len(doc.raw)
        return total

    native_s, raw_bytes = timed(drain)
    ours_s, result = timed(lambda: run_backup("mongodb", on_demand=True, store=store))
    ratio = native_s / ours_s
    row(
        "MongoDB backup vs raw pymongo cursor drain",
        ratio,
        "×",
        "≥ 0.8",
        ratio >= 0.8,
        f"drain {native_s:.2f}s ({raw_bytes / 1e6:.1f} MB BSON), lastgood {ours_s:.2f}s (gzip + S3 + SHA-256)",
    )
    plain: MongoClient[Any] = MongoClient(env["MONGODB_URI"])
    documents = list(plain[env["MONGODB_DB_NAME"]]["bench_docs"].find({}))
    scratch_db = plain["bench_insert_many"]
    scratch_db["bench_docs"].drop()
    native_r, _ = timed(lambda: scratch_db["bench_docs"].insert_many(documents, ordered=False))
    plain.drop_database("bench_insert_many")
    target = env["SCRATCH_MONGODB_URI"]
    from lastgood.sources.mongodb import ENGINE

    ENGINE.wipe(target)
    ours_r, report = timed(
        lambda: restore_backup(result.backup_id, source="mongodb", target_url=target, force=True, store=store)
    )
    ENGINE.wipe(target)
    ratio = native_r / ours_r
    row(
        "MongoDB restore vs insert_many of the same documents",
        ratio,
        "×",
        "(reported)",
        None,
        f"insert_many {native_r:.2f}s for {len(documents)} docs, lastgood {ours_r:.2f}s for every collection "
        f"(+indexes, SHA-256 verify; counts ok: {report.ok})",
    )
    client.close()
    plain.close()


def bench_upstash(env: dict[str, str], store: Any) -> None:
    from lastgood.backup import run_backup
    from lastgood.sources.upstash import UpstashRest

    generate_redis(env["REDIS_URL"], int(20_000 * SCALE))
    rest = UpstashRest(env["UPSTASH_REDIS_REST_URL"], env["UPSTASH_REDIS_REST_TOKEN"], timeout_s=30)

    def raw() -> int:
        cursor: bytes | int = b"0"
        n = 0
        while True:
            reply = rest.command(
                "SCAN", cursor if isinstance(cursor, bytes) else str(cursor), "COUNT", "1000"
            )
            assert isinstance(reply, list)
            cursor, keys = reply[0], reply[1]
            assert isinstance(keys, list)
            if keys:
                rest.pipeline([["GET", k] for k in keys if isinstance(k, bytes)])
                n += len(keys)
            if cursor in (b"0", 0, "0"):
                return n

    native_s, n = timed(raw)
    ours_s, _ = timed(lambda: run_backup("upstash", on_demand=True, store=store))
    ratio = native_s / ours_s
    row(
        "Upstash backup vs raw SCAN + pipelined GET (same REST front)",
        ratio,
        "×",
        "≥ 0.8",
        ratio >= 0.8,
        f"raw {native_s:.2f}s for {n} keys, lastgood {ours_s:.2f}s (TYPE/PTTL, RESP, gzip, S3)",
    )


RSS_CHILD = """
import json, resource, sys, time
from lastgood.backup import run_backup
t = time.perf_counter()
r = run_backup("postgres", on_demand=True)
print(json.dumps({"seconds": time.perf_counter() - t, "bytes": r.manifest.totals.bytes,
                  "rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def bench_rss(env: dict[str, str]) -> None:
    results = {}
    for factor in (1, 10):
        rows = int(40_000 * SCALE * factor)
        generate_postgres(env["DATABASE_URL"], rows)
        proc = subprocess.run(
            [sys.executable, "-c", RSS_CHILD], capture_output=True, text=True, env={**os.environ, **env}
        )
        if proc.returncode != 0:
            raise RuntimeError(proc.stderr[-300:])
        doc = json.loads(proc.stdout.strip().splitlines()[-1])
        results[factor] = doc
        size_mb = doc["bytes"] / 1e6
        SERIES["throughput_mb_s"].append((size_mb, size_mb / doc["seconds"]))
        SERIES["peak_rss_mb"].append((size_mb, doc["rss_mb"]))
    one, ten = results[1], results[10]
    flat = ten["rss_mb"] < 256 and ten["rss_mb"] <= one["rss_mb"] * 1.5
    row(
        "Backup peak RSS at 1× and 10× data",
        ten["rss_mb"],
        " MB",
        "flat, < 256 MB",
        flat,
        f"1×: {one['bytes'] / 1e6:.1f} MB dump, {one['rss_mb']:.0f} MB RSS; 10×: {ten['bytes'] / 1e6:.1f} MB dump, "
        f"{ten['rss_mb']:.0f} MB RSS",
    )


def bench_regenerate(env: dict[str, str], scratch: Path) -> None:
    from pymongo import MongoClient

    docs = int(20_000 * SCALE)
    generate_mongo(env["MONGODB_URI"], env["MONGODB_DB_NAME"], docs)
    config = json.loads((ROOT / "shared" / "lastgood" / "config" / "default.json").read_text())
    config["datasets"].append(
        {"name": "bench", "collection": "bench_docs", "sort": [["_id", 1]], "min_count": 1}
    )
    path = scratch / "bench-config.json"
    path.write_text(json.dumps(config))
    os.environ["LASTGOOD_CONFIG"] = str(path)
    from lastgood.config import reset_config
    from lastgood.settings import reset_settings

    reset_settings()
    reset_config()
    client: MongoClient[Any] = MongoClient(env["MONGODB_URI"])

    def native() -> int:
        items = list(client[env["MONGODB_DB_NAME"]]["bench_docs"].find({}, sort=[("_id", 1)]))
        return len(json.dumps(items, default=str, sort_keys=True))

    native_s, _ = timed(native)
    from lastgood.regenerate import regenerate

    ours_s, report = timed(lambda: regenerate(["bench"]))
    ratio = ours_s / native_s
    outcomes = getattr(report, "outcomes", report)
    status = outcomes[0].status if outcomes else "?"
    row(
        f"Regenerate {docs} docs vs pymongo drain + json.dumps (time)",
        ratio,
        "×",
        "≤ 1.3",
        ratio <= 1.3,
        f"drain+dumps {native_s:.2f}s, regenerate {ours_s:.2f}s ({status}: canonical JSON, guards, version+live+"
        f"last-good writes); issue asks 100k docs: BENCH_SCALE=5",
    )
    client.close()

    from lastgood import loader

    loader.clear_cache()
    warm = []
    loader.load("bench")
    for _ in range(200):
        t = time.perf_counter()
        loader.load("bench")
        warm.append((time.perf_counter() - t) * 1000)
    live = []
    for _ in range(20):
        loader.clear_cache()
        t = time.perf_counter()
        ds = loader.load("bench")
        live.append((time.perf_counter() - t) * 1000)
    p = lambda xs, q: statistics.quantiles(xs, n=100)[q - 1]  # noqa: E731
    row(
        "Loader warm-cache hit p50 / p99",
        p(warm, 50),
        " ms",
        "(reported)",
        None,
        f"p99 {p(warm, 99):.3f} ms",
    )
    row(
        f"Loader live read p50 / p99 ({docs} items from {ds.layer})",
        p(live, 50),
        " ms",
        "(reported)",
        None,
        f"p99 {p(live, 99):.1f} ms (S3 GET + parse + validate)",
    )


def bench_prune(env: dict[str, str], store: Any) -> None:
    from concurrent.futures import ThreadPoolExecutor
    from datetime import UTC, datetime, timedelta

    from lastgood.prune import delete_keys
    from lastgood.retention import BackupInfo, RetentionPolicy, plan

    now = datetime(2026, 1, 1, tzinfo=UTC)
    backups = [BackupInfo(f"b{i}", now - timedelta(minutes=5 * i)) for i in range(100_000)]
    policy = RetentionPolicy.from_dict(
        {"keep_hourly": 24, "keep_daily": 30, "keep_weekly": 13, "keep_monthly": 12}
    )
    seconds, result = timed(lambda: plan(backups, policy, now, force=True))
    row(
        "Prune planning for 100k backups",
        seconds * 1000,
        " ms",
        "(reported)",
        None,
        f"kept {len(result.keep)}, removed {len(result.remove)}",
    )
    keys = [f"bench-prune/{i:05d}" for i in range(10_000)]
    with ThreadPoolExecutor(32) as pool:
        list(pool.map(lambda k: store.s3.put_object(Bucket=store.bucket, Key=k, Body=b"x"), keys))
    calls: list[int] = []
    store.s3.meta.events.register("before-call.s3.DeleteObjects", lambda **_: calls.append(1))
    seconds, (deleted, _requests, _locked, failed) = timed(lambda: delete_keys(store.s3, store.bucket, keys))
    row(
        "DeleteObjects requests to delete 10,000 objects",
        float(len(calls)),
        "",
        "≤ 10",
        len(calls) <= 10 and deleted == 10_000 and not failed,
        f"{deleted} deleted in {seconds:.2f}s (requests counted at the client)",
    )


HANDLER_THIRD_PARTY = """
import sys, importlib.util, json
before = set(sys.modules)
spec = importlib.util.spec_from_file_location("h", sys.argv[1])
m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)
std = set(sys.stdlib_module_names)
mods = [n for n in sys.modules if n not in before and n.split(".")[0] not in std
        and n.split(".")[0] not in {"h", "lastgood", "__main__", "_virtualenv"} and not n.startswith("_")]
print(json.dumps(mods))
"""
TIME_IMPORT = """
import sys, time, importlib, importlib.util, json
t = time.perf_counter()
if sys.argv[1] == "handler":
    spec = importlib.util.spec_from_file_location("h", sys.argv[2])
    m = importlib.util.module_from_spec(spec); spec.loader.exec_module(m)
else:
    for name in json.loads(open(sys.argv[2]).read()):
        try:
            importlib.import_module(name)
        except Exception:
            pass
print(time.perf_counter() - t)
"""


KEY_PACKAGES = {
    "boto3",
    "botocore",
    "pymongo",
    "psycopg",
    "httpx",
    "valkey",
    "aws_lambda_powertools",
    "pydantic",
}


def bench_imports() -> None:
    for app in sorted((ROOT / "functions").glob("*/app.py")):
        name = app.parent.name
        env = {**os.environ, "POWERTOOLS_TRACE_DISABLED": "true"}
        tops = json.loads(
            subprocess.run(
                [sys.executable, "-c", HANDLER_THIRD_PARTY, str(app)],
                capture_output=True,
                text=True,
                env=env,
                check=True,
            ).stdout
        )

        def best(args: list[str]) -> float:
            return min(
                float(
                    subprocess.run(
                        [sys.executable, "-c", TIME_IMPORT, *args],
                        capture_output=True,
                        text=True,
                        env=env,
                        check=True,
                    ).stdout
                )
                for _ in range(3)
            )

        handler_s = best(["handler", str(app)])
        deps_file = OUT / f".imports-{name}.json"
        deps_file.write_text(json.dumps(tops))
        deps_s = best(["deps", str(deps_file)]) if tops else 0.0
        deps_file.unlink()
        packages = sorted({t.split(".")[0] for t in tops})
        forbidden = {"prune": {"pymongo", "psycopg"}, "health": set(), "regenerate": {"psycopg"}}.get(
            name, set()
        )
        bad = sorted(forbidden & set(packages))
        ratio = handler_s / deps_s if deps_s else float("inf")
        row(
            f"Cold import of functions/{name}/app.py vs its third-party imports",
            ratio,
            "×",
            "≤ 1.2" + (", no " + "/".join(sorted(forbidden)) if forbidden else ""),
            ratio <= 1.2 and not bad,
            f"{handler_s * 1000:.0f} ms vs {deps_s * 1000:.0f} ms for the {len(tops)} third-party modules it loads "
            f"({', '.join(p for p in packages if p in KEY_PACKAGES) or 'none of the drivers'})"
            + (f"; imports {', '.join(bad)} it does not need" if bad else ""),
        )


def plot() -> Path | None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.5))
    for axis, key, label in (
        (a, "throughput_mb_s", "backup throughput (MB/s of dump)"),
        (b, "peak_rss_mb", "peak RSS (MB)"),
    ):
        points = sorted(SERIES[key])
        if points:
            axis.plot([p[0] for p in points], [p[1] for p in points], marker="o")
        axis.set_xlabel("PostgreSQL dump size (MB)")
        axis.set_title(label)
        axis.grid(True, alpha=0.3)
    b.axhline(256, color="red", linestyle="--", linewidth=1, label="256 MB goal")
    b.legend()
    fig.tight_layout()
    path = OUT / "throughput.png"
    fig.savefig(path, dpi=110)
    return path


def main() -> int:
    sys.path.insert(0, str(ROOT))
    from devstack.stack import Devstack

    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "WARNING")
    from lastgood.cli.backup import logs_to_stderr

    logs_to_stderr()  # stdout is the table
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="lastgood-bench-") as tmp:
        stack = Devstack(Path(tmp) / "devstack")
        stack.up()
        try:
            env = dict(stack.env)
            os.environ.update(env)
            os.environ["POWERTOOLS_METRICS_DISABLED"] = "true"
            from lastgood import aws
            from lastgood.config import reset_config
            from lastgood.settings import reset_settings
            from lastgood.store import BackupStore

            reset_settings()
            reset_config()
            aws.reset_clients()
            store = BackupStore(env["BACKUP_BUCKET"], env["KMS_KEY_ID"], aws.client("s3"))
            scratch = Path(tmp)
            measured("PostgreSQL backup/restore", lambda: bench_postgres(env, store, scratch))
            measured("MongoDB backup/restore", lambda: bench_mongo(env, store))
            measured("Upstash backup", lambda: bench_upstash(env, store))
            measured("Backup peak RSS", lambda: bench_rss(env))
            measured("Regenerate + loader", lambda: bench_regenerate(env, scratch))
            measured("Prune", lambda: bench_prune(env, store))
        finally:
            stack.down()
    measured("Handler cold imports", bench_imports)
    picture = plot()
    total = time.perf_counter() - started
    header = ["| measurement | value | goal | verdict | detail |", "|---|---|---|---|---|"]
    table = "\n".join(header + [r.line() for r in ROWS])
    sys.stdout.write(table + "\n")
    sys.stdout.write(
        f"\nBENCH_SCALE={SCALE:g}, {total:.0f}s on {os.cpu_count()} cores, Python {platform.python_version()}\n"
    )
    if picture:
        sys.stdout.write(f"plot: {picture.relative_to(ROOT)}\n")
    (OUT / "results.json").write_text(
        json.dumps(
            {"scale": SCALE, "seconds": round(total, 1), "rows": [asdict(r) for r in ROWS], "series": SERIES},
            indent=2,
        )
        + "\n"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

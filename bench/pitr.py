"""PITR: capture throughput (changes/s, MB/s of pgoutput decoded) and replay rate (changes/s).

A database of its own with one PITR source: a base, then inserts, updates and deletes in
batches of transactions, one capture run over all of them (peek, decode, segment parts,
manifest, slot advance), then `restore --to-time latest` into an empty database (base restore
+ replay). Reported rows, no goal: the reference is the change volume a 5-minute capture sees.
"""

from __future__ import annotations

import json
import os
import secrets
from pathlib import Path

import psycopg

from bench.common import Context, scaled, timed

ROWS = 20_000
TRANSACTIONS = 20


def run(ctx: Context) -> None:
    from lastgood.core.config import read_config_document, reset_config
    from lastgood.core.settings import reset_settings
    from lastgood.pitr.base import take_base
    from lastgood.pitr.capture import run_capture
    from lastgood.pitr.restore import restore_to

    admin = ctx.env["DATABASE_URL"].rsplit("/", 1)[0] + "/postgres"
    source_db, target_db = f"bench_pitr_{secrets.token_hex(3)}", f"bench_pitr_t_{secrets.token_hex(3)}"
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{source_db}"')
        conn.execute(f'CREATE DATABASE "{target_db}"')
    url = admin.rsplit("/", 1)[0] + "/" + source_db
    target = admin.rsplit("/", 1)[0] + "/" + target_db
    saved = {k: os.environ.get(k) for k in ("LASTGOOD_CONFIG", "BENCH_PITR_URL")}
    try:
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("CREATE TABLE events (id bigserial PRIMARY KEY, kind text, n int, payload text)")
        config = (
            read_config_document(Path(os.environ["LASTGOOD_CONFIG"]))
            if os.environ.get("LASTGOOD_CONFIG")
            else {}
        )
        config.setdefault("sources", []).append(
            {"name": "bench-pitr", "engine": "postgres", "url_secret": "BENCH_PITR_URL", "pitr": True}
        )
        path = ctx.scratch / "bench-pitr-config.json"
        path.write_text(json.dumps(config))
        os.environ["LASTGOOD_CONFIG"], os.environ["BENCH_PITR_URL"] = str(path), url
        reset_settings()
        reset_config()
        take_base("bench-pitr", on_demand=True, store=ctx.store)
        rows = scaled(ROWS)
        per = max(1, rows // TRANSACTIONS)
        with psycopg.connect(url) as conn:
            for t in range(TRANSACTIONS):
                conn.execute(
                    "INSERT INTO events (kind, n, payload) SELECT 'k' || (g %% 7), g, md5(g::text) "
                    "FROM generate_series(%s::int, %s::int) g",
                    (t * per, (t + 1) * per - 1),
                )
                conn.commit()
            conn.execute("UPDATE events SET n = n + 1 WHERE id % 2 = 0")
            conn.commit()
            conn.execute("DELETE FROM events WHERE id % 4 = 1")
            conn.commit()
        seconds, result = timed(lambda: run_capture("bench-pitr", store=ctx.store))
        segment = result.segment
        changes = segment.changes if segment else 0
        wal_mb = (segment.wal_bytes if segment else 0) / 1e6
        ctx.results.add(
            "PITR capture throughput", changes / seconds, " changes/s", "reported (no goal)", None,
            f"{changes} changes ({TRANSACTIONS + 2} transactions, {wal_mb:.1f} MB of pgoutput) peeked, decoded and "
            f"committed as {len(segment.parts) if segment else 0} part(s) in {seconds:.2f}s",
            "pitr",
        )  # fmt: skip
        ctx.results.add(
            "PITR WAL decoded", wal_mb / seconds, " MB/s", "reported (no goal)", None,
            "pgoutput message bytes decoded per second of the capture run above", "pitr",
        )  # fmt: skip
        report = restore_to("bench-pitr", target_url=target, to_time=__import__("datetime").datetime.now(
            __import__("datetime").UTC), store=ctx.store, safety_backup=False)  # fmt: skip
        ctx.results.add(
            "PITR replay rate", report.changes / max(report.replay_seconds, 1e-9), " changes/s",
            "reported (no goal)", None,
            f"{report.changes} changes in {report.transactions} transactions replayed as SQL in "
            f"{report.replay_seconds:.2f}s (after the base restore); sequences fixed: {report.sequences_fixed}",
            "pitr",
        )  # fmt: skip
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            for (slot,) in conn.execute(
                "SELECT slot_name FROM pg_replication_slots WHERE slot_name LIKE 'lastgood_bench_pitr_%'"
            ).fetchall():
                conn.execute("SELECT pg_drop_replication_slot(%s)", (slot,))
            conn.execute(f'DROP DATABASE IF EXISTS "{source_db}" WITH (FORCE)')
            conn.execute(f'DROP DATABASE IF EXISTS "{target_db}" WITH (FORCE)')
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        reset_settings()
        reset_config()

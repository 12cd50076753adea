"""Deterministic sample data for the devstack (idempotent: running it twice changes nothing).

- MongoDB (`MONGODB_DB_NAME`): the seed `000_…txt` datasets — `prompts` 296 documents,
  `patterns` 18, `learning` 20 — with string `_id`s (`prompt-001`, …), datetimes and
  indexes on `prompts.category` and `prompts.createdAt`. Replaced by `_id` (upsert).
- PostgreSQL (`DATABASE_URL`): `users` (50), `orders` (200, FK to users, numeric, a
  sequence-backed id), `audit_log` (jsonb + bytea), reloaded in one transaction.
- Valkey (`REDIS_URL`, binary-safe Redis protocol): `demo:*` keys of every type
  (string incl. a non-UTF-8 value, hash, list, set, zset, stream), several with TTLs.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

CATEGORIES = ("writing", "coding", "analysis", "marketing", "research", "education", "design", "support")
TAGS = ("gpt", "claude", "beginner", "advanced", "template", "checklist", "workflow", "review", "summary")
BASE_TIME = datetime(2025, 11, 1, 9, 0, 0, tzinfo=UTC)
PROMPTS = 296
PATTERNS = 18
LEARNING = 20
USERS = 50
ORDERS = 200


def _pick(seq: tuple[str, ...], n: int) -> str:
    return seq[n % len(seq)]


def prompt_docs() -> list[dict[str, Any]]:
    docs = []
    for i in range(1, PROMPTS + 1):
        category = _pick(CATEGORIES, i * 7)
        docs.append(
            {
                "_id": f"prompt-{i:03d}",
                "title": f"{category.title()} prompt #{i}",
                "body": f"You are an expert in {category}. Step {i % 5 + 1}: explain the task, "
                f"list assumptions, then answer concisely. (sample {i})",
                "category": category,
                "tags": sorted({_pick(TAGS, i), _pick(TAGS, i * 3 + 1), _pick(TAGS, i * 5 + 2)}),
                "createdAt": BASE_TIME + timedelta(hours=i * 5),
                "rating": (i * 37) % 5 + 1,
            }
        )
    return docs


def pattern_docs() -> list[dict[str, Any]]:
    names = (
        "chain-of-thought",
        "few-shot",
        "role-play",
        "critique-revise",
        "step-back",
        "decomposition",
        "self-consistency",
        "socratic",
        "template-fill",
        "persona",
        "constraints-first",
        "rubric",
        "compare-contrast",
        "reverse-prompt",
        "checklist",
        "summarize-then-answer",
        "analogies",
        "red-team",
    )
    return [
        {
            "_id": f"pattern-{i:02d}",
            "name": name,
            "description": f"The {name.replace('-', ' ')} pattern: when and how to use it.",
            "examples": [f"prompt-{(i * 13) % PROMPTS + 1:03d}", f"prompt-{(i * 29) % PROMPTS + 1:03d}"],
            "difficulty": ("beginner", "intermediate", "advanced")[i % 3],
            "createdAt": BASE_TIME + timedelta(days=i),
        }
        for i, name in enumerate(names, start=1)
    ]


def learning_docs() -> list[dict[str, Any]]:
    return [
        {
            "_id": f"learning-{i:02d}",
            "title": f"Lesson {i}: {_pick(CATEGORIES, i).title()} with prompts",
            "content": f"Lesson {i} walks through {_pick(CATEGORIES, i)} tasks with worked examples.",
            "level": i % 3 + 1,
            "durationMinutes": 5 + (i * 7) % 25,
            "createdAt": BASE_TIME + timedelta(days=i * 2),
        }
        for i in range(1, LEARNING + 1)
    ]


def seed_mongodb(uri: str, db_name: str) -> dict[str, int]:
    from pymongo import ASCENDING, DESCENDING, MongoClient, ReplaceOne

    client: MongoClient[dict[str, Any]] = MongoClient(uri, serverSelectionTimeoutMS=5000, tz_aware=True)
    try:
        db = client[db_name]
        counts = {}
        for name, docs in (
            ("prompts", prompt_docs()),
            ("patterns", pattern_docs()),
            ("learning", learning_docs()),
        ):
            coll = db[name]
            wanted = {d["_id"] for d in docs}
            coll.bulk_write([ReplaceOne({"_id": d["_id"]}, d, upsert=True) for d in docs], ordered=False)
            extra = [d["_id"] for d in coll.find({}, {"_id": 1}) if d["_id"] not in wanted]
            if extra:  # leftovers of an earlier run or a test: the sample is exactly the seed's size
                coll.delete_many({"_id": {"$in": extra}})
            counts[name] = len(docs)
        db["prompts"].create_index([("category", ASCENDING)], name="category_1")
        db["prompts"].create_index([("createdAt", DESCENDING)], name="createdAt_-1")
        return counts
    finally:
        client.close()


PG_SCHEMA = """
CREATE SEQUENCE IF NOT EXISTS invoice_number_seq START 1000;
CREATE TABLE IF NOT EXISTS users (
    id          integer PRIMARY KEY,
    email       text NOT NULL UNIQUE,
    name        text NOT NULL,
    created_at  timestamptz NOT NULL,
    active      boolean NOT NULL DEFAULT true
);
CREATE TABLE IF NOT EXISTS orders (
    id          bigserial PRIMARY KEY,
    user_id     integer NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    invoice_no  bigint NOT NULL DEFAULT nextval('invoice_number_seq'),
    amount      numeric(10, 2) NOT NULL,
    status      text NOT NULL CHECK (status IN ('pending', 'paid', 'refunded')),
    placed_at   timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS orders_user_id_idx ON orders (user_id);
CREATE TABLE IF NOT EXISTS audit_log (
    id          bigserial PRIMARY KEY,
    at          timestamptz NOT NULL,
    actor       text NOT NULL,
    action      text NOT NULL,
    details     jsonb NOT NULL DEFAULT '{}'::jsonb,
    signature   bytea
);
"""


def seed_postgres(url: str) -> dict[str, int]:
    import psycopg

    users = [
        (i, f"user{i:02d}@example.com", f"User {i:02d}", BASE_TIME + timedelta(days=i), i % 7 != 0)
        for i in range(1, USERS + 1)
    ]
    statuses = ("pending", "paid", "paid", "refunded")
    orders = [
        (
            i,
            (i * 17) % USERS + 1,
            1000 + i,
            f"{(i * 791) % 50000 / 100 + 1:.2f}",
            _pick(statuses, i),
            BASE_TIME + timedelta(hours=i * 3),
        )
        for i in range(1, ORDERS + 1)
    ]
    audit = [
        (
            i,
            BASE_TIME + timedelta(minutes=i * 30),
            f"user{(i % USERS) + 1:02d}@example.com",
            ("login", "order.create", "order.refund", "profile.update")[i % 4],
            json.dumps({"ip": f"10.0.{i % 256}.{(i * 7) % 256}", "seq": i, "tags": ["sample", "seed"]}),
            hashlib.sha256(f"audit-{i}".encode()).digest() + b"\x00\xff",
        )
        for i in range(1, 41)
    ]
    with psycopg.connect(url, connect_timeout=5) as conn, conn.transaction():
        conn.execute(PG_SCHEMA)
        conn.execute("TRUNCATE audit_log, orders, users RESTART IDENTITY")
        with conn.cursor() as cur:
            cur.executemany(
                "INSERT INTO users (id, email, name, created_at, active) VALUES (%s, %s, %s, %s, %s)",
                users,
            )
            cur.executemany(
                "INSERT INTO orders (id, user_id, invoice_no, amount, status, placed_at) "
                "VALUES (%s, %s, %s, %s, %s, %s)",
                orders,
            )
            cur.executemany(
                "INSERT INTO audit_log (id, at, actor, action, details, signature) "
                "VALUES (%s, %s, %s, %s, %s::jsonb, %s)",
                audit,
            )
        conn.execute("SELECT setval('orders_id_seq', %s)", (ORDERS,))
        conn.execute("SELECT setval('audit_log_id_seq', %s)", (len(audit),))
        conn.execute("SELECT setval('invoice_number_seq', %s)", (1000 + ORDERS,))
    return {"users": len(users), "orders": len(orders), "audit_log": len(audit)}


BINARY_VALUE = b"\x89PNG\r\n\x1a\n\x00\xff\xfe lastgood binary \x80\x81"


def seed_valkey(url: str) -> dict[str, int]:
    import valkey

    client = valkey.Valkey.from_url(url, decode_responses=False, socket_timeout=5)
    try:
        existing = list(client.scan_iter(match=b"demo:*", count=500))
        pipe = client.pipeline(transaction=True)
        if existing:
            pipe.delete(*existing)
        pipe.set(b"demo:string:greeting", "hello from lastgood")
        pipe.set(b"demo:string:session", json.dumps({"user": "user01", "theme": "dark"}), ex=3600)
        pipe.set(b"demo:string:binary", BINARY_VALUE)
        pipe.set(b"demo:counter:visits", 42)
        pipe.hset(
            b"demo:hash:user:1", mapping={"name": "User 01", "email": "user01@example.com", "plan": "pro"}
        )
        pipe.hset(b"demo:hash:ratelimit", mapping={"limit": 100, "remaining": 37})
        pipe.expire(b"demo:hash:ratelimit", 900)
        pipe.rpush(b"demo:list:recent", *[f"prompt-{i:03d}" for i in range(1, 11)])
        pipe.rpush(b"demo:list:queue", "job-1", "job-2", "job-3")
        pipe.expire(b"demo:list:queue", 7200)
        pipe.sadd(b"demo:set:categories", *CATEGORIES)
        pipe.zadd(b"demo:zset:leaderboard", {f"user{i:02d}": float(i * 10 + 0.5) for i in range(1, 11)})
        pipe.expire(b"demo:zset:leaderboard", 86400)
        for i in range(1, 6):
            pipe.xadd(
                b"demo:stream:events", {"type": "view", "prompt": f"prompt-{i:03d}"}, id=f"1730451600000-{i}"
            )
        result = pipe.execute()
        if not all(r is not False for r in result):
            raise RuntimeError("seeding Valkey failed")
        keys = len(list(client.scan_iter(match=b"demo:*", count=500)))
        return {"keys": keys}
    finally:
        client.close()


def seed_all(env: Mapping[str, str], progress: Callable[[str], None] | None = None) -> dict[str, Any]:
    """Seed MongoDB, PostgreSQL and Valkey from the devstack env (idempotent)."""
    say = progress or (lambda _msg: None)
    out: dict[str, Any] = {}
    out["mongodb"] = seed_mongodb(env["MONGODB_URI"], env.get("MONGODB_DB_NAME", "lastgood"))
    say(f"  mongodb: {out['mongodb']}")
    out["postgres"] = seed_postgres(env["DATABASE_URL"])
    say(f"  postgres: {out['postgres']}")
    out["valkey"] = seed_valkey(env["REDIS_URL"])
    say(f"  valkey: {out['valkey']}")
    return out

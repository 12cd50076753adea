"""Demo step 60: Upstash answers 429 → the resilient KV serves from MongoDB → resync puts it back."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager

from devstack.demo import DemoContext, StepFailed

PREFIX = "demo:kv:"


@contextmanager
def _devstack_env(ctx: DemoContext) -> Iterator[None]:
    """Run lastgood in this process against the devstack (restoring the environment after)."""
    from lastgood.core.aws import reset_clients
    from lastgood.core.config import reset_config
    from lastgood.core.settings import reset_settings
    from lastgood.kv.client import reset_kv

    from devstack.stack import demo_env

    saved = dict(os.environ)
    os.environ.update({**demo_env(), **ctx.stack.env})
    reset_config()
    reset_settings()
    reset_clients()
    reset_kv()
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)
        reset_config()
        reset_settings()
        reset_clients()
        reset_kv()


def run(ctx: DemoContext) -> None:
    from lastgood.kv.client import get_kv

    ctx.section("Resilient KV: Upstash rate limit → MongoDB fallback → resync")
    with _devstack_env(ctx):
        kv = get_kv()
        for i in range(100):
            kv.set(f"{PREFIX}k{i:03d}", {"i": i})
        ctx.summary(f"wrote 100 keys through the resilient KV (mode {kv.mode}), each mirrored to MongoDB")
        ctx.stack.fault("429")
        ctx.say("   (devstack: the Upstash front now answers HTTP 429)")
        try:
            values = [kv.get(f"{PREFIX}k{i:03d}") for i in range(100)]
            if values != [{"i": i} for i in range(100)]:
                raise StepFailed("reads during the rate limit did not return all 100 values")
            for i in range(20):
                kv.set(f"{PREFIX}new{i:02d}", {"n": i}, ttl=300)
            ctx.summary(f"429: all 100 reads answered and 20 writes accepted from MongoDB (mode {kv.mode})")
            status = ctx.lastgood("kv", "status")
            ctx.say("   " + status.stdout.strip().replace("\n", "\n   "))
        finally:
            ctx.stack.fault("ok")
            ctx.say("   (devstack: the Upstash front answers normally again)")
    resync = ctx.lastgood("kv", "resync")
    ctx.summary("resync: " + resync.stdout.strip())
    value = ctx.lastgood("kv", "get", f"{PREFIX}new07").stdout.strip()
    if value != '{"n": 7}':
        raise StepFailed(f"after resync {PREFIX}new07 is {value!r} in KV, expected {{'n': 7}}")
    status = ctx.lastgood("kv", "status").stdout.splitlines()[0]
    ctx.summary(f"after resync: {PREFIX}new07 = {value} read from KV; {status}")
    if status != "mode: kv":
        raise StepFailed(f"expected mode kv after resync, got {status!r}")

"""Demo step 10: the health function probes every real local service, through the local invoker."""

from __future__ import annotations

import json

from devstack.demo import DemoContext, StepFailed


def run(ctx: DemoContext) -> None:
    ctx.section("Health: probe MongoDB, PostgreSQL, Upstash and S3 (lastgood invoke health)")
    public = ctx.invoke("health", "events/health-api.json")
    ctx.summary(f"GET /health → {public.get('statusCode')} {public.get('body')}")
    details = ctx.invoke(
        "health", "events/health-details.json", headers={"x-admin-key": ctx.stack.env["ADMIN_KEY"]}
    )
    report = json.loads(details["body"])
    ctx.say(f"   status: {report['status']} (checked {report['checked_at']})")
    ctx.say(f"   {'dependency':<10} {'state':<6} {'latency':>10}")
    for name, dep in report["dependencies"].items():
        if dep.get("configured") is False:
            ctx.say(f"   {name:<10} {'-':<6} {'':>10}  not configured")
            continue
        state = "ok" if dep.get("ok") else "DOWN"
        error = f"  {dep.get('error')}" if dep.get("error") else ""
        ctx.say(f"   {name:<10} {state:<6} {dep.get('latency_ms', 0):>7.1f} ms{error}")
    ctx.summary(
        "GET /health/details → {} dependencies {} (kv mode: {})".format(
            details.get("statusCode"),
            ", ".join(f"{n}={'ok' if d.get('ok') else 'down'}" for n, d in report["dependencies"].items()),
            report.get("kv", {}).get("status"),
        )
    )
    refused = ctx.invoke("health", "events/health-details-badkey.json")
    ctx.summary(f"GET /health/details with a wrong x-admin-key → {refused.get('statusCode')}")
    if public.get("statusCode") != 200 or refused.get("statusCode") != 401:
        raise StepFailed("health did not answer 200 / 401 as expected")

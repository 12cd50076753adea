"""Demo step 90: a MongoDB outage turns the public health check to 503, and the details say why."""

from __future__ import annotations

import json
from typing import Any

from devstack.demo import DemoContext, StepFailed


def _body(response: dict[str, Any]) -> Any:
    body = response.get("body")
    if isinstance(body, str):
        try:
            return json.loads(body)
        except ValueError:
            return body
    return body


def _mongodb_entry(details: Any) -> Any:
    """The MongoDB check in the details report, wherever the report nests it."""
    if isinstance(details, dict):
        for key in ("dependencies", "checks", "probes"):
            section = details.get(key)
            if isinstance(section, dict) and "mongodb" in section:
                return section["mongodb"]
            if isinstance(section, list):
                for entry in section:
                    if isinstance(entry, dict) and entry.get("name") == "mongodb":
                        return entry
        if "mongodb" in details:
            return details["mongodb"]
    return None


def run(ctx: DemoContext) -> None:
    ctx.section("Outage: MongoDB goes down")
    ctx.stack.stop("mongodb")
    ctx.say("   (devstack: mongodb stopped)")
    try:
        public = ctx.invoke("health", "events/health-api.json")
        status_code = public.get("statusCode")
        ctx.summary(f"GET /health with MongoDB down → {status_code} {json.dumps(_body(public))}")

        details = ctx.invoke(
            "health", "events/health-details.json", headers={"x-admin-key": ctx.stack.env["ADMIN_KEY"]}
        )
        report = _body(details)
        entry = _mongodb_entry(report)
        if entry is not None:
            reason = entry.get("error") if isinstance(entry, dict) else entry
            ctx.summary(f"GET /health/details → {details.get('statusCode')}: mongodb not ok — {reason}")
        else:
            ctx.summary(f"GET /health/details → {details.get('statusCode')}: {json.dumps(report)[:300]}")
        if status_code != 503:
            raise StepFailed(f"expected 503 from /health while MongoDB is down, got {status_code}")
        if isinstance(entry, dict) and entry.get("ok") is not False:
            raise StepFailed("the health details do not report MongoDB as not ok")
    finally:
        ctx.stack.start("mongodb")
        ctx.say("   (devstack: mongodb started again)")
    recovered = ctx.invoke("health", "events/health-api.json")
    ctx.summary(
        f"GET /health after MongoDB is back → {recovered.get('statusCode')} {json.dumps(_body(recovered))}"
    )

"""Health: concurrent dependency probes, freshness checks, the report and its metrics.

Dependencies (MongoDB, PostgreSQL, Upstash, S3: `head_bucket` on the backup and
site buckets with the fast client) are probed concurrently, each with its own
timeout (`HEALTH_PROBE_TIMEOUT_S`) and measured latency; a probe that hangs past
its timeout is reported `ok: false` with `Timeout: ...` and is not waited for
(its thread is abandoned, the executor is not joined). A dependency whose
setting is absent is `configured: false, ok: null`: reported, not a failure.

Status:
- `unhealthy` (HTTP 503) — any configured dependency is down. Every dependency
  is critical: MongoDB and S3 hold the data and backups, PostgreSQL and Upstash
  are backed-up sources, and a dependency lastgood cannot reach is one it
  cannot protect;
- `degraded` (HTTP 200) — dependencies are up but an extra check failed
  (a backup older than its RPO, a stale dataset, the KV running on its mirror);
- `healthy` (HTTP 200) otherwise.
The public, unauthenticated `/health` runs the dependency probes only (cheap, and
nothing an anonymous caller can use to make lastgood list buckets), so it answers
`healthy` or `unhealthy`; `degraded` shows in the details, the CLI and the scheduled run.

Extra checks (the `Check` shape): `register_check(name, fn)` with
`fn(scheduled: bool) -> dict[str, Any]`. The dict must carry `"ok": bool`
(`False` makes the report `degraded`, never `unhealthy`; `"configured": False`
with `"ok": True` means "nothing to check here"); anything else in it is
reported verbatim under `name` in the details. `scheduled` is True on the
EventBridge Scheduler run: that is when a check emits its own metrics
(`lastgood.core.observability.emit_metrics`, one EMF record per dimension value).
A check that raises is reported `ok: false` with its error class; the others
still run. Checks run for `/health/details`, the CLI and the scheduled run —
not for the public, minimal `/health`. Built in: `backups` (age vs RPO),
`datasets` (freshness), `kv` (KV mode, seed 001).

A scheduled run also emits DependencyUp (1/0) and DependencyLatency (ms) with
the dimension `dependency` (names as in docs/metrics.md).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import wait as wait_futures
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from lastgood.core.observability import logger
from lastgood.core.redact import redact_text
from lastgood.engines.base import ProbeResult

Status = Literal["healthy", "degraded", "unhealthy"]
ExtraCheck = Callable[[bool], dict[str, Any]]
Probe = Callable[[float], ProbeResult]

DEPENDENCIES = ("mongodb", "postgres", "upstash", "s3")


@dataclass
class HealthReport:
    status: Status
    checked_at: datetime
    dependencies: dict[str, dict[str, Any]]
    checks: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def status_code(self) -> int:
        return 503 if self.status == "unhealthy" else 200

    def minimal(self) -> dict[str, Any]:
        return {"status": self.status}

    def details(self) -> dict[str, Any]:
        flags = {
            name: bool(dep.get("ok")) for name, dep in self.dependencies.items() if dep.get("configured")
        }
        kv = self.checks.get("kv")
        if kv is not None:
            flags["kv"] = bool((kv.get("health") or {}).get("kv", kv.get("ok")))
        return {
            "status": self.status,
            "checked_at": self.checked_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "health": flags,
            "dependencies": self.dependencies,
            **self.checks,
        }


# --------------------------------------------------------------------------- probes


def _not_configured(name: str, what: str) -> ProbeResult:
    return ProbeResult(name, False, 0.0, None, {"configured": False, "reason": f"{what} is not set"})


def _secret(name: str) -> str | None:
    from lastgood.core.settings import get_secret

    return get_secret(name, required=False)


def probe_mongodb(timeout_s: float) -> ProbeResult:
    url = _secret("MONGODB_URI")
    if not url:
        return _not_configured("mongodb", "MONGODB_URI")
    from lastgood.engines import get_engine

    return get_engine("mongodb").probe(url, timeout_s=timeout_s)


def probe_postgres(timeout_s: float) -> ProbeResult:
    url = _secret("DATABASE_URL")
    if not url:
        return _not_configured("postgres", "DATABASE_URL")
    from lastgood.engines import get_engine

    return get_engine("postgres").probe(url, timeout_s=timeout_s)


def probe_upstash(timeout_s: float) -> ProbeResult:
    url = _secret("UPSTASH_REDIS_REST_URL")
    if not url:
        return _not_configured("upstash", "UPSTASH_REDIS_REST_URL")
    from lastgood.engines import get_engine

    return get_engine("upstash").probe(url, timeout_s=timeout_s, token=_secret("UPSTASH_REDIS_REST_TOKEN"))


def probe_s3(timeout_s: float) -> ProbeResult:
    from botocore.exceptions import BotoCoreError, ClientError

    from lastgood.core import aws
    from lastgood.core.settings import get_settings
    from lastgood.engines.base import Stopwatch

    settings = get_settings()
    buckets = [b for b in (settings.backup_bucket, settings.site_bucket) if b]
    if not buckets:
        return _not_configured("s3", "BACKUP_BUCKET / SITE_BUCKET")
    watch = Stopwatch()
    bucket = buckets[0]
    try:
        s3 = aws.client("s3", fast=True)
        for bucket in buckets:
            s3.head_bucket(Bucket=bucket)
        return ProbeResult("s3", True, watch.ms, detail={"buckets": len(buckets)})
    except (BotoCoreError, ClientError) as exc:
        error = f"{type(exc).__name__}: bucket {bucket}: {redact_text(str(exc))}"
        return ProbeResult("s3", False, watch.ms, error[:300])


PROBES: dict[str, Probe] = {
    "mongodb": probe_mongodb,
    "postgres": probe_postgres,
    "upstash": probe_upstash,
    "s3": probe_s3,
}


def run_probes(timeout_s: float, probes: dict[str, Probe] | None = None) -> dict[str, dict[str, Any]]:
    """Run every probe concurrently; each gets `timeout_s` (plus a small grace) and no more."""
    chosen = probes if probes is not None else PROBES
    pool = ThreadPoolExecutor(max_workers=max(1, len(chosen)), thread_name_prefix="probe")
    started = time.perf_counter()
    futures: dict[str, Future[ProbeResult]] = {
        name: pool.submit(fn, timeout_s) for name, fn in chosen.items()
    }
    wait_futures(futures.values(), timeout=timeout_s + 0.5)
    pool.shutdown(wait=False, cancel_futures=True)  # a hung probe is abandoned, not awaited
    out: dict[str, dict[str, Any]] = {}
    for name, future in futures.items():
        if not future.done():
            waited = (time.perf_counter() - started) * 1000
            result = ProbeResult(name, False, waited, f"Timeout: no answer within {timeout_s:g}s")
        else:
            try:
                result = future.result()
            except Exception as exc:  # a probe must never crash the report
                result = ProbeResult(name, False, 0.0, f"{type(exc).__name__}: {redact_text(str(exc))}"[:300])
        entry = result.as_dict()
        entry.setdefault("configured", True)
        if entry["configured"] is False:
            entry["ok"] = None
        out[name] = entry
    return out


# --------------------------------------------------------------------------- extra checks


_CHECKS: dict[str, ExtraCheck] = {}


def register_check(name: str, fn: ExtraCheck) -> None:
    """Add (or replace) an extra check: `fn(scheduled) -> {"ok": bool, ...}`."""
    _CHECKS[name] = fn


def _backups_check(scheduled: bool) -> dict[str, Any]:
    from lastgood.core.config import get_config
    from lastgood.core.settings import get_settings
    from lastgood.monitoring.freshness import backup_freshness, emit_freshness_metrics

    if not get_settings().backup_bucket:
        return {"ok": True, "configured": False}
    items = backup_freshness(get_config())
    if scheduled:
        emit_freshness_metrics(items, [])
    return {"ok": all(i.ok for i in items), "sources": {i.source: i.as_dict() for i in items}}


def _datasets_check(scheduled: bool) -> dict[str, Any]:
    from lastgood.core.config import get_config
    from lastgood.core.settings import get_settings
    from lastgood.monitoring.freshness import dataset_freshness, emit_freshness_metrics

    if not get_settings().site_bucket:
        return {"ok": True, "configured": False}
    items = dataset_freshness(get_config())
    if scheduled:
        emit_freshness_metrics([], items)
    return {"ok": all(i.ok for i in items), "datasets": {i.dataset: i.as_dict() for i in items}}


def _kv_check(scheduled: bool) -> dict[str, Any]:
    from lastgood.kv.status import health_status

    return health_status(scheduled)


def _default_checks() -> dict[str, ExtraCheck]:
    return {"backups": _backups_check, "datasets": _datasets_check, "kv": _kv_check}


def run_extra_checks(scheduled: bool) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    for name, fn in {**_default_checks(), **_CHECKS}.items():
        try:
            out[name] = fn(scheduled)
        except Exception as exc:  # one broken check is reported, the others still run
            logger.warning("health check failed", extra={"check": name, "error": str(exc)[:300]})
            out[name] = {"ok": False, "error": f"{type(exc).__name__}: {redact_text(str(exc))}"[:300]}
    return out


# --------------------------------------------------------------------------- report


def overall_status(dependencies: dict[str, dict[str, Any]], checks: dict[str, dict[str, Any]]) -> Status:
    if any(dep.get("configured") and not dep.get("ok") for dep in dependencies.values()):
        return "unhealthy"
    if any(check.get("ok") is False for check in checks.values()):
        return "degraded"
    return "healthy"


def run_checks(
    *, details: bool = True, scheduled: bool = False, probes: dict[str, Probe] | None = None
) -> HealthReport:
    from lastgood.core.settings import get_settings

    timeout_s = get_settings().probe_timeout_s
    dependencies = run_probes(timeout_s, probes)
    checks = run_extra_checks(scheduled) if details or scheduled else {}
    report = HealthReport(overall_status(dependencies, checks), datetime.now(UTC), dependencies, checks)
    failing = {n: d.get("error") for n, d in dependencies.items() if d.get("configured") and not d.get("ok")}
    if failing:
        logger.warning("dependencies down", extra={"failing": failing, "status": report.status})
    if scheduled:
        emit_dependency_metrics(dependencies)
    return report


def emit_dependency_metrics(dependencies: dict[str, dict[str, Any]]) -> None:
    from lastgood.core.observability import emit_metrics

    for name, dep in dependencies.items():
        if not dep.get("configured"):
            continue
        emit_metrics(
            {
                "DependencyUp": ("Count", 1 if dep.get("ok") else 0),
                "DependencyLatency": ("Milliseconds", float(dep.get("latency_ms") or 0.0)),
            },
            dependency=name,
        )

"""Health: concurrent dependency probes and checks under one deadline, the report, its metrics.

Dependencies are what the configuration declares (`lastgood.monitoring.probes`):
every configured source, probed through its engine and named after it, the
datasets' MongoDB, and S3. They are probed concurrently, each with its own
timeout (`HEALTH_PROBE_TIMEOUT_S`) and measured latency. The whole run — probes
and extra checks — has one deadline (`HEALTH_DEADLINE_S`, default 10 s, below
the function's Timeout): whatever misses its limit is reported `status:
"timeout"`, `ok: false`, under its own name, and is not waited for (daemon
threads, never joined). A probe or check that raises is reported failing with
its exception type; the report never crashes. A dependency whose secret is
absent is `configured: false, ok: null`: reported, not a failure.

Status:
- `unhealthy` (HTTP 503, CLI exit 4) — any configured dependency is down. Every
  dependency is critical: MongoDB and S3 hold the data and backups, the sources
  are what lastgood backs up, and a dependency lastgood cannot reach is one it
  cannot protect;
- `degraded` (HTTP 200, CLI exit 12) — dependencies are up but an extra check
  failed (a backup older than its RPO, a stale dataset, the KV running on its mirror);
- `healthy` (HTTP 200, exit 0) otherwise.
Every state but `healthy` carries `reasons`: one line per failing dependency or
check, naming it and why (`HealthReport.reasons`).

The public, unauthenticated `/health` runs the dependency probes only (cheap, and
nothing an anonymous caller can use to make lastgood list buckets), so it answers
`healthy` or `unhealthy`; a warm instance serves it from `PublicHealth`, its last
probe results for `HEALTH_CACHE_S` (default 15 s), so a burst of anonymous calls
opens at most one connection per dependency per interval (docs/limits.md).
`degraded` shows in the details, the CLI and the scheduled run, which always probe.

Extra checks (the `Check` shape): `register_check(name, fn)` with
`fn(scheduled: bool) -> dict[str, Any]`. The dict must carry `"ok": bool`
(`False` makes the report `degraded`, never `unhealthy`; `"configured": False`
with `"ok": True` means "nothing to check here"); anything else in it is
reported verbatim under `name` in the details (`"error"` / `"reason"` become
its reason). `scheduled` is True on the EventBridge Scheduler run: that is when
a check emits its own metrics (`lastgood.core.observability.emit_metrics`).
Checks run for `/health/details`, the CLI and the scheduled run — not for the
public, minimal `/health`. Built in: `backups` (age vs RPO), `datasets`
(freshness of every configured dataset), `kv` (KV mode, seed 001).

A scheduled run always emits DependencyUp (1/0) and DependencyLatency (ms) per
dependency (dimension `dependency`), a timed-out one as down (docs/metrics.md).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any, Literal

from lastgood.core.errors import LastgoodError
from lastgood.core.observability import logger
from lastgood.core.redact import redact_text
from lastgood.engines.base import ProbeResult
from lastgood.monitoring.deadline import Outcome, run_within
from lastgood.monitoring.probes import Probe, configured_probes, probe_s3
from lastgood.monitoring.reasons import check_reasons, dependency_reason

Status = Literal["healthy", "degraded", "unhealthy"]
ExtraCheck = Callable[[bool], dict[str, Any]]

__all__ = ["HealthReport", "PublicHealth", "configured_probes", "probe_s3", "register_check", "run_checks"]

# A probe gets its own timeout plus this grace (its client's own timeout fires first).
PROBE_GRACE_S = 0.5


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

    def reasons(self) -> list[str]:
        """One line per failing dependency or check: its name and why (never empty unless healthy)."""
        out = [
            dependency_reason(name, dep)
            for name, dep in self.dependencies.items()
            if dep.get("configured") and not dep.get("ok")
        ]
        for name, check in self.checks.items():
            if check.get("ok") is False:
                out.extend(check_reasons(name, check))
        if self.status != "healthy" and not out:  # defensive: a state is never reported without why
            out.append(f"{self.status}: no failing dependency or check was named")
        return out

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
            "reasons": self.reasons(),
            "health": flags,
            "dependencies": self.dependencies,
            **self.checks,
        }


# --------------------------------------------------------------------------- probes


def _error_text(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {redact_text(str(exc))}"[:300]


def _dependency_entry(outcome: Outcome, timeout_s: float, deadline_s: float) -> dict[str, Any]:
    if outcome.timed_out:
        cut_by_deadline = outcome.limit_s < timeout_s + PROBE_GRACE_S
        error = (
            f"Timeout: no answer within the {deadline_s:g}s health deadline"
            if cut_by_deadline
            else f"Timeout: no answer within {timeout_s:g}s"
        )
        result = ProbeResult("", False, outcome.elapsed_s * 1000, error)
    elif outcome.error is not None:  # a probe must never crash the report
        result = ProbeResult("", False, outcome.elapsed_s * 1000, _error_text(outcome.error))
    elif isinstance(outcome.value, ProbeResult):
        result = outcome.value
    else:
        result = ProbeResult(
            "", False, outcome.elapsed_s * 1000, f"probe returned {type(outcome.value).__name__}"
        )
    entry = result.as_dict()
    entry.setdefault("configured", True)
    if entry["configured"] is False:
        entry["ok"] = None
    if outcome.timed_out:
        entry["status"] = "timeout"
    return entry


def _probes_or_config_error() -> dict[str, Probe]:
    try:
        return configured_probes()
    except LastgoodError as exc:  # an unreadable config is reported, not raised
        error = f"{type(exc).__name__}: {exc}"[:300]

        def broken(timeout_s: float) -> ProbeResult:
            return ProbeResult("config", False, 0.0, error)

        return {"config": broken}


def run_probes(
    timeout_s: float, probes: dict[str, Probe] | None = None, *, deadline_s: float | None = None
) -> dict[str, dict[str, Any]]:
    """Run every probe concurrently; each gets `timeout_s` (plus a small grace) and no more."""
    chosen = probes if probes is not None else _probes_or_config_error()
    deadline = deadline_s if deadline_s is not None else timeout_s + PROBE_GRACE_S
    tasks = {name: (partial(fn, timeout_s), timeout_s + PROBE_GRACE_S) for name, fn in chosen.items()}
    outcomes = run_within(tasks, deadline, name="probe")
    return {name: _dependency_entry(o, timeout_s, deadline) for name, o in outcomes.items()}


# --------------------------------------------------------------------------- extra checks


_CHECKS: dict[str, ExtraCheck] = {}


def register_check(name: str, fn: ExtraCheck) -> None:
    """Add (or replace) an extra check: `fn(scheduled) -> {"ok": bool, ...}`."""
    _CHECKS[name] = fn


def _backups_check(scheduled: bool) -> dict[str, Any]:
    from lastgood.backups.store import BackupStore
    from lastgood.core import aws
    from lastgood.core.config import get_config
    from lastgood.core.settings import get_settings
    from lastgood.monitoring.freshness import backup_freshness, emit_freshness_metrics

    settings = get_settings()
    if not settings.backup_bucket:
        return {"ok": True, "configured": False}
    store = BackupStore(settings.backup_bucket, settings.kms_key_id, aws.health_client("s3"))
    items = backup_freshness(get_config(), store=store)
    if scheduled:
        emit_freshness_metrics(items, [])
    return {"ok": all(i.ok for i in items), "sources": {i.source: i.as_dict() for i in items}}


def _datasets_check(scheduled: bool) -> dict[str, Any]:
    from lastgood.core import aws
    from lastgood.core.config import get_config
    from lastgood.core.settings import get_settings
    from lastgood.monitoring.freshness import dataset_freshness, emit_freshness_metrics

    if not get_settings().site_bucket:
        return {"ok": True, "configured": False}
    items = dataset_freshness(get_config(), s3=aws.health_client("s3"))
    if scheduled:
        emit_freshness_metrics([], items)
    return {"ok": all(i.ok for i in items), "datasets": {i.dataset: i.as_dict() for i in items}}


def _kv_check(scheduled: bool) -> dict[str, Any]:
    from lastgood.kv.status import health_status

    return health_status(scheduled)


def _pitr_check(scheduled: bool) -> dict[str, Any]:
    from lastgood.monitoring.pitr_health import pitr_check

    return pitr_check(scheduled)


def _default_checks() -> dict[str, ExtraCheck]:
    # cross-region replica (issue 19): newest committed copy per source vs [replica].max_age
    from lastgood.monitoring.replica import replica_check

    return {
        "backups": _backups_check,
        "datasets": _datasets_check,
        "kv": _kv_check,
        "replica": replica_check,
        "pitr": _pitr_check,
    }


def _check_entry(name: str, outcome: Outcome, deadline_s: float) -> dict[str, Any]:
    if outcome.timed_out:
        error = f"Timeout: no answer within the {deadline_s:g}s health deadline"
        logger.warning("health check timed out", extra={"check": name, "deadline_s": deadline_s})
        return {"ok": False, "status": "timeout", "error": error}
    if outcome.error is not None:  # one broken check is reported, the others still run
        logger.warning("health check failed", extra={"check": name, "error": str(outcome.error)[:300]})
        return {"ok": False, "error": _error_text(outcome.error)}
    if not isinstance(outcome.value, dict) or not isinstance(outcome.value.get("ok"), bool):
        return {"ok": False, "error": f"check returned no ok flag ({type(outcome.value).__name__})"}
    return outcome.value


# --------------------------------------------------------------------------- report


def overall_status(dependencies: dict[str, dict[str, Any]], checks: dict[str, dict[str, Any]]) -> Status:
    if any(dep.get("configured") and not dep.get("ok") for dep in dependencies.values()):
        return "unhealthy"
    if any(check.get("ok") is False for check in checks.values()):
        return "degraded"
    return "healthy"


def run_checks(
    *,
    details: bool = True,
    scheduled: bool = False,
    probes: dict[str, Probe] | None = None,
    deadline_s: float | None = None,
) -> HealthReport:
    """Probes (and, unless public, extra checks) concurrently, all within the health deadline."""
    from lastgood.core.settings import get_settings

    settings = get_settings()
    timeout_s = settings.probe_timeout_s
    deadline = deadline_s if deadline_s is not None else settings.health_deadline_s
    chosen = probes if probes is not None else _probes_or_config_error()
    limit = timeout_s + PROBE_GRACE_S
    tasks: dict[str, tuple[Callable[[], Any], float]] = {
        f"dependency:{name}": (partial(fn, timeout_s), limit) for name, fn in chosen.items()
    }
    extra = {**_default_checks(), **_CHECKS} if details or scheduled else {}
    tasks.update({f"check:{name}": (partial(fn, scheduled), deadline) for name, fn in extra.items()})
    outcomes = run_within(tasks, deadline, name="health")
    dependencies = {n: _dependency_entry(outcomes[f"dependency:{n}"], timeout_s, deadline) for n in chosen}
    checks = {n: _check_entry(n, outcomes[f"check:{n}"], deadline) for n in extra}
    report = HealthReport(overall_status(dependencies, checks), datetime.now(UTC), dependencies, checks)
    if scheduled:  # always, even when something hung: a timed-out dependency is emitted as down
        emit_dependency_metrics(dependencies)
    if report.status != "healthy":
        logger.warning("health not healthy", extra={"status": report.status, "reasons": report.reasons()})
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


# --------------------------------------------------------------------------- public /health


class PublicHealth:
    """The public `/health` of one warm instance: its last probe results, reused for `HEALTH_CACHE_S`.

    Concurrent callers wait for the one run in progress (itself bounded by the
    deadline) instead of starting their own, so an instance opens at most one
    connection per dependency per interval, however many anonymous calls arrive.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._report: HealthReport | None = None
        self._at = 0.0

    def report(self) -> HealthReport:
        from lastgood.core.settings import get_settings

        ttl = get_settings().health_cache_s
        with self._lock:
            if self._report is not None and self._clock() - self._at < ttl:
                return self._report
            report = run_checks(details=False)
            self._report, self._at = report, self._clock()
            return report

"""The resilient KV's entry in the health report (`health_status`), its metrics and its audit record."""

from __future__ import annotations

from typing import Any

from lastgood.kv.client import MODE_FALLBACK, MODE_KV, get_kv
from lastgood.kv.resync import ResyncReport


def mongo_connections_used_ratio(mirror: Any) -> float | None:
    """`connections.current / (current + available)` from serverStatus; None where not permitted/supported."""
    if mirror is None:
        return None
    from pymongo.errors import PyMongoError

    try:
        import pymongo

        with pymongo.timeout(1.0):
            status = mirror.database.client.admin.command("serverStatus")
    except PyMongoError:
        return None  # e.g. Atlas shared tiers without the clusterMonitor role
    connections = status.get("connections") if isinstance(status, dict) else None
    if not isinstance(connections, dict):
        return None
    current, available = connections.get("current"), connections.get("available")
    if (
        not isinstance(current, int | float)
        or not isinstance(available, int | float)
        or current + available <= 0
    ):
        return None
    return round(float(current) / float(current + available), 4)


def health_status(scheduled: bool = False, *, emit_metrics: bool | None = None) -> dict[str, Any]:
    """The `kv` entry of the health report; a scheduled run also drives the resync.

    Shape (seed 001 plus details): `status` kv | mongodb | fallback, `health`,
    `kv.configured/available/circuit`, `mongodb.configured/available`,
    `open_circuit_age_s`, `dirty_keys`, `pending_resync`, `mongodb.connections_used_ratio`
    (a number, or "unknown" where serverStatus is not permitted) and, on scheduled
    runs, `resync`. `ok` is false only when neither store can serve.
    Metrics (scheduled runs): KVFallbackActive (1 while not in kv mode), KVDirtyKeys,
    KVPendingResync, MongoConnectionsUsedRatio (percent, only when known) — see docs/metrics.md.
    The health module calls this (`lastgood.monitoring.health`, check `kv`).
    """
    kv = get_kv()
    report: ResyncReport | None = None
    if scheduled and kv.primary is not None and kv.mirror is not None:
        report = kv.resync()
        if report.synced or report.repaired or report.removed:
            from lastgood.storage import audit

            audit.record("kv-resync", result="ok" if report.complete else "incomplete", **report.as_dict())
    status = kv.status()
    ratio = mongo_connections_used_ratio(kv.mirror) if status["health"]["mongodb"] else None
    status["mongodb"]["connections_used_ratio"] = "unknown" if ratio is None else ratio
    if report is not None:
        status["resync"] = report.as_dict()
    status["ok"] = status["status"] != MODE_FALLBACK
    if emit_metrics if emit_metrics is not None else scheduled:
        from lastgood.core.observability import emit_metrics as emit

        values: dict[str, tuple[str, float]] = {
            "KVFallbackActive": ("Count", 0 if status["status"] == MODE_KV else 1),
            "KVDirtyKeys": ("Count", status["dirty_keys"]),
        }
        if isinstance(status["pending_resync"], int):
            values["KVPendingResync"] = ("Count", status["pending_resync"])
        if ratio is not None:
            values["MongoConnectionsUsedRatio"] = ("Percent", ratio * 100)
        emit(values)
    return status


health_check = health_status  # the name the check registry and older callers use

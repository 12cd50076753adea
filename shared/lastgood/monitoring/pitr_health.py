"""The health check of PITR sources: slot lag (bytes) and the newest change segment's age (the RPO).

Scheduled runs emit `PitrSegmentAgeSeconds` (the backup-late alarm of a PITR source reads it) and
`PitrSlotLagBytes` per source.
"""

from __future__ import annotations

from typing import Any

from lastgood.core.config import get_config
from lastgood.core.observability import emit_metrics
from lastgood.pitr.capture import METRIC_SEGMENT_AGE, METRIC_SLOT_LAG
from lastgood.pitr.lag import pitr_status


def pitr_check(scheduled: bool) -> dict[str, Any]:
    names = [s.name for s in get_config().sources if s.pitr]
    if not names:
        return {"ok": True, "configured": False}
    sources: dict[str, Any] = {}
    reasons: list[str] = []
    for name in names:
        try:
            status = pitr_status(name)
        except Exception as exc:  # one source's failure is its reason; the others are still checked
            sources[name] = {"ok": False, "reasons": [f"{type(exc).__name__}: {str(exc)[:200]}"]}
            reasons.append(f"{name}: {type(exc).__name__}: {str(exc)[:200]}")
            continue
        sources[name] = status.as_dict()
        reasons.extend(f"{name}: {r}" for r in status.reasons)
        if scheduled:
            values: dict[str, tuple[str, float]] = {}
            age = status.segment_age_s
            if age is not None:
                values[METRIC_SEGMENT_AGE] = ("Seconds", age)
            if status.lag_bytes is not None:
                values[METRIC_SLOT_LAG] = ("Bytes", status.lag_bytes)
            if values:
                emit_metrics(values, source=name)
    result: dict[str, Any] = {"ok": not reasons, "sources": sources}
    if reasons:
        result["reason"] = "; ".join(reasons)
    return result

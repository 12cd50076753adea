"""Prune handler: daily EventBridge Scheduler run.

In a replica-mode deployment (LASTGOOD_DEPLOYMENT_MODE=replica) the same prune runs on this
deployment's bucket, the cross-region replica, with the config's `[replica].retention`.

Event: `{"dry_run": false}` (every configured source) or `{"source": "postgres", "dry_run": true}`.
Every source is attempted; a run over every configured source also emits their total
`BackupStorageBytes` (dimension service only) for the storage budget. Afterwards, if any failed (refused plan, partial delete), the
handler raises naming them so the on-failure destination and the Errors alarm fire.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from lastgood.backups.prune import prune_source
from lastgood.backups.replica import is_replica_deployment, prune_replica
from lastgood.core.config import get_config
from lastgood.core.errors import LastgoodError
from lastgood.core.events import PruneInput, parse_input
from lastgood.core.observability import emit_metrics, logger, metrics, tracer


def parse_event(event: Any) -> tuple[list[str], bool]:
    """(source names, dry_run): one named source, else every configured one."""
    request = parse_input(event, PruneInput)
    names = (
        [get_config().source(request.source).name]
        if request.source
        else [s.name for s in get_config().sources]
    )
    return names, request.dry_run


@metrics.log_metrics(capture_cold_start_metric=True)
@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    names, dry_run = parse_event(event)
    results: dict[str, Any] = {}
    errors: dict[str, str] = {}
    total_bytes = 0
    for name in names:
        try:
            # a replica-mode deployment prunes its bucket (the copies) with [replica].retention
            prune = prune_replica if is_replica_deployment() else prune_source
            result = prune(name, dry_run=dry_run)
        except Exception as exc:  # every source gets its run; the failures are raised below
            errors[name] = str(exc)[:500]
            results[name] = {"error": errors[name]}
            logger.exception("prune failed", extra={"source": name})
            continue
        total_bytes += max(0, result.storage_bytes)
        results[name] = {
            "dry_run": dry_run,
            "kept": len(result.plan.keep),
            "removed": len(result.plan.remove),
            "pruned": len(result.pruned),
            "locked_backups": result.locked_backups,
            "deleted_keys": result.deleted_keys,
            "audit_key": result.audit_key,
        }
    if len(names) == len(get_config().sources):
        # The storage budget: every declared source's bytes (StorageBudgetAlarm, docs/metrics.md);
        # a source whose listing failed is missing from it, and its failure raises below.
        emit_metrics({"BackupStorageBytes": ("Bytes", total_bytes)})
    if errors:
        raise LastgoodError(f"prune failed for {', '.join(sorted(errors))}: {errors}")
    return {"sources": results}

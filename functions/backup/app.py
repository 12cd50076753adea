"""Backup handler: one scheduled run = one source, one slot.

Event (EventBridge Scheduler input): `{"source": "postgres", "slot": "<aws.scheduler.scheduled-time>"}`;
`slot` is optional (defaults to the event's `time`, else now). A duplicate
invocation for a slot whose backup is committed returns `skipped`; a slot held by a
run that has not committed raises `SlotInProgress` (not a success: the retry after
the lease takes it over); a failure raises (on-failure destination + alarm).
"""

from __future__ import annotations

import time
from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from lastgood.backups.run import run_backup
from lastgood.core.config import get_config, require_secrets
from lastgood.core.events import BackupInput, parse_input
from lastgood.core.observability import logger, metrics, tracer

SAFETY_MARGIN_S = 30


def parse_event(event: Any) -> tuple[str, str | None]:
    """(source, slot) from the Scheduler input (or an EventBridge `detail`); slot defaults to `time`."""
    request = parse_input(event, BackupInput)
    return request.source, request.effective_slot


@metrics.log_metrics(capture_cold_start_metric=True)
@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    source, slot = parse_event(event)
    # Before anything is locked or written: the config file is valid (else every problem, with
    # its line) and the source's secrets are provided (else the variable and its config line).
    require_secrets([source])
    # Stop cleanly (abort the upload, release the slot) well before Lambda's hard timeout.
    deadline = time.monotonic() + context.get_remaining_time_in_millis() / 1000 - SAFETY_MARGIN_S
    if get_config().source(source).pitr:  # a PITR base: pg_dump on a new replication slot's snapshot
        from lastgood.pitr.base import take_base  # the replication machinery only where it is used

        result = take_base(source, slot=slot, deadline=deadline)
    else:
        result = run_backup(source, slot=slot, deadline=deadline)
    return result.as_dict()

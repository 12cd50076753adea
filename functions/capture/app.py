"""Capture handler: one scheduled PITR capture of one source (every `capture_interval`).

Event (EventBridge Scheduler input): `{"source": "orders"}`. Reads the source's logical slot
since the last committed change segment, writes the next segment (manifest last), then
advances the slot; a failure commits nothing, leaves the slot, and raises (alarm). A schema
change or the hard slot-lag limit starts a new base (`lastgood.pitr.capture`).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from lastgood.core.config import require_secrets
from lastgood.core.events import CaptureInput, parse_input
from lastgood.core.observability import logger, metrics, tracer
from lastgood.pitr.capture import run_capture


@metrics.log_metrics(capture_cold_start_metric=True)
@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = parse_input(event, CaptureInput)
    require_secrets([request.source])
    return run_capture(request.source).as_dict()

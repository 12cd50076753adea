"""Daily summary handler (seed 004): publish the backup confirmation to the alert topic, even when all is fine.

Event (EventBridge Scheduler input): `{"publish": true}`; `"publish": false` builds
the summary without sending it. The response carries the subject and message. A published
run also writes the status page to the backup bucket (`status_gather.publish_page`; its
outcome is the response's `status_page`, a page that cannot be written never stops the summary).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from lastgood.core.events import SummaryInput, parse_input
from lastgood.core.observability import emit_metrics, logger, metrics, tracer
from lastgood.monitoring import status_gather, summary


@metrics.log_metrics(capture_cold_start_metric=True)
@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = parse_input(event, SummaryInput)
    result = summary.run(publish=request.publish)
    if request.publish:
        result["status_page"] = status_gather.publish_page()
    emit_metrics({"DailySummaryIssues": ("Count", len(result["issues"]))})
    return result

"""Daily summary handler (seed 004): publish the backup confirmation to the alert topic, even when all is fine.

Event (EventBridge Scheduler input): `{"publish": true}`; `"publish": false` builds
the summary without sending it. The response carries the subject and message.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.parser import parse
from aws_lambda_powertools.utilities.typing import LambdaContext
from lastgood.core.observability import logger, metrics, tracer
from lastgood.monitoring import summary
from pydantic import BaseModel, ConfigDict


class SummaryEvent(BaseModel):
    model_config = ConfigDict(extra="ignore")

    publish: bool = True


@metrics.log_metrics(capture_cold_start_metric=True)
@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    request = parse(event=event or {}, model=SummaryEvent)
    result = summary.run(publish=request.publish)
    metrics.add_metric(name="DailySummaryIssues", unit=MetricUnit.Count, value=len(result["issues"]))
    return result

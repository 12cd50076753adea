"""Regenerate handler: the hourly EventBridge Scheduler run.

Event (Scheduler input): `{}` or `{"slot": "<aws.scheduler.scheduled-time>"}` regenerates
every configured dataset; `{"datasets": ["prompts"]}` only those. Unknown keys are ignored.

Returns the run's report: per dataset `published | repaired | unchanged | rejected | failed` with the
reason, plus the one CloudFront invalidation. It raises (so the on-failure destination and
the Errors alarm fire, and the Scheduler retries) only when EVERY dataset failed — an outage
(MongoDB or S3 down), where a retry may help. A rejected dataset is bad data, not a failed
run: the published copy stays the last good one and RegenerateRejectedAlarm reports it;
a partial failure is reported by RegenerateFailedAlarm without retrying the good datasets.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from lastgood.core.errors import SourceUnavailable
from lastgood.core.events import RegenerateInput, parse_input
from lastgood.core.observability import logger, metrics, tracer
from lastgood.site.regenerate import regenerate


def parse_event(event: Any) -> list[str] | None:
    """Dataset names from the event (None: all configured datasets)."""
    return parse_input(event, RegenerateInput).datasets


@metrics.log_metrics(capture_cold_start_metric=True)
@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    report = regenerate(parse_event(event))
    if report.all_failed:
        reasons = "; ".join(f"{o.dataset}: {o.reason}" for o in report.outcomes)
        raise SourceUnavailable(f"every dataset failed to regenerate: {reasons}"[:1000])
    return report.as_dict()

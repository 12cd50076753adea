"""Regenerate handler: hourly EventBridge Scheduler run.

Event: `{}` or `{"slot": ...}` (all datasets), or `{"datasets": ["prompts"]}`.
Returns each dataset's outcome (published | unchanged | rejected | failed).
Raises — so the on-failure destination fires — only when every dataset
failed (an outage, not bad data: guard rejections are alarmed through the
RegenerateRejected metric and leave the published data untouched).
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.typing import LambdaContext
from lastgood.errors import ConfigError, LastgoodError
from lastgood.observability import logger, metrics, tracer
from lastgood.regenerate import regenerate


def parse_event(event: Any) -> list[str] | None:
    if not isinstance(event, dict):
        raise ConfigError(f"regenerate event must be a JSON object, got {type(event).__name__}")
    names = event.get("datasets")
    if names is None:
        return None
    if not isinstance(names, list) or not all(isinstance(n, str) and n for n in names):
        raise ConfigError('"datasets" must be a list of dataset names')
    return names


@metrics.log_metrics(capture_cold_start_metric=True)
@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    outcomes = regenerate(parse_event(event))
    result = {"datasets": [o.as_dict() for o in outcomes]}
    if outcomes and all(o.status == "failed" for o in outcomes):
        raise LastgoodError(f"every dataset failed: {[o.reason for o in outcomes]}")
    return result

"""Slack notifier: subscribed to the alert topic, relays each message to the Slack webhook.

The webhook URL comes from the secret `SLACK_WEBHOOK_URL`. A Slack failure is
logged and reported in the response, never raised: SNS would retry the
delivery, and e-mail (a separate subscription) must not depend on Slack.
"""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.utilities.data_classes import SNSEvent, event_source
from aws_lambda_powertools.utilities.typing import LambdaContext
from lastgood.core.observability import emit_metrics, logger, metrics, tracer
from lastgood.monitoring.alerts import post_to_slack


@metrics.log_metrics(capture_cold_start_metric=True)
@logger.inject_lambda_context
@tracer.capture_lambda_handler
@event_source(data_class=SNSEvent)
def lambda_handler(event: SNSEvent, context: LambdaContext) -> dict[str, Any]:
    results = []
    for record in event.records:
        sns = record.sns
        result = post_to_slack(sns.subject, sns.message)
        results.append({"message_id": sns.message_id, "posted": result.posted, "error": result.error})
    delivered = sum(1 for r in results if r["posted"])
    failed = sum(1 for r in results if not r["posted"] and r["error"] != "not configured")
    emit_metrics(
        {"SlackNotificationsSent": ("Count", delivered), "SlackNotificationsFailed": ("Count", failed)}
    )
    return {"delivered": delivered, "results": results}

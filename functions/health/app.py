"""Health handler: `GET /health` (public, minimal, served from this warm instance's last probe
results for HEALTH_CACHE_S), `GET /health/details` (admin key), and the scheduled run (every
few minutes: probes + freshness + KV resync, as metrics). Every path answers within
HEALTH_DEADLINE_S (below the function's Timeout).

An API Gateway HTTP API (payload v2) event goes through the Powertools resolver;
anything else is the EventBridge Scheduler input `{"scheduled": true, ...}`.
"""

from __future__ import annotations

import hmac
from typing import Any

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response
from aws_lambda_powertools.event_handler.exceptions import UnauthorizedError
from aws_lambda_powertools.utilities.typing import LambdaContext
from lastgood.core.errors import ConfigError
from lastgood.core.events import HealthScheduleInput, parse_input
from lastgood.core.observability import logger, metrics, tracer
from lastgood.core.settings import get_secret
from lastgood.monitoring.health import PublicHealth, run_checks

app = APIGatewayHttpResolver()
public_health = PublicHealth()  # per warm instance


def _json(status: int, body: dict[str, Any]) -> Response[dict[str, Any]]:
    return Response(status_code=status, content_type="application/json", body=body)


@app.get("/health")
def health() -> Response[dict[str, Any]]:
    report = public_health.report()
    return _json(report.status_code, report.minimal())


@app.get("/health/details")
def health_details() -> Response[dict[str, Any]]:
    given = app.current_event.headers.get("x-admin-key") or ""
    try:
        expected = get_secret("ADMIN_KEY", required=False) or ""
    except ConfigError as exc:  # the secret store is unreachable: refuse, and say why in the logs only
        logger.error("admin key unavailable", extra={"reason": str(exc)})
        expected = ""
    # Constant-time comparison; an unset secret never matches (not even an empty header).
    if not expected or not hmac.compare_digest(given.encode(), expected.encode()):
        raise UnauthorizedError("unauthorized")
    report = run_checks(details=True)
    return _json(report.status_code, report.details())


def is_api_event(event: Any) -> bool:
    return isinstance(event, dict) and ("requestContext" in event or "routeKey" in event)


def malformed(reason: str) -> dict[str, Any]:
    logger.warning("malformed health event", extra={"reason": reason})
    return {
        "statusCode": 400,
        "headers": {"Content-Type": "application/json"},
        "body": '{"message":"bad request"}',
    }


@metrics.log_metrics(capture_cold_start_metric=True)
@logger.inject_lambda_context
@tracer.capture_lambda_handler
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    if is_api_event(event):
        http = (
            (event.get("requestContext") or {}).get("http")
            if isinstance(event.get("requestContext"), dict)
            else None
        )
        if not isinstance(http, dict) or not http.get("method") or not isinstance(event.get("rawPath"), str):
            return malformed("API event without requestContext.http.method / rawPath")
        try:
            return app.resolve(event, context)
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            return malformed(f"{type(exc).__name__}")
    if not isinstance(event, dict):
        return malformed(f"event is {type(event).__name__}, expected an object")
    try:
        parse_input(event, HealthScheduleInput)
    except ConfigError as exc:
        return malformed(str(exc))
    report = run_checks(details=True, scheduled=True)
    logger.info("scheduled health run", extra={"status": report.status})
    return report.details()

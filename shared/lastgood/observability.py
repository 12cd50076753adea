"""The one place that creates Powertools Logger, Tracer and Metrics.

Handlers and domain modules import these objects; the service name, log level
and metrics namespace come from the standard Powertools environment variables
(set in template.yaml Globals), so nothing here is configured by hand.
"""

from __future__ import annotations

import os

from aws_lambda_powertools import Logger, Metrics, Tracer

SERVICE = os.environ.get("POWERTOOLS_SERVICE_NAME", "lastgood")
NAMESPACE = os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "lastgood")

logger = Logger(service=SERVICE)
tracer = Tracer(service=SERVICE)
metrics = Metrics(service=SERVICE, namespace=NAMESPACE)

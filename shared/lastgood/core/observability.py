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


def emit_metrics(values: dict[str, tuple[str, float]], **dimensions: str) -> None:
    """Emit metrics now, as one EMF record with exactly these dimensions.

    For runs that cover several sources/datasets in one invocation: the shared
    `metrics` object has one dimension set per flush, so per-item metrics use an
    isolated EphemeralMetrics flushed immediately. `values` maps a metric name to
    (MetricUnit name, value), e.g. {"BackupSuccess": ("Count", 1)}.
    """
    from aws_lambda_powertools.metrics import EphemeralMetrics, MetricUnit

    ephemeral = EphemeralMetrics(namespace=NAMESPACE, service=SERVICE)
    for name, value in dimensions.items():
        ephemeral.add_dimension(name=name, value=value)
    for name, (unit, amount) in values.items():
        ephemeral.add_metric(name=name, unit=getattr(MetricUnit, unit), value=amount)
    ephemeral.flush_metrics()

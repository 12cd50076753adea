"""boto3 clients, created lazily and cached per process (warm invocations reuse them).

Endpoints come from the standard `AWS_ENDPOINT_URL` / `AWS_ENDPOINT_URL_<SERVICE>`
variables, so the same code runs against AWS and the devstack. Timeouts are
short and retries bounded: a slow dependency must fail fast, not stall a run.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import boto3
from botocore.config import Config

DEFAULT_CONFIG = Config(
    connect_timeout=3,
    read_timeout=30,
    retries={"max_attempts": 3, "mode": "standard"},
    s3={"addressing_style": "path"},
)
# For the request path of the loader and health probes: one quick attempt.
FAST_CONFIG = Config(
    connect_timeout=1,
    read_timeout=2,
    retries={"max_attempts": 1, "mode": "standard"},
    s3={"addressing_style": "path"},
)
# For health (probes, freshness, backup age): a hung endpoint costs at most
# 2 attempts x (1 s connect + 2 s read), never 3 x 30 s; the run's deadline bounds the rest.
# (botocore's `max_attempts` counts retries, `total_max_attempts` counts attempts.)
HEALTH_CONFIG = Config(
    connect_timeout=1,
    read_timeout=2,
    retries={"total_max_attempts": 2, "mode": "standard"},
    s3={"addressing_style": "path"},
)


@lru_cache(maxsize=32)
def client(service: str, fast: bool = False, health: bool = False) -> Any:
    """A cached boto3 client for `service`.

    `fast=True`: short timeouts, no retries (request paths). `health=True`: the
    health run's client (`HEALTH_CONFIG`: short timeouts, one retry).
    """
    from lastgood.core.settings import get_settings

    config = HEALTH_CONFIG if health else FAST_CONFIG if fast else DEFAULT_CONFIG
    return boto3.session.Session().client(
        service,  # type: ignore[call-overload]
        region_name=get_settings().aws_region,
        config=config,
    )


@lru_cache(maxsize=8)
def regional_client(
    service: str, region: str, endpoint_url: str | None = None, *, health: bool = False
) -> Any:
    """A cached client for `service` in another region (the cross-region replica), optionally at
    `endpoint_url` (a stand-in; None = AWS, or `AWS_ENDPOINT_URL` as for every client)."""
    config = HEALTH_CONFIG if health else DEFAULT_CONFIG
    return boto3.session.Session().client(
        service,  # type: ignore[call-overload]
        region_name=region,
        endpoint_url=endpoint_url or None,
        config=config,
    )


def health_client(service: str) -> Any:
    """The client health uses for `service` (S3, CloudWatch): see `HEALTH_CONFIG`."""
    return client(service, health=True)


def reset_clients() -> None:
    """Forget cached clients (tests that change endpoints between cases)."""
    client.cache_clear()
    regional_client.cache_clear()

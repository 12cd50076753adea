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


@lru_cache(maxsize=32)
def client(service: str, fast: bool = False) -> Any:
    """A cached boto3 client for `service` (`fast=True`: short timeouts, no retries)."""
    from lastgood.core.settings import get_settings

    return boto3.session.Session().client(
        service,  # type: ignore[call-overload]
        region_name=get_settings().aws_region,
        config=FAST_CONFIG if fast else DEFAULT_CONFIG,
    )


def reset_clients() -> None:
    """Forget cached clients (tests that change endpoints between cases)."""
    client.cache_clear()

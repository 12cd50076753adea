"""Helpers for the regenerate / loader / publish tests against the devstack."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any

from lastgood.core import aws
from lastgood.site import loader
from lastgood.site.keys import last_good_key, live_key
from lastgood.site.publish import SiteStore


def site() -> SiteStore:
    return SiteStore.from_settings()


def s3() -> Any:
    return aws.client("s3")


def bucket() -> str:
    return os.environ["SITE_BUCKET"]


def object_bytes(key: str) -> bytes | None:
    try:
        return bytes(s3().get_object(Bucket=bucket(), Key=key)["Body"].read())
    except s3().exceptions.NoSuchKey:
        return None


def live_bytes(name: str) -> bytes | None:
    return object_bytes(live_key(name))


def last_good_bytes(name: str) -> bytes | None:
    return object_bytes(last_good_key(name))


def invalidation_count() -> int:
    cloudfront = aws.client("cloudfront")
    listed = cloudfront.list_invalidations(DistributionId=os.environ["DISTRIBUTION_ID"])
    return int(listed["InvalidationList"].get("Quantity", 0))


def mongo_collection(name: str) -> Any:
    from pymongo import MongoClient

    client: MongoClient[dict[str, Any]] = MongoClient(
        os.environ["MONGODB_URI"], serverSelectionTimeoutMS=5000
    )
    return client[os.environ.get("MONGODB_DB_NAME", "lastgood")][name]


@contextlib.contextmanager
def reseeded_after(devstack: Any) -> Iterator[None]:
    """Whatever the test does to the MongoDB sample data, the seed is restored afterwards."""
    try:
        yield
    finally:
        devstack.seed()


@contextlib.contextmanager
def s3_unreachable() -> Iterator[None]:
    """Point S3 at a closed loopback port (moto keeps its state); restored afterwards."""
    old = os.environ.get("AWS_ENDPOINT_URL_S3")
    os.environ["AWS_ENDPOINT_URL_S3"] = "http://127.0.0.1:9"
    aws.reset_clients()
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("AWS_ENDPOINT_URL_S3", None)
        else:
            os.environ["AWS_ENDPOINT_URL_S3"] = old
        aws.reset_clients()


@contextlib.contextmanager
def cold_loader() -> Iterator[None]:
    loader.clear_cache()
    try:
        yield
    finally:
        loader.clear_cache()


def wait_mongodb_down(timeout_s: float = 5.0) -> None:
    """After `stopped("mongodb")`: wait until the port really refuses (no lingering listener)."""
    import socket
    import time
    from urllib.parse import urlsplit

    parts = urlsplit(os.environ["MONGODB_URI"])
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((parts.hostname or "127.0.0.1", parts.port or 27017), timeout=0.2):
                pass
        except OSError:
            return
        time.sleep(0.05)
    raise AssertionError("MongoDB still accepts connections after being stopped")

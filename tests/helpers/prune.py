"""Prune test helpers: synthetic backups at chosen times, and a private in-process moto S3.

`private_s3()` runs moto's real server (HTTP, real S3 API handling) in this process so a test
can create thousands of objects through moto's backend in milliseconds (10,000 PUTs over HTTP
take minutes on a loaded 2-core machine) and then prune them through real S3 requests.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from lastgood.backups.manifest import BackupManifest, ObjectEntry


def backup_id_at(when: datetime) -> str:
    return when.strftime("%Y%m%dT%H%M%SZ") + "-" + uuid.uuid4().hex[:6]


def manifest_bytes(source: str, backup_id: str, when: datetime, names: list[str], **kw: Any) -> bytes:
    manifest = BackupManifest.build(
        backup_id=backup_id,
        source=source,
        engine="postgres",
        started_at=when,
        finished_at=when + timedelta(seconds=5),
        objects=[ObjectEntry(key=n, bytes=1, sha256="0" * 64) for n in names],
        **kw,
    )
    return manifest.to_bytes()


def make_backup(
    s3: Any,
    bucket: str,
    source: str,
    when: datetime,
    *,
    objects: int = 2,
    pinned: bool = False,
    pin_reason: str | None = None,
    complete: bool = True,
) -> str:
    """A small synthetic backup through the S3 API (data objects, then the manifest)."""
    backup_id = backup_id_at(when)
    prefix = f"backups/{source}/{backup_id}/"
    names = [f"part-{i:04d}.bin" for i in range(objects)]
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(lambda n: s3.put_object(Bucket=bucket, Key=prefix + n, Body=b"x"), names))
    if complete:
        body = manifest_bytes(
            source, backup_id, when, names, pinned=pinned, pin_reason=pin_reason if pinned else None
        )
        s3.put_object(Bucket=bucket, Key=prefix + "manifest.json", Body=body)
    return backup_id


@dataclass
class PrivateS3:
    client: Any
    backend: Any
    endpoint: str
    calls: dict[str, int] = field(default_factory=dict)

    def create_bucket(self, name: str) -> None:
        self.backend.create_bucket(name, "us-east-1")

    def seed_backup(self, bucket: str, source: str, when: datetime, objects: int) -> str:
        """A backup of `objects` data objects + its manifest, written straight into moto's backend."""
        backup_id = backup_id_at(when)
        prefix = f"backups/{source}/{backup_id}/"
        names = [f"part-{i:04d}.bin" for i in range(objects)]
        for name in names:
            self.backend.put_object(bucket, prefix + name, b"x")
        self.backend.put_object(
            bucket, prefix + "manifest.json", manifest_bytes(source, backup_id, when, names)
        )
        return backup_id

    def count(self, operation: str) -> None:
        def hook(**_: Any) -> None:
            self.calls[operation] = self.calls.get(operation, 0) + 1

        self.client.meta.events.register(f"before-call.s3.{operation}", hook)


@contextmanager
def private_s3() -> Iterator[PrivateS3]:
    import boto3
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.s3.models import s3_backends
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        client = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        yield PrivateS3(client, s3_backends[DEFAULT_ACCOUNT_ID]["global"], endpoint)
    finally:
        server.stop()

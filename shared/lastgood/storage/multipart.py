"""Streaming one S3 object: a bounded buffer feeding multipart parts uploaded on a background pool.

`MultipartUpload(s3, bucket, key, …)` is a file-like sink: `write` buffers and,
whenever `part_size` bytes are buffered, hands a part to a thread pool of
`max_inflight` workers (a semaphore blocks the writer while `max_inflight`
parts are queued or uploading, so memory stays about (max_inflight + 1) *
part_size). Every part carries a CRC32 that S3 checks on arrival (`ChecksumCRC32`,
the AWS SDKs' default part checksum: an order of magnitude cheaper than SHA-256 on both
ends); the whole object's SHA-256, the end-to-end check every read verifies, and its
size are kept as it streams (so each byte is SHA-256-hashed once, not twice). An object smaller than one
part is a single `put_object`. `finish()` uploads the tail and completes the
upload; `abort()` waits for in-flight parts and aborts it (no orphan parts).
With `create_only=True` the object is created, never replaced: the put and the
complete carry `IfNoneMatch="*"` (S3 answers 412 if the key exists).

It knows S3 only: the caller names the object (`name`, for messages) and the
exception a failed part is reported as (`error`).
"""

from __future__ import annotations

import hashlib
import threading
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from lastgood.core.errors import LastgoodError
from lastgood.core.observability import logger
from lastgood.storage.s3 import checksum_crc32, checksum_sha256

PART_SIZE = 8 * 1024 * 1024  # S3 minimum is 5 MiB (except the last part)
MIN_PART_SIZE = 5 * 1024 * 1024
MAX_INFLIGHT_PARTS = 2


class UploadFailed(LastgoodError):
    """A part of a multipart upload failed (the default `error` of `MultipartUpload`)."""


@dataclass(frozen=True)
class UploadResult:
    """What was stored: size and SHA-256 of the whole object, and how many parts it took."""

    bytes: int
    sha256: str
    parts: int


class MultipartUpload:
    """One object being written: bounded buffer → multipart parts (or one put for small objects)."""

    def __init__(
        self,
        s3: Any,
        bucket: str,
        key: str,
        *,
        content_type: str,
        part_size: int = PART_SIZE,
        max_inflight: int = MAX_INFLIGHT_PARTS,
        extra_args: dict[str, str] | None = None,
        name: str | None = None,
        error: Callable[[str], Exception] = UploadFailed,
        create_only: bool = False,
    ) -> None:
        self.s3 = s3
        self.bucket = bucket
        self.key = key
        self.content_type = content_type
        self.part_size = part_size
        self.max_inflight = max(1, max_inflight)
        self.extra_args = dict(extra_args or {})  # e.g. SSE-KMS arguments, sent on create/put
        self.name = name if name is not None else key
        self._error = error
        self._conditional: dict[str, str] = {"IfNoneMatch": "*"} if create_only else {}
        self._buffer = _Chunks()
        self._digest = hashlib.sha256()
        self._size = 0
        self._upload_id: str | None = None
        self._futures: list[Future[dict[str, Any]]] = []
        self._slots = threading.BoundedSemaphore(self.max_inflight)
        self._pool: ThreadPoolExecutor | None = None
        self._closed = False

    def write(self, data: bytes) -> int:
        if self._closed:
            raise ValueError(f"write to closed upload {self.name!r}")
        self._digest.update(data)
        n = self._buffer.add(data)
        self._size += n
        while len(self._buffer) >= self.part_size:
            self._submit(self._buffer.take(self.part_size))
        return n

    @property
    def bytes_written(self) -> int:
        return self._size

    def _submit(self, part: bytes) -> None:
        self._raise_failed_part()
        if self._upload_id is None:
            resp = self.s3.create_multipart_upload(
                Bucket=self.bucket,
                Key=self.key,
                ContentType=self.content_type,
                ChecksumAlgorithm="CRC32",
                **self.extra_args,
            )
            self._upload_id = str(resp["UploadId"])
            self._pool = ThreadPoolExecutor(max_workers=self.max_inflight, thread_name_prefix="s3-part")
        number = len(self._futures) + 1
        self._slots.acquire()  # bounds memory: at most max_inflight parts queued or uploading
        assert self._pool is not None
        future = self._pool.submit(self._upload_part, number, part)
        future.add_done_callback(lambda _f: self._slots.release())
        self._futures.append(future)

    def _upload_part(self, number: int, data: bytes) -> dict[str, Any]:
        checksum = checksum_crc32(data)
        resp = self.s3.upload_part(
            Bucket=self.bucket,
            Key=self.key,
            UploadId=self._upload_id,
            PartNumber=number,
            Body=data,
            ChecksumCRC32=checksum,
        )
        return {
            "PartNumber": number,
            "ETag": resp["ETag"],
            "ChecksumCRC32": resp.get("ChecksumCRC32", checksum),
        }

    def _raise_failed_part(self) -> None:
        for future in self._futures:
            if future.done() and future.exception() is not None:
                raise self._error(
                    f"upload of {self.name!r} failed: {type(future.exception()).__name__}: {future.exception()}"
                )

    def finish(self) -> UploadResult:
        """Upload the tail and complete the upload (or put the whole object when it is small)."""
        self._closed = True
        if self._upload_id is None:
            body = self._buffer.take(len(self._buffer))
            self.s3.put_object(
                Bucket=self.bucket,
                Key=self.key,
                Body=body,
                ContentType=self.content_type,
                ChecksumSHA256=checksum_sha256(body),
                **self.extra_args,
                **self._conditional,
            )
            parts = 1
        else:
            if len(self._buffer):
                self._submit(self._buffer.take(len(self._buffer)))
            results = [future.result() for future in self._futures]
            self._shutdown()
            self.s3.complete_multipart_upload(
                Bucket=self.bucket,
                Key=self.key,
                UploadId=self._upload_id,
                MultipartUpload={"Parts": results},
                **self._conditional,
            )
            parts = len(results)
            self._upload_id = None
        return UploadResult(bytes=self._size, sha256=self._digest.hexdigest(), parts=parts)

    def abort(self) -> None:
        """Stop: wait for in-flight parts, then abort the multipart upload (no orphan parts)."""
        self._closed = True
        self._buffer.clear()
        for future in self._futures:
            future.cancel()
        self._shutdown()
        if self._upload_id is None:
            return
        upload_id, self._upload_id = self._upload_id, None
        try:
            self.s3.abort_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=upload_id)
        except (ClientError, BotoCoreError) as exc:
            # The bucket's AbortIncompleteMultipartUpload lifecycle rule is the backstop.
            logger.error("could not abort multipart upload", extra={"key": self.key, "error": str(exc)[:300]})

    def _shutdown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


class _Chunks:
    """The bytes written and not yet sent, as the writer's own chunks: a part is one join (a
    single copy), not a copy into a growing buffer, a slice and another copy out of it."""

    def __init__(self) -> None:
        self._chunks: deque[bytes] = deque()
        self._size = 0

    def __len__(self) -> int:
        return self._size

    def add(self, data: bytes | bytearray | memoryview) -> int:
        chunk = data if isinstance(data, bytes) else bytes(data)  # the caller may reuse its buffer
        self._chunks.append(chunk)
        self._size += len(chunk)
        return len(chunk)

    def take(self, n: int) -> bytes:
        """The first `n` bytes (at most what is buffered)."""
        taken: list[bytes] = []
        need = min(n, self._size)
        self._size -= need
        while need:
            chunk = self._chunks.popleft()
            if len(chunk) > need:
                self._chunks.appendleft(chunk[need:])
                chunk = chunk[:need]
            taken.append(chunk)
            need -= len(chunk)
        return taken[0] if len(taken) == 1 else b"".join(taken)

    def clear(self) -> None:
        self._chunks.clear()
        self._size = 0

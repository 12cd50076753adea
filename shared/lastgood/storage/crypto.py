"""Optional client-side encryption of backup objects (AWS Encryption SDK + a KMS key), streaming.

SSE-KMS protects every object at rest already; a source with
`client_side_encryption: true` (seed 004: "encryption with key management")
additionally encrypts each object before it leaves the process, so S3 only
ever holds ciphertext. The message format is the AWS Encryption SDK's (framed,
key-committing AES-256-GCM, data key wrapped by `KMS_KEY_ID`), so any Encryption
SDK (`aws-encryption-cli --decrypt`) with access to the key can decrypt it.

Engines write plaintext in pushes while the SDK pulls from a source stream; the
`EncryptingWriter` bridges the two with a bounded queue and one worker thread,
so memory stays bounded by a few frames plus the queue. The manifest's
`sha256`/`bytes` describe the stored ciphertext; `plaintext_bytes` the input.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from functools import lru_cache
from types import TracebackType
from typing import Any, BinaryIO, Protocol

from lastgood.core.errors import BackupError, ConfigError

# The `encryption` of an object in a backup manifest when it was encrypted here (SSE-KMS on top).
CLIENT_SIDE_ENCRYPTION = "aws:kms+aws-encryption-sdk"
FRAME_LENGTH = 256 * 1024
_QUEUE_DEPTH = 8  # pushed chunks waiting for the encryptor (bounded memory)
_READ_SIZE = 1024 * 1024
_END = b""


class _Sink(Protocol):
    def write(self, data: bytes) -> int: ...


@lru_cache(maxsize=8)
def resolve_key_arn(kms_key_id: str) -> str:
    """The key's ARN (the SDK's strict provider needs ARNs); accepts id, alias or ARN."""
    from lastgood.core import aws

    if kms_key_id.startswith("arn:") and ":key/" in kms_key_id:
        return kms_key_id
    try:
        return str(aws.client("kms").describe_key(KeyId=kms_key_id)["KeyMetadata"]["Arn"])
    except Exception as exc:  # botocore errors name the key, never secrets
        raise ConfigError(f"KMS key {kms_key_id!r} for client-side encryption is unusable: {exc}") from None


def _sdk_client() -> Any:
    import aws_encryption_sdk
    from aws_encryption_sdk.identifiers import CommitmentPolicy

    return aws_encryption_sdk.EncryptionSDKClient(
        commitment_policy=CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT
    )


def key_provider(kms_key_id: str | None) -> Any:
    """A strict KMS master key provider for `kms_key_id` (endpoint from AWS_ENDPOINT_URL)."""
    if not kms_key_id:
        raise ConfigError("KMS_KEY_ID is not set: client-side encryption needs a KMS key")
    import botocore.session
    from aws_encryption_sdk import StrictAwsKmsMasterKeyProvider

    from lastgood.core.settings import get_settings

    session = botocore.session.get_session()
    session.set_config_variable("region", get_settings().aws_region)
    return StrictAwsKmsMasterKeyProvider(key_ids=[resolve_key_arn(kms_key_id)], botocore_session=session)


class _QueueSource:
    """File-like source the SDK pulls from: exact-size reads, short only at the end."""

    def __init__(self, chunks: queue.Queue[bytes | None]) -> None:
        self._chunks = chunks
        self._pending = bytearray()
        self._ended = False

    def read(self, size: int = -1) -> bytes:
        while not self._ended and (size is None or size < 0 or len(self._pending) < size):
            chunk = self._chunks.get()
            if chunk is None:
                raise BackupError("client-side encryption aborted")
            if chunk is _END or chunk == b"":
                self._ended = True
                break
            self._pending += chunk
        if size is None or size < 0:
            out = bytes(self._pending)
            self._pending.clear()
        else:
            out = bytes(self._pending[:size])
            del self._pending[:size]
        return out

    def close(self) -> None:  # the SDK closes its source
        pass


class EncryptingWriter:
    """Context manager: plaintext pushed to `write` is encrypted and written to `sink`.

    On normal exit the message is finalized (footer written); on an exception
    the worker is stopped and the exception propagates (the caller aborts the
    sink's upload).
    """

    def __init__(self, sink: _Sink, kms_key_id: str | None) -> None:
        self.sink = sink
        self.kms_key_id = kms_key_id
        self.count: int | None = None
        self.counts: dict[str, int] = {}
        self.bytes_written = 0
        self._chunks: queue.Queue[bytes | None] = queue.Queue(maxsize=_QUEUE_DEPTH)
        self._error: BaseException | None = None
        self._thread: threading.Thread | None = None

    def __enter__(self) -> EncryptingWriter:
        provider = key_provider(self.kms_key_id)  # fail here, before any data moves
        self._thread = threading.Thread(target=self._run, args=(provider,), name="cse-encrypt", daemon=True)
        self._thread.start()
        return self

    def _run(self, provider: Any) -> None:
        from aws_encryption_sdk.identifiers import Algorithm

        try:
            with _sdk_client().stream(
                mode="e",
                source=_QueueSource(self._chunks),
                key_provider=provider,
                frame_length=FRAME_LENGTH,
                algorithm=Algorithm.AES_256_GCM_HKDF_SHA512_COMMIT_KEY,
                encryption_context={"lastgood": "backup"},
            ) as encryptor:
                while True:
                    out = encryptor.read(_READ_SIZE)
                    if not out:
                        break
                    self.sink.write(out)
        except BaseException as exc:
            self._error = exc
            # Unblock a producer waiting on a full queue.
            while True:
                try:
                    self._chunks.get_nowait()
                except queue.Empty:
                    break

    def _put(self, item: bytes | None) -> None:
        while True:
            self._raise_worker_error()
            try:
                self._chunks.put(item, timeout=0.5)
                return
            except queue.Full:
                continue

    def _raise_worker_error(self) -> None:
        if self._error is not None:
            raise BackupError(f"client-side encryption failed: {type(self._error).__name__}: {self._error}")

    def write(self, data: bytes) -> int:
        if data:
            self._put(bytes(data))
            self.bytes_written += len(data)
        return len(data)

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        assert self._thread is not None
        if exc_type is None:
            self._put(_END)
            self._thread.join()
            self._raise_worker_error()
            return
        self._error = self._error or BackupError("aborted")
        # Drain then signal: the worker wakes, fails its read and exits.
        while True:
            try:
                self._chunks.get_nowait()
            except queue.Empty:
                break
        with suppress(queue.Full):
            self._chunks.put_nowait(None)
        self._thread.join(timeout=30)


@contextmanager
def decrypting_reader(stream: Any, kms_key_id: str | None) -> Iterator[BinaryIO]:
    """A readable plaintext stream over an Encryption SDK message read from `stream`."""
    with _sdk_client().stream(mode="d", source=stream, key_provider=key_provider(kms_key_id)) as plain:
        yield plain


def encrypt_bytes(data: bytes, kms_key_id: str) -> bytes:
    """Encrypt a small payload in one call (tests and tools)."""
    out = bytearray()

    class _Buf:
        def write(self, chunk: bytes) -> int:
            out.extend(chunk)
            return len(chunk)

    with EncryptingWriter(_Buf(), kms_key_id) as writer:
        writer.write(data)
    return bytes(out)


def decrypt_bytes(data: bytes, kms_key_id: str) -> bytes:
    import io

    with decrypting_reader(io.BytesIO(data), kms_key_id) as plain:
        return bytes(plain.read())

"""S3 error classification and checksums: the one place that reads an S3 error code.

boto3 reports a failed request as `botocore.exceptions.ClientError` whose
`response["Error"]["Code"]` is the S3 code (`NoSuchKey`, `PreconditionFailed`,
…) or, for HEAD requests (no body), the bare HTTP status (`404`, `412`, `304`).
Callers ask the questions they mean instead of comparing strings::

    except ClientError as exc:
        if s3.is_not_found(exc): ...
        if s3.classify(exc) is S3Failure.PRECONDITION_FAILED: ...

Any exception with a dict `response` (ClientError, or a test double shaped like
one) is read; anything else has the code `""` and classifies as `OTHER`.
"""

from __future__ import annotations

import base64
import hashlib
import zlib
from enum import Enum

NOT_FOUND_CODES = frozenset({"NoSuchKey", "404", "NotFound"})
# 409 ConditionalRequestConflict: a concurrent conditional write to the same key won the race.
PRECONDITION_FAILED_CODES = frozenset({"PreconditionFailed", "412", "ConditionalRequestConflict", "409"})
NOT_MODIFIED_CODES = frozenset({"NotModified", "304"})
# What S3 answers for a delete that Object Lock (retention or legal hold) refuses.
OBJECT_LOCK_REFUSAL_CODES = frozenset({"AccessDenied", "ObjectLocked"})


class S3Failure(Enum):
    """What a failed S3 request means to its caller."""

    NOT_FOUND = "not-found"  # the key (or bucket) does not exist
    PRECONDITION_FAILED = "precondition-failed"  # IfMatch / IfNoneMatch did not hold
    NOT_MODIFIED = "not-modified"  # IfNoneMatch on a read: the copy held is current
    OTHER = "other"  # anything else (access denied, throttling, not an S3 error at all)


def error_code(exc: BaseException) -> str:
    """The S3 error code of a failed request (`NoSuchKey`, `412`, …); `""` when there is none."""
    response = getattr(exc, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


def classify(exc: BaseException) -> S3Failure:
    code = error_code(exc)
    if code in NOT_FOUND_CODES:
        return S3Failure.NOT_FOUND
    if code in PRECONDITION_FAILED_CODES:
        return S3Failure.PRECONDITION_FAILED
    if code in NOT_MODIFIED_CODES:
        return S3Failure.NOT_MODIFIED
    return S3Failure.OTHER


def is_not_found(exc: BaseException) -> bool:
    return classify(exc) is S3Failure.NOT_FOUND


def is_precondition_failed(exc: BaseException) -> bool:
    return classify(exc) is S3Failure.PRECONDITION_FAILED


def is_not_modified(exc: BaseException) -> bool:
    return classify(exc) is S3Failure.NOT_MODIFIED


def is_object_lock_refusal(code: str) -> bool:
    """A per-key `DeleteObjects` error code (or a delete's `error_code`) that Object Lock caused."""
    return code in OBJECT_LOCK_REFUSAL_CODES


def checksum_crc32(data: bytes) -> str:
    """The `ChecksumCRC32` value S3 expects: base64 of the big-endian CRC32."""
    return base64.b64encode(zlib.crc32(data).to_bytes(4, "big")).decode("ascii")


def checksum_sha256(data: bytes) -> str:
    """The `ChecksumSHA256` value S3 expects: base64 of the SHA-256 digest."""
    return base64.b64encode(hashlib.sha256(data).digest()).decode("ascii")

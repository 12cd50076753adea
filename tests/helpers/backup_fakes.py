"""An in-memory stand-in for the few S3 calls the backup store makes (unit tier only).

It keeps the semantics the store relies on: conditional puts (`IfNoneMatch="*"`
→ 412, `IfMatch` on a stale ETag → 412), multipart uploads that only become an
object on complete, aborts that drop their parts, and a paginator for
`list_objects_v2`. Integration tests use the devstack's moto server instead.
"""

from __future__ import annotations

import hashlib
import io
import itertools
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError


def _error(code: str, op: str) -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": code}}, op)


class _Body(io.BytesIO):
    pass


@dataclass
class FakeS3:
    objects: dict[str, bytes] = field(default_factory=dict)
    meta: dict[str, dict[str, Any]] = field(default_factory=dict)
    uploads: dict[str, dict[str, Any]] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)
    fail_part: int | None = None  # upload_part raises for this part number
    _ids: Any = field(default_factory=lambda: itertools.count(1))

    def _etag(self, key: str) -> str:
        return '"' + hashlib.md5(self.objects[key], usedforsecurity=False).hexdigest() + '"'

    def put_object(
        self,
        *,
        Bucket: str,
        Key: str,
        Body: bytes,
        IfNoneMatch: str | None = None,
        IfMatch: str | None = None,
        **kwargs: Any,
    ) -> dict[str, Any]:
        self.calls.append("put_object")
        if IfNoneMatch == "*" and Key in self.objects:
            raise _error("PreconditionFailed", "PutObject")
        if IfMatch is not None and (Key not in self.objects or self._etag(Key) != IfMatch):
            raise _error("PreconditionFailed" if Key in self.objects else "NoSuchKey", "PutObject")
        self.objects[Key] = bytes(Body)
        self.meta[Key] = kwargs
        return {"ETag": self._etag(Key)}

    def get_object(self, *, Bucket: str, Key: str, IfMatch: str | None = None) -> dict[str, Any]:
        if Key not in self.objects:
            raise _error("NoSuchKey", "GetObject")
        if IfMatch is not None and IfMatch != self._etag(Key):
            raise _error("PreconditionFailed", "GetObject")
        return {
            "Body": _Body(self.objects[Key]),
            "ETag": self._etag(Key),
            "ContentLength": len(self.objects[Key]),
        }

    def head_object(self, *, Bucket: str, Key: str) -> dict[str, Any]:
        if Key not in self.objects:
            raise _error("404", "HeadObject")
        return {"ContentLength": len(self.objects[Key]), "ETag": self._etag(Key)}

    def delete_object(self, *, Bucket: str, Key: str) -> dict[str, Any]:
        self.objects.pop(Key, None)
        return {}

    def delete_objects(self, *, Bucket: str, Delete: dict[str, Any]) -> dict[str, Any]:
        for item in Delete["Objects"]:
            self.objects.pop(item["Key"], None)
        return {}

    def create_multipart_upload(self, *, Bucket: str, Key: str, **kwargs: Any) -> dict[str, Any]:
        self.calls.append("create_multipart_upload")
        upload_id = f"up{next(self._ids)}"
        self.uploads[upload_id] = {"key": Key, "parts": {}, "args": kwargs}
        return {"UploadId": upload_id}

    def upload_part(
        self, *, Bucket: str, Key: str, UploadId: str, PartNumber: int, Body: bytes, ChecksumCRC32: str
    ) -> dict[str, Any]:
        self.calls.append(f"upload_part:{PartNumber}")
        if self.fail_part == PartNumber:
            raise _error("InternalError", "UploadPart")
        import base64
        import zlib

        # what S3 checks on arrival (the upload was created with ChecksumAlgorithm=CRC32)
        assert self.uploads[UploadId]["args"]["ChecksumAlgorithm"] == "CRC32"
        assert base64.b64decode(ChecksumCRC32) == zlib.crc32(Body).to_bytes(4, "big")
        self.uploads[UploadId]["parts"][PartNumber] = bytes(Body)
        return {"ETag": f'"{PartNumber}"', "ChecksumCRC32": ChecksumCRC32}

    def complete_multipart_upload(
        self,
        *,
        Bucket: str,
        Key: str,
        UploadId: str,
        MultipartUpload: dict[str, Any],
        IfNoneMatch: str | None = None,
    ) -> dict[str, Any]:
        self.calls.append("complete_multipart_upload")
        if IfNoneMatch == "*" and Key in self.objects:
            raise _error("PreconditionFailed", "CompleteMultipartUpload")
        upload = self.uploads.pop(UploadId)
        numbers = [p["PartNumber"] for p in MultipartUpload["Parts"]]
        assert numbers == sorted(numbers) == list(range(1, len(numbers) + 1))
        self.objects[Key] = b"".join(upload["parts"][n] for n in numbers)
        return {}

    def abort_multipart_upload(self, *, Bucket: str, Key: str, UploadId: str) -> dict[str, Any]:
        self.calls.append("abort_multipart_upload")
        self.uploads.pop(UploadId, None)
        return {}

    def get_paginator(self, name: str) -> Any:
        assert name == "list_objects_v2"
        fake = self

        class _Paginator:
            def paginate(self, *, Bucket: str, Prefix: str = "", Delimiter: str | None = None) -> Any:
                keys = sorted(k for k in fake.objects if k.startswith(Prefix))
                if Delimiter:
                    prefixes = sorted(
                        {
                            Prefix + k[len(Prefix) :].split(Delimiter)[0] + Delimiter
                            for k in keys
                            if Delimiter in k[len(Prefix) :]
                        }
                    )
                    yield {"CommonPrefixes": [{"Prefix": p} for p in prefixes]}
                    return
                yield {"Contents": [{"Key": k, "Size": len(fake.objects[k])} for k in keys]}

        return _Paginator()

"""DeleteObjects batching: ≤1000 keys per request, manifests first, per-key errors sorted out."""

from __future__ import annotations

from lastgood.backups.prune import delete_keys


class RecordingS3:
    def __init__(self, errors=None):
        self.calls = []
        self.errors = errors or {}

    def delete_objects(self, Bucket, Delete):
        keys = [o["Key"] for o in Delete["Objects"]]
        self.calls.append(keys)
        return {
            "Errors": [{"Key": k, "Code": c, "Message": "x"} for k, c in self.errors.items() if k in keys]
        }


def test_ten_thousand_keys_take_ten_requests_in_order():
    s3 = RecordingS3()
    keys = [f"backups/s/b{i // 1000}/manifest.json" for i in range(0, 10_000, 1000)] + [
        f"k{i}" for i in range(9_990)
    ]
    deleted, requests, locked, failed = delete_keys(s3, "bucket", keys)
    assert (deleted, requests, locked, failed) == (10_000, 10, [], {})
    assert all(len(batch) <= 1000 for batch in s3.calls)
    assert [k for batch in s3.calls for k in batch] == keys  # manifests go in the first request


def test_lock_refusals_are_skipped_and_other_errors_remain_as_failures():
    s3 = RecordingS3(errors={"a": "AccessDenied", "b": "InternalError"})
    deleted, requests, locked, failed = delete_keys(s3, "bucket", ["a", "b", "c"])
    assert deleted == 1 and requests == 1
    assert locked == ["a"]
    assert list(failed) == ["b"]

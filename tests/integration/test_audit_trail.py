"""Audit records in the devstack's backup bucket: append-only, listed per kind in time order."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import pytest
from botocore.exceptions import ClientError
from lastgood.core import aws
from lastgood.storage import audit

pytestmark = pytest.mark.devstack


def test_records_are_appended_under_their_kind_and_listed_in_time_order() -> None:
    # Given two restore records and a prune record written a second apart
    bucket = os.environ["BACKUP_BUCKET"]
    t0 = datetime(2031, 5, 4, 3, 2, 1, tzinfo=UTC)
    first = audit.append(bucket, {"kind": "restore", "source": "postgres", "result": "ok"}, now=t0)
    second = audit.append(
        bucket,
        {"operation": "restore", "source": "mongodb", "result": "failed"},
        now=t0 + timedelta(seconds=1),
    )
    audit.append(bucket, {"kind": "prune", "result": "ok", "removed": 3}, now=t0)
    # Then keys follow audit/<kind>/<YYYY>/<MM>/<DD>/ and listing one kind and day returns them in order
    assert first.startswith("audit/restore/2031/05/04/20310504T030201.000000Z-")
    records = audit.list_records(bucket, "restore", day=t0)
    assert [r["key"] for r in records] == [first, second]
    assert [r["source"] for r in records] == ["postgres", "mongodb"]
    assert records[1]["result"] == "failed" and records[1]["actor"].startswith("cli:")
    # And the object is encrypted with KMS
    head = aws.client("s3").head_object(Bucket=bucket, Key=first)
    assert head["ServerSideEncryption"] == "aws:kms"


def test_a_record_is_never_overwritten() -> None:
    bucket = os.environ["BACKUP_BUCKET"]
    key = audit.append(bucket, {"kind": "verify", "result": "ok"})
    with pytest.raises(ClientError):
        aws.client("s3").put_object(Bucket=bucket, Key=key, Body=b"{}", IfNoneMatch="*")


def test_record_helper_reports_failure_instead_of_raising(monkeypatch: pytest.MonkeyPatch) -> None:
    from lastgood.core.settings import reset_settings

    monkeypatch.setenv("BACKUP_BUCKET", "no-such-bucket-lastgood")
    reset_settings()
    assert audit.record("migrate", result="ok") is None
    monkeypatch.delenv("BACKUP_BUCKET")
    reset_settings()
    assert audit.record("migrate", result="ok") is None

"""The summary run stores the status page; `lastgood status --url` hands out a short-lived link to it."""

from __future__ import annotations

import os
import urllib.request
from urllib.parse import parse_qs, urlparse

import pytest
from lastgood.backups.keys import status_page_key
from lastgood.core import aws
from lastgood.core.settings import reset_settings
from lastgood.site.keys import status_page_key as site_status_page_key

from tests.helpers.events import load_event
from tests.helpers.kv_alerts import drain_queue, load_handler
from tests.helpers.restore import backup_now, run_cli

pytestmark = pytest.mark.devstack


def _head(bucket: str, key: str) -> dict | None:
    try:
        return aws.client("s3").head_object(Bucket=bucket, Key=key)
    except aws.client("s3").exceptions.ClientError:
        return None


def test_the_scheduled_summary_writes_the_page_to_the_backup_bucket_only(clean_aws, lambda_context):
    # Given a real backup
    clean_aws.seed()
    backup_id = backup_now("postgres")
    drain_queue(wait_s=0)
    # When the scheduled summary runs
    result = load_handler("summary")(load_event("summary-schedule.json"), lambda_context)
    # Then the page is stored at the status key, as HTML, SSE-KMS, showing that backup
    assert result["status_page"]["written"] is True and result["status_page"]["public_key"] is None
    head = _head(os.environ["BACKUP_BUCKET"], status_page_key())
    assert head is not None and head["ContentType"].startswith("text/html")
    assert head["ServerSideEncryption"] == "aws:kms"
    body = (
        aws.client("s3").get_object(Bucket=os.environ["BACKUP_BUCKET"], Key=status_page_key())["Body"].read()
    )
    assert f'data-backup="{backup_id}"'.encode() in body
    # and nothing reaches the site bucket (publishing it is an opt-in)
    assert _head(os.environ["SITE_BUCKET"], site_status_page_key()) is None
    drain_queue(wait_s=0)


def test_with_the_opt_in_the_summary_also_copies_the_page_to_the_site_bucket(
    clean_aws, lambda_context, monkeypatch
):
    monkeypatch.setenv("STATUS_PAGE_PUBLIC", "true")
    reset_settings()
    result = load_handler("summary")(load_event("summary-schedule.json"), lambda_context)
    assert result["status_page"]["public_key"] == site_status_page_key() == "live/status/index.html"
    head = _head(os.environ["SITE_BUCKET"], site_status_page_key())
    assert head is not None and head["ContentType"].startswith("text/html")
    drain_queue(wait_s=0)


def test_status_url_is_a_presigned_link_to_the_stored_page_valid_for_expires(clean_aws):
    # Given the page stored by `lastgood status --publish`
    published = run_cli("status", "--publish", "--out", os.devnull)
    assert published.code == 0, published.err
    # When a URL is asked for, valid five minutes
    result = run_cli("status", "--url", "--expires", "5m")
    assert result.code == 0, result.err
    url = result.out.strip()
    # Then it is a presigned GET of the status key that expires in 300 s and serves the page
    query = parse_qs(urlparse(url).query)
    assert urlparse(url).path.endswith("/" + status_page_key()) and query["X-Amz-Expires"] == ["300"]
    with urllib.request.urlopen(url, timeout=10) as response:
        assert b"<!DOCTYPE html>" in response.read()


def test_status_url_before_any_page_exists_is_a_clear_error(clean_aws):
    result = run_cli("status", "--url")
    assert result.code != 0 and "Traceback" not in result.err
    assert "does not exist yet" in result.err and "lastgood status --publish" in result.err


def test_status_refuses_a_url_lifetime_above_seven_days_and_an_unwritable_out(clean_aws, tmp_path):
    with pytest.raises(SystemExit) as usage:
        run_cli("status", "--url", "--expires", "8d")
    assert usage.value.code == 2
    result = run_cli("status", "--out", str(tmp_path / "missing-dir" / "status.html"))
    assert result.code != 0 and "cannot write" in result.err and "Traceback" not in result.err


def test_a_backup_bucket_that_cannot_be_read_is_shown_on_the_page_not_hidden(
    clean_aws, tmp_path, monkeypatch
):
    # Given a backup bucket that does not exist
    monkeypatch.setenv("BACKUP_BUCKET", "lastgood-no-such-bucket")
    reset_settings()
    # When the page is rendered
    out = tmp_path / "status.html"
    result = run_cli("status", "--out", str(out))
    # Then it is still written (a report), each source saying why its backups are unknown
    assert result.code == 0, result.err
    html = out.read_text()
    assert html.count("could not read backups") >= 3 and "S3 NoSuchBucket" in html
    assert 'data-health="attention"' in html

"""The daily summary Lambda with its Scheduler event: what it reports, and that it reaches SNS → SQS."""

from __future__ import annotations

import os
from datetime import UTC, datetime, timedelta

import pytest
from lastgood.backups.keys import manifest_key
from lastgood.backups.manifest import BackupManifest, ObjectEntry, new_backup_id
from lastgood.backups.store import BackupStore
from lastgood.cli import main
from lastgood.core import aws

from tests.helpers import verification
from tests.helpers.events import load_event
from tests.helpers.kv_alerts import drain_queue, load_handler

pytestmark = pytest.mark.devstack


def _commit_backup(source: str, finished: datetime, *, size: int, drill_seconds: float | None = None) -> str:
    store = BackupStore.from_settings()
    backup_id = new_backup_id(finished - timedelta(seconds=30))
    manifest = BackupManifest.build(
        backup_id=backup_id,
        source=source,
        engine=source,
        started_at=finished - timedelta(seconds=30),
        finished_at=finished,
        objects=[ObjectEntry(key="data.bin", bytes=size, sha256="0" * 64, count=10)],
    )
    store.put_json(manifest_key(source, backup_id), manifest.to_dict())
    if drill_seconds is not None:  # written by verify's own writer
        verification.write(
            store,
            verification.drill(
                source,
                backup_id,
                seconds=drill_seconds,
                rto=3600,
                checked_at=finished + timedelta(minutes=15),
            ),
        )
    return backup_id


def test_scheduled_summary_reports_backups_drills_data_and_fallbacks_and_is_published(
    clean_aws, lambda_context
) -> None:
    # Given a fresh postgres backup with a passed drill, a late mongodb backup, no upstash backup,
    # one published dataset and three fallbacks served in the last 24 h
    now = datetime.now(UTC)
    _commit_backup(
        "postgres",
        now - timedelta(minutes=20),
        size=3 * 1024 * 1024,
        drill_seconds=12.5,
    )
    _commit_backup("mongodb", now - timedelta(hours=5), size=2048)
    aws.client("s3").put_object(Bucket=os.environ["SITE_BUCKET"], Key="live/data/prompts.json", Body=b"[]")
    aws.client("cloudwatch").put_metric_data(
        Namespace="lastgood",
        MetricData=[
            {
                "MetricName": "FallbackUsed",
                "Dimensions": [{"Name": "dataset", "Value": "prompts"}],
                "Value": 3,
                "Unit": "Count",
                "Timestamp": now - timedelta(hours=1),
            }
        ],
    )
    drain_queue(wait_s=0)

    # When the scheduled summary runs
    result = load_handler("summary")(load_event("summary-schedule.json"), lambda_context)

    # Then the message shows each source, the drill, the data freshness and the fallback count
    message = result["message"]
    assert result["published"] is True and result["message_id"]
    assert "postgres   OK       last " in message and "3.0 MiB" in message
    assert "postgres   PASSED" in message and "recovery 12s" in message
    assert "mongodb    LATE" in message
    assert "upstash    MISSING" in message
    assert "prompts    FRESH" in message and "patterns   MISSING" in message
    assert "  total 3\n  dataset=prompts: 3" in message
    assert "mongodb: newest backup is 5h old, RPO is 1h" in result["issues"]
    # And the same message was published to the alert topic (seen in the devstack's queue)
    received = drain_queue()
    assert [m["message"] for m in received] == [message]


def test_summary_is_sent_even_when_everything_is_fine(clean_aws, lambda_context, monkeypatch) -> None:
    # Given a config with one source that is backed up and no datasets (seed 004: confirm anyway)
    config = {
        "datasets": [],
        "sources": [{"name": "postgres", "engine": "postgres", "url_secret": "DATABASE_URL", "rpo": "1h"}],
    }
    path = os.path.join(os.environ.get("TMPDIR", "/tmp"), f"lastgood-summary-{os.getpid()}.json")
    with open(path, "w", encoding="utf-8") as handle:
        import json

        json.dump(config, handle)
    monkeypatch.setenv("LASTGOOD_CONFIG", path)
    from lastgood.core.config import reset_config
    from lastgood.core.settings import reset_settings

    reset_settings()
    reset_config()
    _commit_backup("postgres", datetime.now(UTC) - timedelta(minutes=10), size=100)
    drain_queue(wait_s=0)
    result = load_handler("summary")(load_event("summary-schedule.json"), lambda_context)
    os.unlink(path)
    assert result["ok"] is True
    assert result["subject"].endswith(": OK")
    assert [m["message"] for m in drain_queue()] == [result["message"]]


def test_summary_command_prints_without_publishing_unless_asked(capsys) -> None:
    drain_queue(wait_s=0)
    assert main(["--no-env-file", "summary"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("Subject: [lastgood dev] Daily summary ")
    assert "Backups (newest complete backup per source)" in out
    assert drain_queue(wait_s=0) == []
    assert main(["--no-env-file", "summary", "--publish", "--json"]) == 0
    import json

    printed = json.loads(capsys.readouterr().out)
    assert printed["published"] is True
    assert [m["message"] for m in drain_queue()] == [printed["message"]]

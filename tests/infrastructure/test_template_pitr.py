"""The PITR capture schedule follows the config: on for `pitr = true` at its capture_interval, off otherwise."""

from __future__ import annotations

from lastgood.core.config import LastgoodConfig

from scripts import derive_template
from tests.helpers.template import props


def test_a_pitr_source_gets_an_enabled_capture_schedule_at_its_interval_and_others_a_disabled_one() -> None:
    config = LastgoodConfig.model_validate(
        {
            "sources": [
                {"name": "orders", "engine": "postgres", "url_secret": "ORDERS_URL", "pitr": True},
                {"name": "ledger", "engine": "postgres", "url_secret": "LEDGER_URL", "pitr": True,
                 "capture_interval": "1m"},
                {"name": "cache", "engine": "upstash", "url_secret": "U_URL", "token_secret": "U_TOKEN"},
            ]
        }
    )  # fmt: skip
    sources = derive_template.derive(config)["Source"]
    assert (
        sources["Orders"]["CaptureSchedule"] == "rate(5 minutes)"
        and sources["Orders"]["CaptureState"] == "ENABLED"
    )
    assert sources["Ledger"]["CaptureSchedule"] == "rate(1 minute)"
    assert sources["Cache"]["CaptureState"] == "DISABLED"


def test_the_capture_function_runs_alone_and_may_not_delete_backups() -> None:
    capture = props("CaptureFunction")
    assert capture["ReservedConcurrentExecutions"] == 1
    statements = capture["Policies"][0]["Statement"]
    deletes = [s for s in statements if "s3:DeleteObject" in s["Action"]]
    assert [d["Resource"] for d in deletes] == [{"Fn::Sub": "${BackupBucket.Arn}/locks/*"}]

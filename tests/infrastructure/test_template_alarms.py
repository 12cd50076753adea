"""Alarms in template.yaml: each one exists, reaches the alert topic, and reads a documented metric."""

from __future__ import annotations

import pytest
from lastgood.core.config import default_config_path, load_config_file

from tests.helpers.template import (
    ALARM_TYPE,
    SOURCES,
    functions,
    metric_names_documented,
    props,
    ref,
    resource,
    resources,
    sub_text,
    template,
    walk,
)

SOURCE_SUFFIX = {"postgres": "Postgres", "mongodb": "Mongodb", "upstash": "Upstash"}
# template.yaml is wired for the packaged demo config; RPO/RTO come from it (one definition).
DEMO = load_config_file(default_config_path())
PER_SOURCE_ALARMS = {
    "BackupFailureAlarm": "BackupFailure",
    "BackupLateAlarm": "BackupAgeSeconds",
    "BackupDurationHighAlarm": "BackupDurationRatio",
    "BackupSizeHighAlarm": "BackupSizeRatio",
    "BackupSuspectAlarm": "BackupSuspect",
    "RestoreTestFailureAlarm": "RestoreTestSuccess",
    "IntegrityCheckFailureAlarm": "IntegrityCheckSuccess",
    "RecoveryTimeOverRtoAlarm": "RecoveryTimeSeconds",
}
PRODUCT_ALARMS = {
    "RegenerateRejectedAlarm": "RegenerateRejected",
    "RegenerateFailedAlarm": "RegenerateFailed",
    "DatasetRepairedAlarm": "DatasetRepaired",
    "AllFallbacksFailedAlarm": "AllFallbacksFailed",
    "StorageBudgetAlarm": "BackupStorageBytes",
    "MongoConnectionsHighAlarm": "MongoConnectionsUsedRatio",
}


def alarm_metric_names(logical_id: str) -> set[str]:
    """Every metric an alarm reads: MetricName, MetricStat metrics, Metrics Insights queries."""
    alarm = props(logical_id)
    names = {alarm["MetricName"]} if "MetricName" in alarm else set()
    for node in walk(alarm.get("Metrics", [])):
        if isinstance(node, dict) and "MetricName" in node:
            names.add(node["MetricName"])
        if isinstance(node, dict) and isinstance(node.get("Expression"), str):
            expression = node["Expression"]
            if expression.upper().startswith("SELECT"):
                names.add(expression.split("(", 1)[1].split(")", 1)[0])
    return names


def per_source_ids() -> list[tuple[str, str, str]]:
    return [
        (f"{prefix}{SOURCE_SUFFIX[source]}", source, metric)
        for prefix, metric in PER_SOURCE_ALARMS.items()
        for source in SOURCES
    ]


@pytest.mark.parametrize("logical_id", sorted(resources(ALARM_TYPE)))
def test_every_alarm_notifies_the_alert_topic_on_alarm_and_recovery(logical_id: str) -> None:
    # Given any alarm / When it changes state / Then the alert topic hears about it both ways
    alarm = props(logical_id)
    assert [ref(a) for a in alarm["AlarmActions"]] == ["AlertTopic"]
    assert [ref(a) for a in alarm["OKActions"]] == ["AlertTopic"]
    assert "TreatMissingData" in alarm


def test_every_function_has_an_errors_alarm() -> None:
    # Given any function error / Then an alarm on AWS/Lambda Errors for that function fires
    watched = {
        ref(dimension["Value"])
        for alarm in resources(ALARM_TYPE).values()
        if alarm["Properties"].get("MetricName") == "Errors"
        for dimension in alarm["Properties"]["Dimensions"]
        if dimension["Name"] == "FunctionName"
    }
    assert watched == set(functions())


def test_notifier_errors_alarm_exists_only_with_the_notifier() -> None:
    # Given the conditional notifier / Then its alarm shares the condition (no dangling reference)
    assert resource("NotifierErrorsAlarm")["Condition"] == resource("NotifierFunction")["Condition"]


@pytest.mark.parametrize(("logical_id", "source", "metric"), per_source_ids())
def test_per_source_alarm_reads_the_sources_metric(logical_id: str, source: str, metric: str) -> None:
    # Given a source / Then its alarm reads `metric` with dimensions service=lastgood, source=<name>
    alarm = props(logical_id)
    assert alarm["Namespace"] == "lastgood"
    assert alarm["MetricName"] == metric
    assert {d["Name"]: d["Value"] for d in alarm["Dimensions"]} == {"service": "lastgood", "source": source}


@pytest.mark.parametrize("source", SOURCES)
def test_backup_late_is_a_dead_mans_switch_against_the_rpo(source: str) -> None:
    # Given no BackupAgeSeconds data (health not running, or no backup) / Then the alarm fires anyway
    alarm = props(f"BackupLateAlarm{SOURCE_SUFFIX[source]}")
    assert alarm["TreatMissingData"] == "breaching"
    assert float(alarm["Threshold"]) == DEMO.source(source).rpo_seconds
    assert alarm["ComparisonOperator"] == "GreaterThanThreshold"


@pytest.mark.parametrize("source", SOURCES)
def test_recovery_time_alarm_compares_with_the_rto(source: str) -> None:
    # Given a restore drill slower than the RTO / Then the alarm fires
    threshold = props(f"RecoveryTimeOverRtoAlarm{SOURCE_SUFFIX[source]}")["Threshold"]
    assert float(threshold) == DEMO.source(source).rto_seconds


@pytest.mark.parametrize("prefix", ["BackupDurationHighAlarm", "BackupSizeHighAlarm"])
def test_backup_growth_alarms_fire_above_120_percent_of_baseline(prefix: str) -> None:
    # Given a backup 20 % slower/larger than its baseline / Then the ratio alarm fires
    for source in SOURCES:
        alarm = props(f"{prefix}{SOURCE_SUFFIX[source]}")
        assert alarm["Threshold"] == pytest.approx(1.2)
        assert alarm["ComparisonOperator"] == "GreaterThanThreshold"


@pytest.mark.parametrize("source", SOURCES)
def test_a_suspect_backup_alarms_on_the_first_one(source: str) -> None:
    # Given one backup committed as suspect (BackupSuspect = 1; good backups emit 0)
    alarm = props(f"BackupSuspectAlarm{SOURCE_SUFFIX[source]}")
    # Then the alarm fires on that single datapoint, and a quiet hour (no backup) is not an alarm
    assert alarm["Statistic"] == "Maximum" and alarm["Threshold"] == 1
    assert alarm["ComparisonOperator"] == "GreaterThanOrEqualToThreshold"
    assert alarm["EvaluationPeriods"] == 1 and alarm["TreatMissingData"] == "notBreaching"
    assert "accept" in (sub_text(alarm["AlarmDescription"]) or "")


@pytest.mark.parametrize(("logical_id", "metric"), sorted(PRODUCT_ALARMS.items()))
def test_product_alarm_reads_its_metric(logical_id: str, metric: str) -> None:
    # Given the product-wide alarms / Then each reads its lastgood metric
    assert metric in alarm_metric_names(logical_id)


def test_storage_budget_alarm_fires_above_80_percent_of_the_budget_parameter() -> None:
    # Given storage over 80 % of StorageBudgetBytes / Then the alarm fires
    alarm = props("StorageBudgetAlarm")
    (result,) = [m for m in alarm["Metrics"] if m.get("ReturnData")]
    assert "${StorageBudgetBytes}" in result["Expression"]["Fn::Sub"]
    assert alarm["Threshold"] == 80


def test_mongo_connections_alarm_uses_the_percent_scale_health_emits() -> None:
    # Given MongoConnectionsUsedRatio emitted as Percent (0-100) / Then 80 means 80 %
    assert props("MongoConnectionsHighAlarm")["Threshold"] == 80


def test_every_lastgood_metric_an_alarm_reads_is_documented() -> None:
    # Given docs/metrics.md (the contract emitters follow) / Then every alarmed metric is listed there
    documented = metric_names_documented()
    alarmed = {
        name
        for logical_id, alarm in resources(ALARM_TYPE).items()
        if alarm["Properties"].get("Namespace", "lastgood") == "lastgood"
        for name in alarm_metric_names(logical_id)
    }
    assert alarmed, "no lastgood metric alarms found"
    assert alarmed <= documented, f"undocumented: {sorted(alarmed - documented)}"


def test_failure_queues_are_alarmed() -> None:
    # Given a failed async invocation or an undeliverable schedule / Then an alarm fires
    watched = {
        ref_or_att
        for alarm in resources(ALARM_TYPE).values()
        if alarm["Properties"].get("Namespace") == "AWS/SQS"
        for dimension in alarm["Properties"]["Dimensions"]
        for ref_or_att in [dimension["Value"]["Fn::GetAtt"][0]]
    }
    assert watched == {"FailedInvocationsQueue", "ScheduleDeadLetterQueue"}


def test_alert_topic_is_encrypted_and_mails_the_alert_email_when_given() -> None:
    # Given AlertEmail / Then an e-mail subscription exists; the topic is KMS-encrypted
    assert ref(props("AlertTopic")["KmsMasterKeyId"]) == "DataKey"
    subscription = resource("AlertEmailSubscription")
    assert subscription["Condition"] == "HasAlertEmail"
    assert subscription["Properties"]["Protocol"] == "email"
    assert ref(subscription["Properties"]["Endpoint"]) == "AlertEmail"
    assert template()["Conditions"]["HasAlertEmail"] == {
        "Fn::Not": [{"Fn::Equals": [{"Ref": "AlertEmail"}, ""]}]
    }

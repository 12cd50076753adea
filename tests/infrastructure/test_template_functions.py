"""Functions in template.yaml: runtime, logs, failure handling, schedules, API, layers."""

from __future__ import annotations

import json

import pytest

from bench import imports as bench_imports
from tests.helpers.template import (
    ROOT,
    SOURCES,
    events,
    function_setting,
    functions,
    getatt,
    globals_function,
    props,
    ref,
    resource,
    schedule_input,
    schedules,
    sub_text,
    target_function,
    template,
)

EXPECTED_FUNCTIONS = {
    "HealthFunction": "health",
    "RegenerateFunction": "regenerate",
    "BackupFunction": "backup",
    "PruneFunction": "prune",
    "VerifyFunction": "verify",
    "SummaryFunction": "summary",
    "NotifierFunction": "notifier",
    "CaptureFunction": "capture",
}
SCHEDULED = {
    "HealthFunction": {"HealthSchedule"},
    "RegenerateFunction": {"RegenerateSchedule"},
    "PruneFunction": {"PruneSchedule"},
    "SummaryFunction": {"SummarySchedule"},
}
# backup and verify run per declared source: AWS::Scheduler::Schedule resources in the
# per-source loop (tests/infrastructure/test_template_follows_config.py holds them to the config)
PER_SOURCE_SCHEDULED = {"BackupFunction", "VerifyFunction", "CaptureFunction"}
ALL_FUNCTIONS = pytest.mark.parametrize("logical_id", sorted(EXPECTED_FUNCTIONS))


def test_template_declares_one_function_per_job() -> None:
    # Given the template / When listing its functions / Then each job has exactly its function
    assert set(functions()) == set(EXPECTED_FUNCTIONS)


@ALL_FUNCTIONS
def test_function_runs_python313_with_the_shared_layer_and_tracing(logical_id: str) -> None:
    # Given a function / When SAM merges Globals / Then it runs Python 3.13 with X-Ray and the shared layer
    assert function_setting(logical_id, "Runtime") == "python3.13"
    assert function_setting(logical_id, "Tracing") == "Active"
    assert function_setting(logical_id, "Architectures") in (["x86_64"], ["arm64"])
    assert {"Ref": "SharedLayer"} in globals_function()["Layers"]
    assert "Runtime" not in props(logical_id), "the runtime is set once, in Globals"


@ALL_FUNCTIONS
def test_function_code_lives_in_functions_dir_with_lambda_handler(logical_id: str) -> None:
    # Given a function / Then its code is functions/<name>/ and its handler app.lambda_handler
    name = EXPECTED_FUNCTIONS[logical_id]
    assert props(logical_id)["CodeUri"] == f"functions/{name}/"
    assert props(logical_id)["Handler"] == "app.lambda_handler"


@ALL_FUNCTIONS
def test_function_logs_to_an_explicit_log_group_with_retention(logical_id: str) -> None:
    # Given a function / When it logs / Then it writes to a template-owned log group with retention
    name = EXPECTED_FUNCTIONS[logical_id]
    log_group_id = ref(props(logical_id)["LoggingConfig"]["LogGroup"])
    assert log_group_id is not None
    log_group = resource(log_group_id)
    assert log_group["Type"] == "AWS::Logs::LogGroup"
    assert ref(log_group["Properties"]["RetentionInDays"]) == "LogRetentionDays"
    # the name Lambda would use by default matches too, so nothing logs to an unmanaged group
    assert sub_text(log_group["Properties"]["LogGroupName"]) == f"/aws/lambda/${{AWS::StackName}}-{name}"
    assert sub_text(props(logical_id)["FunctionName"]) == f"${{AWS::StackName}}-{name}"
    assert log_group.get("Condition") == resource(logical_id).get("Condition")


@ALL_FUNCTIONS
def test_function_sends_failed_async_invocations_to_a_destination(logical_id: str) -> None:
    # Given an asynchronous invocation that keeps failing / Then it lands in the failure queue
    config = props(logical_id)["EventInvokeConfig"]
    on_failure = config["DestinationConfig"]["OnFailure"]
    assert on_failure["Type"] == "SQS"
    assert getatt(on_failure["Destination"]) == ("FailedInvocationsQueue", "Arn")
    assert 0 <= config["MaximumRetryAttempts"] <= 2


@pytest.mark.parametrize("logical_id", sorted(SCHEDULED))
def test_scheduled_functions_use_scheduler_with_parameterized_expressions(logical_id: str) -> None:
    # Given a scheduled job / Then it is an EventBridge Scheduler schedule whose expression is a parameter
    schedules = events(logical_id, "ScheduleV2")
    assert schedules, f"{logical_id} has no ScheduleV2 event"
    assert not events(logical_id, "Schedule"), "use ScheduleV2 (EventBridge Scheduler), not Schedule"
    expressions = {ref(e["Properties"]["ScheduleExpression"]) for e in schedules.values()}
    assert expressions == SCHEDULED[logical_id]
    for event in schedules.values():
        properties = event["Properties"]
        assert json.loads(properties["Input"]), "Input is the JSON object the handler receives"
        assert getatt(properties["DeadLetterConfig"]["Arn"]) == ("ScheduleDeadLetterQueue", "Arn")
        assert properties["RetryPolicy"]["MaximumRetryAttempts"] >= 1
        if logical_id == "RegenerateFunction":  # a replica-mode stack never reads the databases
            assert properties["State"] == {"Fn::If": ["IsReplica", "DISABLED", {"Ref": "SchedulesState"}]}
        else:
            assert ref(properties["State"]) == "SchedulesState"


@pytest.mark.parametrize("logical_id", sorted(schedules()))
def test_per_source_schedules_use_scheduler_with_a_dead_letter_queue_and_retries(logical_id: str) -> None:
    # Given a per-source schedule / Then it invokes backup or verify through the scheduler role,
    # with retries, the dead-letter queue and the shared on/off switch
    properties = schedules()[logical_id]
    target = properties["Target"]
    if logical_id.startswith("Fargate"):  # a runner = "fargate" source's: the state machine instead
        assert ref(target["Arn"]) == "FargateStateMachine"
        assert getatt(target["RoleArn"]) == ("FargateSchedulerRole", "Arn")
    else:
        assert target_function(properties) in PER_SOURCE_SCHEDULED
        assert getatt(target["RoleArn"]) == ("SchedulerRole", "Arn")
    assert getatt(target["DeadLetterConfig"]["Arn"]) == ("ScheduleDeadLetterQueue", "Arn")
    assert target["RetryPolicy"]["MaximumRetryAttempts"] >= 1
    assert properties["FlexibleTimeWindow"] == {"Mode": "OFF"}
    if target_function(properties) == "CaptureFunction":  # on only for pitr = true, and the switch
        assert properties["State"]["Fn::If"][0] == "SchedulesEnabled"
        assert set(schedule_input(properties)) == {"source"}
    else:
        assert ref(properties["State"]) == "SchedulesState"
        assert schedule_input(properties)["slot"] == "<aws.scheduler.scheduled-time>"
    if target_function(properties):
        assert not events(target_function(properties) or "", "ScheduleV2"), "one mechanism per function"


def test_scheduler_role_may_invoke_only_backup_verify_and_capture() -> None:
    # Given the role the per-source schedules assume / Then it invokes exactly those three functions
    statements = props("SchedulerRole")["Policies"][0]["PolicyDocument"]["Statement"]
    (invoke,) = [s for s in statements if s["Action"] == "lambda:InvokeFunction"]
    assert {getatt(r) for r in invoke["Resource"]} == {
        ("BackupFunction", "Arn"),
        ("VerifyFunction", "Arn"),
        ("CaptureFunction", "Arn"),
    }
    trust = props("SchedulerRole")["AssumeRolePolicyDocument"]["Statement"][0]
    assert trust["Principal"] == {"Service": "scheduler.amazonaws.com"}


def test_schedule_parameters_have_the_documented_defaults() -> None:
    # Given the schedule parameters / Then their defaults are the product's cadence
    # (each source's backup schedule is its config `schedule`, not a parameter)
    from tests.helpers.template import template

    parameters = template()["Parameters"]
    assert parameters["RegenerateSchedule"]["Default"] == "rate(1 hour)"
    assert parameters["PruneSchedule"]["Default"] == "rate(1 day)"
    assert parameters["VerifySchedule"]["Default"] == "rate(7 days)"
    assert parameters["HealthSchedule"]["Default"] == "rate(5 minutes)"
    assert parameters["SummarySchedule"]["Default"].startswith("cron(")


def per_source_inputs(function: str) -> list[dict[str, object]]:
    return [schedule_input(p) for p in schedules().values() if target_function(p) == function]


def test_backup_has_one_schedule_per_source_carrying_the_slot() -> None:
    # Given the backup schedules / Then each names one source and the slot the Scheduler fills in
    inputs = per_source_inputs("BackupFunction")
    assert sorted(str(i["source"]) for i in inputs) == sorted(SOURCES)
    assert all(i["slot"] == "<aws.scheduler.scheduled-time>" for i in inputs)


def test_backup_cadence_is_the_configs_schedule() -> None:
    # Given the demo config / Then each backup schedule's expression is the source's `schedule`
    # (the same value the backup function derives its slot length from: one definition)
    from lastgood.core.config import default_config_path, load_config_file

    config = load_config_file(default_config_path())
    cadence = {
        str(schedule_input(p)["source"]): p["ScheduleExpression"]
        for p in schedules().values()
        if target_function(p) == "BackupFunction"
    }
    assert cadence == {s.name: s.schedule for s in config.sources}


def test_verify_has_one_weekly_drill_per_source() -> None:
    # Given the verify schedules / Then every source gets a drill of its latest backup
    inputs = per_source_inputs("VerifyFunction")
    assert sorted(str(i["source"]) for i in inputs) == sorted(SOURCES)
    assert all(i["latest"] is True for i in inputs)
    assert {ref(p["ScheduleExpression"]) for p in schedules().values() if "latest" in schedule_input(p)} == {
        "VerifySchedule"
    }


def test_schedule_inputs_match_the_sample_events() -> None:
    # Given the sample events tests and `lastgood invoke` use / Then they have the template's Input shape
    for source in SOURCES:
        sample_path = ROOT / "events" / f"backup-{source}-schedule.json"
        if sample_path.is_file():
            assert json.loads(sample_path.read_text())["source"] == source
    summary_input = json.loads(events("SummaryFunction", "ScheduleV2")["Scheduled"]["Properties"]["Input"])
    sample = ROOT / "events" / "summary-schedule.json"
    if sample.is_file():
        assert set(json.loads(sample.read_text())) >= set(summary_input)


def test_backup_runs_alone_with_room_for_long_dumps() -> None:
    # Given the backup function / Then one run at a time (reserved concurrency 1) for up to 15 minutes
    assert props("BackupFunction")["ReservedConcurrentExecutions"] == 1
    assert props("BackupFunction")["Timeout"] == 900
    assert props("VerifyFunction")["Timeout"] == 900
    assert props("VerifyFunction")["EphemeralStorage"]["Size"] >= 1024


def test_only_backup_verify_and_capture_carry_the_pg_tools_layer() -> None:
    # Given the functions / Then pg_dump/pg_restore ship only where they are used
    with_pg_tools = {
        logical_id
        for logical_id in functions()
        if {"Ref": "PgToolsLayer"} in props(logical_id).get("Layers", [])
    }
    assert with_pg_tools == {"BackupFunction", "VerifyFunction", "CaptureFunction"}  # capture: a new base


def test_health_serves_both_routes_on_an_http_api_and_runs_every_five_minutes() -> None:
    # Given the health function / Then GET /health and GET /health/details on the HTTP API, plus a schedule
    api_events = events("HealthFunction", "HttpApi").values()
    routes = {(e["Properties"]["Method"], e["Properties"]["Path"]) for e in api_events}
    assert routes == {("GET", "/health"), ("GET", "/health/details")}
    assert {ref(e["Properties"]["ApiId"]) for e in api_events} == {"HealthApi"}
    assert resource("HealthApi")["Type"] == "AWS::Serverless::HttpApi"
    assert json.loads(events("HealthFunction", "ScheduleV2")["Scheduled"]["Properties"]["Input"])["scheduled"]


def test_health_api_is_throttled_and_access_logged() -> None:
    # Given the public endpoint / Then it has throttling and access logs with retention
    api = props("HealthApi")
    assert api["DefaultRouteSettings"]["ThrottlingRateLimit"] > 0
    log_group_id, _ = getatt(api["AccessLogSettings"]["DestinationArn"]) or ("", "")
    assert ref(props(log_group_id)["RetentionInDays"]) == "LogRetentionDays"


def test_health_answers_within_a_deadline_below_its_timeout_with_reserved_concurrency() -> None:
    # Given the health function and its parameters (issue 14, cases 4 and 5)
    from lastgood.core.settings import Settings

    parameters = template()["Parameters"]
    variables = props("HealthFunction")["Environment"]["Variables"]
    deadline = parameters[ref(variables["HEALTH_DEADLINE_S"]) or ""]
    timeout = int(function_setting("HealthFunction", "Timeout"))
    # Then the deadline every health path keeps is a parameter whose largest allowed value
    # (and the settings' default) leaves the function time to answer and flush its metrics
    assert int(deadline["Default"]) == Settings.model_fields["health_deadline_s"].default == 10
    assert timeout >= int(deadline["MaxValue"]) + 5 > int(deadline["Default"])
    # And the public /health cache interval and reserved concurrency are parameters with defaults
    cache = parameters[ref(variables["HEALTH_CACHE_S"]) or ""]
    assert int(cache["Default"]) == Settings.model_fields["health_cache_s"].default == 15
    concurrency = props("HealthFunction")["ReservedConcurrentExecutions"]
    assert int(parameters[ref(concurrency) or ""]["Default"]) == 2
    # And the HTTP API route throttling stays
    assert props("HealthApi")["DefaultRouteSettings"]["ThrottlingBurstLimit"] > 0


def test_only_regenerate_knows_the_distribution() -> None:
    # Given the CloudFront distribution / Then only regenerate gets its id (no dependency cycle)
    holders = {
        logical_id
        for logical_id in functions()
        if "DISTRIBUTION_ID" in props(logical_id).get("Environment", {}).get("Variables", {})
    }
    assert holders == {"RegenerateFunction"}
    assert "DISTRIBUTION_ID" not in globals_function()["Environment"]["Variables"]


def test_globals_set_powertools_and_the_shared_environment() -> None:
    # Given Globals / Then every function gets the Powertools settings and the resource names
    variables = globals_function()["Environment"]["Variables"]
    assert variables["POWERTOOLS_SERVICE_NAME"] == "lastgood"
    assert variables["POWERTOOLS_METRICS_NAMESPACE"] == "lastgood"
    assert ref(variables["POWERTOOLS_LOG_LEVEL"]) == "LogLevel"
    for name in (
        "MONGODB_DB_NAME",
        "BACKUP_BUCKET",
        "SITE_BUCKET",
        "KMS_KEY_ID",
        "ALERT_TOPIC_ARN",
        "ADMIN_KEY_SECRET_ARN",
        "LASTGOOD_CONFIG",
        "LASTGOOD_SECRETS_PREFIX",
    ):
        assert name in variables, name
    # lastgood uses no pydantic plugin: no entry-point scan at cold start; the bench's cold-import
    # rows import the handlers with the same value
    assert variables["PYDANTIC_DISABLE_PLUGINS"] == "__all__"
    assert {"PYDANTIC_DISABLE_PLUGINS": variables["PYDANTIC_DISABLE_PLUGINS"]} == bench_imports.FUNCTION_ENV
    # no variable names a source: their secrets are found by the declared-source convention
    assert not [n for n in variables if n.startswith(("MONGODB_URI", "DATABASE_URL", "UPSTASH", "SCRATCH"))]
    assert variables["LASTGOOD_SECRETS_PREFIX"] == {"Fn::Sub": "${AWS::StackName}/"}


def test_notifier_exists_only_with_a_slack_secret_and_listens_to_the_alert_topic() -> None:
    # Given no Slack secret / Then no notifier; given one / Then it is subscribed to the alert topic
    assert resource("NotifierFunction")["Condition"] == "HasSlack"
    sns_events = events("NotifierFunction", "SNS").values()
    assert [ref(e["Properties"]["Topic"]) for e in sns_events] == ["AlertTopic"]
    variables = props("NotifierFunction")["Environment"]["Variables"]
    assert ref(variables["SLACK_WEBHOOK_URL_SECRET_ARN"]) == "SlackWebhookSecretArn"

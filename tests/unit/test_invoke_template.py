"""The local invoker reads template.yaml like SAM does and fails clearly on bad names."""

from __future__ import annotations

from pathlib import Path

import pytest
from lastgood.cli.invoker import expand_placeholders, functions, invoke, load_template
from lastgood.core.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]


def test_every_function_in_the_template_maps_to_a_handler_file():
    specs = functions(load_template(ROOT / "template.yaml"), ROOT / "template.yaml")
    assert {"health", "backup", "verify"} <= set(specs)
    for spec in specs.values():
        assert (spec.code_dir / "app.py").is_file(), spec.name
        assert spec.handler == "app.lambda_handler"
        assert spec.environment.get("POWERTOOLS_METRICS_NAMESPACE") == "lastgood"


def test_an_unknown_function_lists_the_valid_names():
    with pytest.raises(ConfigError) as err:
        invoke("nope", ROOT / "events" / "health-api.json", template_path=ROOT / "template.yaml")
    assert "unknown function 'nope'" in str(err.value)
    assert "health" in str(err.value) and "backup" in str(err.value)


def test_a_missing_event_file_lists_the_available_events(tmp_path):
    with pytest.raises(ConfigError) as err:
        invoke("health", tmp_path / "missing.json", template_path=ROOT / "template.yaml")
    assert "health-api.json" in str(err.value)


def test_placeholders_in_events_expand_from_the_environment():
    event = {"headers": {"x-admin-key": "${ADMIN_KEY}", "other": "${NOT_SET_ANYWHERE}"}}
    out = expand_placeholders(event, {"ADMIN_KEY": "k"})
    assert out == {"headers": {"x-admin-key": "k", "other": "${NOT_SET_ANYWHERE}"}}


def test_process_environment_overrides_template_values(tmp_path, monkeypatch):
    # Given a template whose function sets STAGE=from-template, and STAGE=from-env in the process
    (tmp_path / "functions" / "echo").mkdir(parents=True)
    (tmp_path / "functions" / "echo" / "app.py").write_text(
        "import os\ndef lambda_handler(event, context):\n"
        "    return {'stage': os.environ['STAGE'], 'only': os.environ['ONLY_IN_TEMPLATE'], 'event': event}\n"
    )
    (tmp_path / "events").mkdir()
    (tmp_path / "events" / "e.json").write_text('{"a": 1}')
    (tmp_path / "template.yaml").write_text(
        "Parameters:\n  P:\n    Type: String\n    Default: from-param\n"
        "Resources:\n  EchoFunction:\n    Type: AWS::Serverless::Function\n    Properties:\n"
        "      CodeUri: functions/echo/\n      Handler: app.lambda_handler\n"
        "      Environment:\n        Variables:\n          STAGE: from-template\n          ONLY_IN_TEMPLATE: !Ref P\n"
    )
    monkeypatch.setenv("STAGE", "from-env")
    monkeypatch.delenv("ONLY_IN_TEMPLATE", raising=False)
    # When invoked
    out = invoke("echo", tmp_path / "events" / "e.json", template_path=tmp_path / "template.yaml")
    # Then the process environment won, and !Ref resolved to the parameter default
    assert out == {"stage": "from-env", "only": "from-param", "event": {"a": 1}}

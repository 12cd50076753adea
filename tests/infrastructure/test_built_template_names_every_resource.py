"""The template `make build` writes has its per-source loops expanded, as CloudFormation would.

`sam build` expands `Fn::ForEach` with its own code before CloudFormation sees the template,
and SAM CLI 1.170 stopped with "unhashable type: 'dict'" on a conditional resource in a loop
(`Condition: !Sub "OnFargate${SourceId}"`, the form AWS documents). `make build` therefore
expands the loops over SourceId itself (`derive_template.expand_source_loops`). These tests
build a team's own config (one source on Fargate, one on Lambda) and hold the expansion to
the reference one the other infrastructure tests read templates with
(`tests.helpers.template`), so both cannot drift apart; cfn-lint checks the built template in
test_fargate_runner, and `.ci/run` runs `make build` (the real `sam validate --lint` and
`sam build`).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from lastgood.core.errors import ConfigError

from scripts import derive_template
from tests.helpers.template import ROOT, expand

FARGATE_CONFIG = ROOT / "tests/fixtures/config/one-fargate-one-lambda.toml"
SECTIONS = ("Conditions", "Resources", "Outputs")


def _collapse_plain_subs(resources: dict[str, Any]) -> dict[str, Any]:
    """The reference expansion leaves `Condition: {"Fn::Sub": "OnFargateWarehouse"}`; CloudFormation
    reads it as the name `OnFargateWarehouse`, which is what the built template writes."""
    out = {}
    for logical_id, resource in resources.items():
        condition = resource.get("Condition")
        if (
            isinstance(condition, dict)
            and list(condition) == ["Fn::Sub"]
            and isinstance(condition["Fn::Sub"], str)
        ):
            resource = {**resource, "Condition": condition["Fn::Sub"]}
        out[logical_id] = resource
    return out


def test_the_built_template_has_no_source_loop_and_every_condition_is_a_declared_name(tmp_path: Path) -> None:
    # Given a team's config with one source on Fargate and one on Lambda, built as `make build` does
    out = tmp_path / "build" / "template.json"
    derive_template.build(FARGATE_CONFIG, out)
    built = json.loads(out.read_text(encoding="utf-8"))
    _, values = derive_template.built_template(FARGATE_CONFIG)
    # Then no section holds a loop over the sources any more
    for section in SECTIONS:
        assert not [k for k in built.get(section, {}) if k.startswith("Fn::ForEach::")], section
    # And every resource's condition is a plain name the template declares (what SAM CLI reads)
    conditions = {
        logical_id: resource["Condition"]
        for logical_id, resource in built["Resources"].items()
        if "Condition" in resource
    }
    assert conditions and all(isinstance(c, str) and c in built["Conditions"] for c in conditions.values())
    # And each declared source has its own runner conditions and schedules, named after it
    for source_id in values["ids"]:
        assert {f"OnFargate{source_id}", f"OnLambda{source_id}"} <= set(built["Conditions"])
        assert conditions[f"FargateBackupSchedule{source_id}"] == f"OnFargate{source_id}"
        assert conditions[f"BackupSchedule{source_id}"] == f"OnLambda{source_id}"


def test_the_expansion_is_the_reference_one_for_every_section(tmp_path: Path) -> None:
    # Given the same config built with and without the loops expanded
    expanded, _ = derive_template.built_template(FARGATE_CONFIG)
    looped, _ = derive_template.built_template(FARGATE_CONFIG, expand_loops=False)
    assert [k for k in looped["Resources"] if k.startswith("Fn::ForEach::")], "the loops exist before"
    # When both are read as CloudFormation applies AWS::LanguageExtensions (the reference expansion)
    mine, reference = expand(expanded), expand(looped)
    # Then they are the same template, section by section
    reference["Resources"] = _collapse_plain_subs(reference["Resources"])
    for section in SECTIONS:
        assert mine.get(section) == reference.get(section), section
    assert {k: v for k, v in mine.items() if k not in SECTIONS} == {
        k: v for k, v in reference.items() if k not in SECTIONS
    }


def _one_loop(fragment: dict[str, Any], ids: list[str]) -> dict[str, Any]:
    template: dict[str, Any] = {"Resources": {"Fn::ForEach::PerSource": ["SourceId", ids, fragment]}}
    assert derive_template.expand_source_loops(template) == 1
    return template["Resources"]


def test_an_iteration_substitutes_where_cloudformation_does_and_nowhere_else() -> None:
    resources = _one_loop(
        {
            "Thing&{SourceId}": {
                "Type": "AWS::SNS::Topic",
                "Condition": {"Fn::Sub": "On${SourceId}"},
                "Properties": {
                    "TopicName": {"Fn::Sub": "lastgood-${SourceId}-${AWS::Region}"},
                    "Literal": {"Fn::Sub": "${!SourceId}"},
                    "Plain": "left as ${SourceId}",
                    "Named": {"Ref": "SourceId"},
                    "Pick": {"Fn::If": ["Has${SourceId}", {"Fn::Sub": "${SourceId}"}, "no"]},
                    "Long": {"Fn::Sub": ["${SourceId}-${X}", {"X": {"Ref": "SourceId"}}]},
                },
            }
        },
        ["app-db"],
    )
    thing = resources["Thingappdb"]  # &{id}: the value without its non-alphanumerics
    properties = thing["Properties"]
    assert thing["Condition"] == "Onapp-db"  # a Sub with nothing left to substitute is its string
    assert properties["TopicName"] == {"Fn::Sub": "lastgood-app-db-${AWS::Region}"}
    assert properties["Literal"] == {"Fn::Sub": "${!SourceId}"}  # an escaped literal stays a Sub
    assert properties["Plain"] == "left as ${SourceId}"
    assert properties["Named"] == "app-db"
    assert properties["Pick"] == {
        "Fn::If": ["Has${SourceId}", "app-db", "no"]
    }  # its condition name as written
    assert properties["Long"] == {"Fn::Sub": ["app-db-${X}", {"X": "app-db"}]}


def test_a_loop_whose_expansion_repeats_a_logical_id_is_refused() -> None:
    template: dict[str, Any] = {
        "Resources": {
            "TopicA": {"Type": "AWS::SNS::Topic"},
            "Fn::ForEach::PerSource": ["SourceId", ["A"], {"Topic${SourceId}": {"Type": "AWS::SNS::Topic"}}],
        }
    }
    with pytest.raises(ConfigError, match="TopicA is declared twice"):
        derive_template.expand_source_loops(template)

"""The deployment follows the declared sources: whatever is wired per source matches the config.

`make build` derives build/template.json from the config (scripts/derive_template.py); these
tests derive it the same way for a team's own config (two PostgreSQL databases and one
MongoDB, no Upstash) and for the packaged demo config, expand its Fn::ForEach loops as
CloudFormation does, and compare every per-source resource with the declared sources.
"""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from lastgood.core.config import LastgoodConfig, default_config_path, load_config_file
from lastgood.core.errors import ConfigError

from scripts import derive_template
from tests.helpers.template import (
    ALARM_TYPE,
    ROOT,
    expand,
    load,
    raw_template,
    schedule_input,
    schedules,
    target_function,
    walk,
)

OWN_CONFIG = ROOT / "tests/fixtures/config/two-postgres-one-mongo.json"
PER_SOURCE_ALARM_PREFIXES = (
    "BackupFailureAlarm",
    "BackupLateAlarm",
    "BackupDurationHighAlarm",
    "BackupSizeHighAlarm",
    "BackupSuspectAlarm",
    "RestoreTestFailureAlarm",
    "IntegrityCheckFailureAlarm",
    "RecoveryTimeOverRtoAlarm",
)
SOURCE_PARAMETER = re.compile(r"(Postgres|Mongo|Upstash|Database|Redis|Scratch).*", re.I)


def derived(config_file: Path, tmp_path: Path) -> tuple[LastgoodConfig, dict[str, Any], Path]:
    """(config, expanded built template, built file) exactly as `make build` writes it."""
    out = tmp_path / "build" / "template.json"
    derive_template.build(config_file, out)
    return load_config_file(config_file), expand(load(out)), out


def alarm_sources(template: dict[str, Any]) -> dict[str, set[str]]:
    """Alarm prefix → the `source` dimension of every alarm with that prefix."""
    found: dict[str, set[str]] = {prefix: set() for prefix in PER_SOURCE_ALARM_PREFIXES}
    for logical_id, resource in template["Resources"].items():
        if resource["Type"] != ALARM_TYPE:
            continue
        dimensions = {d["Name"]: d["Value"] for d in resource["Properties"].get("Dimensions", [])}
        for prefix in PER_SOURCE_ALARM_PREFIXES:
            if logical_id.startswith(prefix):
                found[prefix].add(dimensions["source"])
    return found


def wiring(template: dict[str, Any]) -> dict[str, Any]:
    """What the deployment does per source: backup schedules, drills, alarms."""
    backups: dict[str, str] = {}
    drills: set[str] = set()
    for properties in schedules(template).values():
        body = schedule_input(properties)
        if target_function(properties) == "BackupFunction":
            backups[body["source"]] = properties["ScheduleExpression"]
        elif target_function(properties) == "VerifyFunction":
            assert body["latest"] is True
            drills.add(body["source"])
    return {"backups": backups, "drills": drills, "alarms": alarm_sources(template)}


def lint(path: Path) -> str:
    result = subprocess.run(
        [str(ROOT / ".venv/bin/cfn-lint"), str(path)], capture_output=True, text=True, check=False
    )
    return result.stdout + result.stderr if result.returncode else ""


def test_case_3_own_config_wires_exactly_its_three_sources_and_nothing_for_upstash(tmp_path: Path) -> None:
    # Given a team's config: two PostgreSQL databases and one MongoDB, no Upstash
    config, template, built = derived(OWN_CONFIG, tmp_path)
    declared = {s.name for s in config.sources}
    assert declared == {"app-db", "analytics_db", "docs"}
    # When make build derives the template / Then every declared source gets its backup schedule
    # (the config's own expression: one definition), its drill and each of its alarms — no others
    wired = wiring(template)
    assert wired["backups"] == {s.name: s.schedule for s in config.sources}
    assert wired["drills"] == declared
    for prefix, sources in wired["alarms"].items():
        assert sources == declared, prefix
    # And nothing anywhere mentions Upstash (beyond the product's one-line description)
    text = json.dumps({k: v for k, v in template.items() if k != "Description"}).lower()
    assert "upstash" not in text
    assert not [name for name in template["Parameters"] if "upstash" in name.lower()]
    # And the built template is cfn-lint clean
    assert lint(built) == ""


def test_alarm_thresholds_are_the_configs_rpo_and_rto(tmp_path: Path) -> None:
    # Given sources with different categories and an explicit rto
    config, template, _ = derived(OWN_CONFIG, tmp_path)
    resources = template["Resources"]
    for source in config.sources:
        suffix = derive_template.source_id(source.name)
        late = resources[f"BackupLateAlarm{suffix}"]["Properties"]
        slow = resources[f"RecoveryTimeOverRtoAlarm{suffix}"]["Properties"]
        # Then the backup-late alarm fires past the config's RPO, the drill alarm past its RTO
        assert float(late["Threshold"]) == source.rpo_seconds
        assert late["TreatMissingData"] == "breaching"
        assert float(slow["Threshold"]) == source.rto_seconds
    assert float(resources["BackupLateAlarmAppDb"]["Properties"]["Threshold"]) == 300  # critical: 5 m
    assert float(resources["RecoveryTimeOverRtoAlarmAnalyticsDb"]["Properties"]["Threshold"]) == 6 * 3600


def test_no_parameter_names_a_source_and_none_carries_a_schedule_or_rpo() -> None:
    # Given template.yaml / Then nothing per source is a parameter: RPO and schedules live in the config
    parameters = raw_template()["Parameters"]
    assert not [n for n in parameters if SOURCE_PARAMETER.fullmatch(n) and n != "MongoDbName"]
    assert not [n for n in parameters if n.endswith(("RpoSeconds", "RtoSeconds"))]
    assert not [n for n in parameters if n.startswith("Backup") and n.endswith("Schedule")]
    # And the only required parameters (no default) are none at all: a fresh deploy asks nothing per source
    assert [n for n, p in parameters.items() if "Default" not in p] == []


def test_case_6_demo_config_wiring_matches_its_sources_and_template_yaml_holds_its_derivation(
    tmp_path: Path,
) -> None:
    # Given the packaged demo config
    config, template, built = derived(default_config_path(), tmp_path)
    declared = {s.name for s in config.sources}
    # Then the built template wires exactly its sources
    wired = wiring(template)
    assert wired["backups"] == {s.name: s.schedule for s in config.sources}
    assert wired["drills"] == declared
    assert all(sources == declared for sources in wired["alarms"].values())
    # And template.yaml's own mapping and loop are that derivation (the file lints a real deployment)
    values = derive_template.derive(config)
    raw = raw_template()
    assert raw["Mappings"]["Source"] == values["Source"]
    assert raw["Mappings"]["Deployment"] == values["Deployment"]
    loops = [v for k, v in raw["Resources"].items() if k.startswith("Fn::ForEach::")]
    assert loops and all(loop[0] == "SourceId" and loop[1] == values["ids"] for loop in loops)
    assert lint(built) == ""


def test_a_removed_source_leaves_nothing_behind(tmp_path: Path) -> None:
    # Given the team's config without its analytics database
    raw = json.loads(OWN_CONFIG.read_text(encoding="utf-8"))
    raw["sources"] = [s for s in raw["sources"] if s["name"] != "analytics_db"]
    smaller = tmp_path / "smaller.json"
    smaller.write_text(json.dumps(raw), encoding="utf-8")
    _, template, _ = derived(smaller, tmp_path)
    # Then no resource, schedule input or alarm dimension names it any more
    assert "analytics" not in json.dumps(template).lower()
    assert wiring(template)["drills"] == {"app-db", "docs"}


def test_storage_budget_and_health_cover_every_declared_source_without_listing_them(
    tmp_path: Path,
) -> None:
    # Given the team's config / Then the budget alarm reads prune's total over the declared sources
    _, template, _ = derived(OWN_CONFIG, tmp_path)
    budget = template["Resources"]["StorageBudgetAlarm"]["Properties"]
    (stat,) = [m["MetricStat"]["Metric"] for m in budget["Metrics"] if "MetricStat" in m]
    assert stat["MetricName"] == "BackupStorageBytes"
    assert stat["Dimensions"] == [{"Name": "service", "Value": "lastgood"}]
    # And health / backup read every declared source's secrets by the stack's prefix, verify only drills'
    policies = json.dumps(template["Resources"]["HealthFunction"]["Properties"]["Policies"])
    assert "/*/url-??????" in policies and "/*/token-??????" in policies
    verify = json.dumps(template["Resources"]["VerifyFunction"]["Properties"]["Policies"])
    assert "/*/scratch-url-??????" in verify and "/*/url-??????" not in verify
    # And regenerate reads only the secret the datasets come from (the source naming MONGODB_URI)
    regenerate = [
        node
        for node in walk(template["Resources"]["RegenerateFunction"]["Properties"]["Policies"])
        if isinstance(node, dict) and node.get("Sid") == "ReadTheDatasetsSourceSecret"
    ]
    assert regenerate and regenerate[0]["Resource"]["Fn::Sub"][1] == {"Id": "docs/url"}


def test_the_shipped_config_is_what_the_functions_load(tmp_path: Path) -> None:
    # Given the build / Then LASTGOOD_CONFIG points at the copy the staged layer ships
    _, template, _ = derived(OWN_CONFIG, tmp_path)
    variables = template["Globals"]["Function"]["Environment"]["Variables"]
    assert variables["LASTGOOD_CONFIG"] == f"/opt/lastgood/{OWN_CONFIG.name}"
    assert template["Resources"]["SharedLayer"]["Properties"]["ContentUri"] == "layer/shared/"
    assert template["Resources"]["HealthFunction"]["Properties"]["CodeUri"] == "../functions/health/"


def stage(tmp_path: Path, config: Path) -> Path:
    staged = tmp_path / "layer"
    subprocess.run(
        ["make", "-s", "-C", str(ROOT / "layers/shared"), "stage", f"CONFIG={config}", f"STAGE_DIR={staged}"],
        check=True,
        capture_output=True,
    )
    return staged


def tree_digest(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in sorted(path.rglob("*")) if p.is_file()}


def test_case_4_the_staged_layer_changes_with_the_config_so_sams_cache_cannot_ship_a_stale_one(
    tmp_path: Path,
) -> None:
    # Given a config staged for the layer (what `sam build` hashes and builds from)
    config = tmp_path / "lastgood.json"
    config.write_text(OWN_CONFIG.read_text(encoding="utf-8"), encoding="utf-8")
    first = tree_digest(stage(tmp_path, config))
    assert first["content/lastgood/lastgood.json"] == config.read_bytes()
    assert "content/python/lastgood/core/config.py" in first
    assert not [k for k in first if k.startswith("content/python/lastgood/cli/")]
    # When the user edits the config (adds a dataset) and builds again
    raw = json.loads(config.read_text(encoding="utf-8"))
    raw["datasets"].append({"name": "orders", "collection": "orders"})
    config.write_text(json.dumps(raw), encoding="utf-8")
    second = tree_digest(stage(tmp_path, config))
    # Then the staged directory's content differs (new cache key) and ships the new file
    assert second != first
    assert b'"orders"' in second["content/lastgood/lastgood.json"]


def test_a_config_with_a_syntax_error_fails_the_build_naming_the_line(tmp_path: Path) -> None:
    # Given a config with a syntax error on line 3
    broken = tmp_path / "lastgood.json"
    broken.write_text('{\n  "sources": [\n    {"name": "app-db",, }\n  ]\n}\n', encoding="utf-8")
    # When make build's first step checks it / Then it fails (exit 2) naming the line, no traceback
    result = subprocess.run(
        [
            str(ROOT / ".venv/bin/python"),
            str(ROOT / "scripts/derive_template.py"),
            "--check",
            "--config",
            str(broken),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "line 3" in result.stderr or ".json:3:" in result.stderr  # the line, either spelling
    assert "Traceback" not in result.stderr
    # And nothing is derived from it
    with pytest.raises(ConfigError):
        derive_template.build(broken, tmp_path / "build" / "template.json")
    assert not (tmp_path / "build" / "template.json").exists()


def test_sources_whose_logical_ids_would_collide_are_refused(tmp_path: Path) -> None:
    # Given two sources whose names differ only in '-' vs '_' (same alarm logical ids)
    raw = json.loads(OWN_CONFIG.read_text(encoding="utf-8"))
    twin = dict(raw["sources"][0], name="app_db")
    raw["sources"].append(twin)
    config = tmp_path / "twins.json"
    config.write_text(json.dumps(raw), encoding="utf-8")
    # Then the derivation refuses, naming both
    with pytest.raises(ConfigError, match=r"'app-db' and 'app_db'"):
        derive_template.derive(load_config_file(config))


def test_local_invoke_keeps_the_local_config_not_the_layer_path() -> None:
    # Given template.yaml's LASTGOOD_CONFIG (/opt/lastgood/…, exists only in Lambda)
    from lastgood.cli.invoker import functions, load_template

    specs = functions(load_template(ROOT / "template.yaml"), ROOT / "template.yaml")
    # When `lastgood invoke` applies a function's environment / Then the layer path is not applied
    assert specs and all("LASTGOOD_CONFIG" not in spec.environment for spec in specs.values())

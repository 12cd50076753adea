"""`make build`: the deployment template for the declared sources.

template.yaml wires every per-source resource once, inside `Fn::ForEach` loops whose
identifier is `SourceId` (AWS::LanguageExtensions), with the per-source values read from
the `Source` mapping. This script loads the config through the config model (never parsing
the file itself), derives those values and writes `build/template.json`: template.yaml with
the loops' collections and the mappings replaced by the declared sources, the shared layer
pointed at the staged directory `make build` fills, LASTGOOD_CONFIG at the shipped copy, and
the loops expanded (`expand_source_loops`: what `sam build` reads names every resource).

The values in template.yaml itself are the packaged demo config's (so `cfn-lint
template.yaml` lints a real deployment); tests/infrastructure holds them equal to what this
script derives for that config.

    python scripts/derive_template.py [--config PATH] [--out build/template.json]
    python scripts/derive_template.py --check [--config PATH]    # validate only
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import re
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "template.yaml"
LOOP_IDENTIFIER = "SourceId"
LAYER_CONFIG_DIR = "/opt/lastgood"  # the layer's lastgood/ directory (layer content lands in /opt)
STAGED_LAYER = "layer/shared/"  # under build/, filled by `make -C layers/shared stage`

sys.path[:0] = [str(ROOT / "shared")]

from lastgood.core.config import LastgoodConfig, default_config_path, load_config_file  # noqa: E402
from lastgood.core.errors import ConfigError  # noqa: E402
from lastgood.core.secret_ids import declared_secret_ids  # noqa: E402

# The secret site/query.py reads the datasets' MongoDB through; regenerate may read only it.
DATASETS_SECRET = "MONGODB_URI"  # noqa: S105 (a secret's name, not a value)
NO_DATASETS = "(no-datasets)"


def config_path(explicit: str | None) -> Path:
    if explicit:
        return Path(explicit)
    env = os.environ.get("LASTGOOD_CONFIG")
    return Path(env) if env else default_config_path()


def source_id(name: str) -> str:
    """A source name as a logical-id suffix: `app-db` → `AppDb`, `postgres` → `Postgres`."""
    return "".join(part[:1].upper() + part[1:] for part in re.split(r"[-_]+", name) if part)


def capture_schedule(seconds: int) -> str:
    """`rate(5 minutes)` for 300 s (EventBridge rates are whole minutes)."""
    minutes = max(1, seconds // 60)
    return f"rate({minutes} minute{'s' if minutes != 1 else ''})"


def derive(config: LastgoodConfig) -> dict[str, Any]:
    """Every per-source value the template needs, from the config model."""
    sources: dict[str, dict[str, str]] = {}
    for source in config.sources:
        key = source_id(source.name)
        if key in sources:
            raise ConfigError(
                f"sources {sources[key]['Name']!r} and {source.name!r} differ only in '-'/'_' or case; "
                "their alarms and schedules would collide"
            )
        sources[key] = {
            "Name": source.name,
            "Engine": source.engine,
            "Schedule": source.schedule,
            "RpoSeconds": str(source.rpo_seconds),
            "RtoSeconds": str(source.rto_seconds),
            # PITR capture (lastgood.pitr): every capture_interval, enabled for pitr = true only
            "CaptureSchedule": capture_schedule(source.capture_interval_seconds),
            "CaptureState": "ENABLED" if source.pitr else "DISABLED",
            "Runner": source.runner,  # lambda | fargate: which one its backup schedule targets
            # The Fargate backup's shard indexes (a MongoDB source's fargate_shards > 1), "[]" unsharded:
            # the schedule's state-machine input carries them (statemachine/backup.asl.json)
            "Shards": json.dumps(list(range(source.fargate_shards))) if source.fargate_shards > 1 else "[]",
        }
    ids = declared_secret_ids(config)
    dataset_secret = ids.get(DATASETS_SECRET) if config.datasets else None
    return {
        "ids": list(sources),
        "Source": sources,
        # "(no-datasets)" cannot name a Secrets Manager secret: regenerate's grant matches nothing
        "Deployment": {"Datasets": {"SecretId": dataset_secret or NO_DATASETS}},
    }


def _replace_collections(node: Any, ids: list[str]) -> int:
    """Set the collection of every `Fn::ForEach` over SourceId; returns how many were set."""
    count = 0
    if isinstance(node, dict):
        for key, value in node.items():
            if key.startswith("Fn::ForEach::") and isinstance(value, list) and value[0] == LOOP_IDENTIFIER:
                value[1] = list(ids)
                count += 1
            count += _replace_collections(value, ids)
    elif isinstance(node, list):
        for child in node:
            count += _replace_collections(child, ids)
    return count


def _iteration(node: Any, identifier: str, value: str) -> Any:
    """One `Fn::ForEach` iteration as CloudFormation applies it: `${id}` / `&{id}` in keys and
    in `Fn::Sub` strings, `{"Ref": id}` → the value. Plain strings and the condition name of an
    `Fn::If` are left as written (CloudFormation does not substitute there). An `Fn::Sub` left
    with no `${` is its string: a resource's `Condition` must be a plain name."""
    if isinstance(node, list):
        return [_iteration(child, identifier, value) for child in node]
    if not isinstance(node, dict):
        return node
    if node == {"Ref": identifier}:
        return value
    alnum = re.sub(r"[^A-Za-z0-9]", "", value)

    def text(raw: str) -> str:
        return raw.replace("${" + identifier + "}", value).replace("&{" + identifier + "}", alnum)

    out: dict[str, Any] = {}
    for key, child in node.items():
        if key == "Fn::Sub" and isinstance(child, str):
            subbed = text(child)
            if len(node) == 1 and "${" not in subbed:
                return subbed
            out[key] = subbed
        elif key == "Fn::Sub" and isinstance(child, list) and child and isinstance(child[0], str):
            out[key] = [text(child[0]), *(_iteration(c, identifier, value) for c in child[1:])]
        elif key == "Fn::If" and isinstance(child, list) and len(child) == 3:
            out[key] = [child[0], *(_iteration(c, identifier, value) for c in child[1:])]
        else:
            out[text(key)] = _iteration(child, identifier, value)
    return out


def expand_source_loops(template: dict[str, Any]) -> int:
    """Replace every `Fn::ForEach` over SourceId (Conditions, Resources, Outputs) by its
    expansion, in place; returns how many loops were expanded.

    CloudFormation's AWS::LanguageExtensions would expand them on deploy, but `sam build`
    expands them first with its own code, and SAM CLI 1.170 stops with "unhashable type:
    'dict'" on the form AWS documents for a conditional resource in a loop
    (`Condition: !Sub "OnFargate${SourceId}"`). Expanded here, the built template names each
    per-source resource and condition itself: SAM CLI and CloudFormation read the same one."""
    count = 0
    for section in ("Conditions", "Resources", "Outputs"):
        entries = template.get(section)
        if not isinstance(entries, dict):
            continue
        out: dict[str, Any] = {}
        for key, value in entries.items():
            loop = key.startswith("Fn::ForEach::") and isinstance(value, list) and value[0] == LOOP_IDENTIFIER
            if not loop:
                out[key] = value
                continue
            _, collection, fragment = value
            count += 1
            for item in collection:
                for new_key, new_value in _iteration(copy.deepcopy(fragment), LOOP_IDENTIFIER, item).items():
                    if new_key in out or new_key in entries:
                        raise ConfigError(
                            f"template.yaml: {new_key} is declared twice once the loops are expanded"
                        )
                    out[new_key] = new_value
        template[section] = out
    return count


def render(
    template: dict[str, Any], values: dict[str, Any], *, config_name: str, base: str = ""
) -> dict[str, Any]:
    """template.yaml (long-form dict) wired for `values`; `base` prefixes relative code paths."""
    out = copy.deepcopy(template)
    if not values["ids"]:
        raise ConfigError("the config declares no sources: there is nothing to back up")
    if _replace_collections(out.get("Resources", {}), values["ids"]) == 0:
        raise ConfigError(f"template.yaml has no Fn::ForEach loop over {LOOP_IDENTIFIER}")
    _replace_collections(out.get("Conditions", {}), values["ids"])  # per-source runner conditions
    out["Mappings"]["Source"] = values["Source"]
    out["Mappings"]["Deployment"] = values["Deployment"]
    variables = out["Globals"]["Function"]["Environment"]["Variables"]
    variables["LASTGOOD_CONFIG"] = f"{LAYER_CONFIG_DIR}/{config_name}"
    for logical_id, resource in out["Resources"].items():
        if logical_id.startswith("Fn::ForEach::"):
            continue
        properties = resource.get("Properties", {})
        if logical_id == "SharedLayer":
            properties["ContentUri"] = STAGED_LAYER
        else:
            for key in ("CodeUri", "ContentUri", "DefinitionUri"):
                if isinstance(properties.get(key), str):
                    properties[key] = base + properties[key]
    return out


def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    from cfnlint.decode import cfn_yaml

    data: dict[str, Any] = cfn_yaml.load(str(path))
    return json.loads(json.dumps(data))  # plain dicts/strs, no decoder node types


def built_template(config_file: Path, *, expand_loops: bool = True) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the template `make build` writes for this config, the derived values)."""
    config = load_config_file(config_file)
    values = derive(config)
    rendered = render(load_template(), values, config_name=config_file.name, base="../")
    # --- backup-health dashboard (issue 19): its body follows the declared sources and datasets ---
    if str(ROOT) not in sys.path:
        sys.path.append(str(ROOT))
    from scripts.dashboard import attach_dashboard

    attach_dashboard(rendered, config, {key: value["Name"] for key, value in values["Source"].items()})
    # --- end backup-health dashboard ---
    if expand_loops:
        expand_source_loops(rendered)  # last: the dashboard reads the loops' alarm ids
    return rendered, values


def build(config_file: Path, out: Path) -> dict[str, Any]:
    rendered, values = built_template(config_file)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(rendered, indent=1) + "\n", encoding="utf-8")
    summary = {"config": str(config_file), "sources": [v["Name"] for v in values["Source"].values()]}
    (out.parent / "sources.json").write_text(json.dumps(values, indent=1) + "\n", encoding="utf-8")
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--config", help="config file (default: LASTGOOD_CONFIG, else the default path)")
    parser.add_argument("--out", default=str(ROOT / "build" / "template.json"))
    parser.add_argument("--check", action="store_true", help="validate the config only")
    parser.add_argument("--print-path", action="store_true", help="print the config file's path")
    args = parser.parse_args(argv)
    path = config_path(args.config)
    try:
        if args.print_path:
            print(path)
            return 0
        if args.check:
            config = load_config_file(path)
            derive(config)
            print(f"config ok: {path} ({len(config.sources)} sources, {len(config.datasets)} datasets)")
            return 0
        summary = build(path, Path(args.out))
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(f"{args.out}: sources {', '.join(summary['sources'])} (from {summary['config']})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

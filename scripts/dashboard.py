"""The backup-health CloudWatch dashboard, derived from the declared sources and datasets.

A dashboard body is one JSON string, so `Fn::ForEach` cannot loop inside it: `make build`
(scripts/derive_template.py) calls `attach_dashboard`, which writes the body for the config
being deployed into build/template.json as an `Fn::Sub` (region, stack name and the alarms'
ARNs are filled in by CloudFormation). template.yaml holds a one-widget placeholder that says
so; the placeholder is never deployed (`make deploy` deploys the built template).

Layout (24-column grid, one row per line below, top to bottom):

- deployment: what this is, backup storage against `StorageBudgetBytes`, storage per
  source, and the deployment-wide alarms (function errors, failure queues, storage, manifests);
- one row per declared source: time since the newest complete backup against the RPO, size
  and duration against their baselines (the ratio the backup run emits, 1.2 = the alarm),
  suspect / failed / complete backups, the drills' recovery time against the RTO, and the
  source's alarms (every alarm the template's per-source loop declares);
- one row per declared dataset: freshness against its `freshness`, fallback use by layer,
  regenerate outcomes, and the published-data alarms;
- KV: the resilient KV's mode, dirty keys / pending resync, MongoDB connection use.

Every metric named here is one the code emits with exactly these dimensions (docs/metrics.md;
tests/infrastructure/test_dashboard.py holds both to the code).
"""

from __future__ import annotations

import json
import re
from typing import Any

from lastgood.core.config import LastgoodConfig
from lastgood.core.timefmt import human_duration
from lastgood.site.loader import LAYERS

DASHBOARD = "BackupHealthDashboard"  # the template's logical id
NAMESPACE = "lastgood"
SERVICE = ("service", "lastgood")
ALARM_TYPE = "AWS::CloudWatch::Alarm"
LOOP_IDENTIFIER = "SourceId"
WIDTH = 24
REGION = "${AWS::Region}"
# The loader emits FallbackUsed with the layer that answered when it was not the chain's first.
FALLBACK_LAYERS = LAYERS[1:]
DATASET_METRICS = frozenset(
    {
        "RegenerateRejected",
        "RegenerateFailed",
        "DatasetRepaired",
        "AllFallbacksFailed",
        "FallbackUsed",
        "StaleData",
        "DatasetAgeSeconds",
    }
)
KV_METRICS = frozenset({"MongoConnectionsUsedRatio", "KVFallbackActive", "KVDirtyKeys", "KVPendingResync"})
RED, ORANGE, GREY = "#d62728", "#ff7f0e", "#7f7f7f"


def metric(name: str, *dimensions: tuple[str, str], **options: Any) -> list[Any]:
    """One line of a metric widget: namespace, name, dimension pairs, rendering options."""
    line: list[Any] = [NAMESPACE, name]
    for key, value in (SERVICE, *dimensions):
        line += [key, value]
    return [*line, options] if options else line


def graph(title: str, metrics: list[list[Any]], **properties: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "title": title,
        "view": "timeSeries",
        "region": REGION,
        "metrics": metrics,
        "period": 300,
        "stat": "Maximum",
    }
    body.update(properties)
    return {"type": "metric", "properties": body}


def line(value: float, label: str, color: str = RED, **extra: Any) -> dict[str, Any]:
    return {"value": value, "label": label, "color": color, **extra}


def alarms(title: str, logical_ids: list[str]) -> dict[str, Any]:
    """An alarm status widget: the alarms' current state, in place."""
    arns = ["${" + logical_id + ".Arn}" for logical_id in logical_ids]
    return {
        "type": "alarm",
        "properties": {"title": title, "alarms": arns, "sortBy": "stateUpdatedTimestamp"},
    }


def text(markdown: str) -> dict[str, Any]:
    return {"type": "text", "properties": {"markdown": markdown}}


def alarm_metrics(resource: dict[str, Any]) -> set[str]:
    """The metric names an alarm reads (plain, MetricStat, or a Metrics Insights SELECT)."""
    props = resource.get("Properties", {})
    names = {props["MetricName"]} if isinstance(props.get("MetricName"), str) else set()
    for query in props.get("Metrics", []):
        stat = query.get("MetricStat", {}).get("Metric", {})
        if isinstance(stat.get("MetricName"), str):
            names.add(stat["MetricName"])
        expression = query.get("Expression")
        if isinstance(expression, str) and expression.upper().startswith("SELECT"):
            names.update(re.findall(r"\(\s*([A-Za-z0-9]+)\s*\)", expression))
    return names


def per_source_alarms(template: dict[str, Any], source_key: str) -> list[str]:
    """Logical ids of the alarms every `Fn::ForEach` over SourceId declares for one source
    (alarms under a Condition are left out: an `Fn::Sub` cannot name a resource that may not exist)."""
    found: list[str] = []
    for key, loop in template["Resources"].items():
        if not key.startswith("Fn::ForEach::") or loop[0] != LOOP_IDENTIFIER:
            continue
        for name, resource in loop[2].items():
            if resource.get("Type") == ALARM_TYPE and "Condition" not in resource:
                alnum = re.sub(r"[^A-Za-z0-9]", "", source_key)
                found.append(
                    name.replace("&{" + LOOP_IDENTIFIER + "}", alnum).replace("${SourceId}", source_key)
                )
    return found


def global_alarms(template: dict[str, Any]) -> dict[str, list[str]]:
    """The unconditional alarms outside the per-source loops, by the row that shows them."""
    rows: dict[str, list[str]] = {"deployment": [], "datasets": [], "kv": []}
    for logical_id, resource in template["Resources"].items():
        if logical_id.startswith("Fn::ForEach::") or resource.get("Type") != ALARM_TYPE:
            continue
        if "Condition" in resource:
            continue
        names = alarm_metrics(resource)
        row = "datasets" if names & DATASET_METRICS else "kv" if names & KV_METRICS else "deployment"
        rows[row].append(logical_id)
    return rows


def deployment_row(config: LastgoodConfig, alarm_ids: list[str]) -> list[tuple[int, dict[str, Any]]]:
    names = ", ".join(f"`{s.name}`" for s in config.sources)
    datasets = ", ".join(f"`{d.name}`" for d in config.datasets) or "none"
    intro = text(
        "## lastgood: backup health (${AWS::StackName})\n"
        f"Sources: {names}. Datasets: {datasets}.\n\n"
        "One row per declared source and dataset, derived from lastgood.toml by `make build`. "
        "Red lines are the objectives the alarms use (RPO, RTO, 120 % of baseline). "
        "Details: docs/metrics.md, docs/runbook.md."
    )
    storage = graph(
        "Backup storage (% of StorageBudgetBytes)",
        [
            metric("BackupStorageBytes", id="total", visible=False, period=86400),
            [{"expression": "100 * total / ${StorageBudgetBytes}", "label": "% of budget", "id": "used"}],
        ],
        period=86400,
        annotations={"horizontal": [line(80, "alarm: 80 % of budget")]},
        yAxis={"left": {"min": 0, "showUnits": False}},
    )
    per_source = graph(
        "Backup storage per source (bytes, daily prune)",
        [metric("BackupStorageBytes", ("source", s.name), label=s.name) for s in config.sources],
        period=86400,
    )
    widgets = [(6, intro), (6, storage), (6, per_source)]
    if alarm_ids:
        widgets.append((6, alarms("Deployment alarms (functions, queues, storage)", alarm_ids)))
    return widgets


def source_row(config: LastgoodConfig, name: str, alarm_ids: list[str]) -> list[tuple[int, dict[str, Any]]]:
    source = config.source(name)
    dim = ("source", name)
    rpo, rto = source.rpo_seconds, source.rto_seconds
    age = graph(
        f"{name}: time since last good backup vs RPO",
        [
            metric("GoodBackupAgeSeconds", dim, label="last good backup (s)"),
            metric("BackupAgeSeconds", dim, label="newest complete, suspect too (late alarm)", color=GREY),
        ],
        annotations={"horizontal": [line(rpo, f"RPO {human_duration(rpo)}", fill="above")]},
        yAxis={"left": {"min": 0, "label": "seconds", "showUnits": False}},
    )

    def against_baseline(what: str, value_metric: str, ratio_metric: str, label: str) -> dict[str, Any]:
        return graph(
            f"{name}: backup {what} vs baseline",
            [
                metric(value_metric, dim, label=label),
                metric(ratio_metric, dim, label="ratio to the median of recent good backups", yAxis="right"),
            ],
            period=3600,
            annotations={
                "horizontal": [
                    line(1.2, "alarm: 120 % of baseline", yAxis="right"),
                    line(1, "baseline", GREY, yAxis="right"),
                ]
            },
            yAxis={"left": {"min": 0}, "right": {"min": 0, "showUnits": False}},
        )

    outcomes = graph(
        f"{name}: suspect / failed backups",
        [
            metric("BackupSuspect", dim, label="suspect", color=ORANGE),
            metric("BackupFailure", dim, label="failed", color=RED),
            metric("BackupSuccess", dim, label="complete", color="#2ca02c"),
        ],
        period=3600,
        stat="Sum",
        view="bar",
    )
    drill = graph(
        f"{name}: restore drill recovery time vs RTO",
        [
            metric("RecoveryTimeSeconds", dim, label="recovery time (s)"),
            metric(
                "RestoreTestSuccess",
                dim,
                label="drill passed (1) / failed (0)",
                stat="Minimum",
                yAxis="right",
            ),
        ],
        period=86400,
        annotations={"horizontal": [line(rto, f"RTO {human_duration(rto)}", fill="above")]},
        yAxis={"left": {"min": 0, "label": "seconds", "showUnits": False}, "right": {"min": 0, "max": 1}},
    )
    return [
        (5, age),
        (4, against_baseline("size", "BackupBytes", "BackupSizeRatio", "bytes")),
        (4, against_baseline("duration", "BackupDurationSeconds", "BackupDurationRatio", "seconds")),
        (3, outcomes),
        (4, drill),
        (4, alarms(f"{name}: alarms", alarm_ids)),
    ]


def dataset_row(config: LastgoodConfig, name: str, alarm_ids: list[str]) -> list[tuple[int, dict[str, Any]]]:
    dataset = config.dataset(name)
    dim = ("dataset", name)
    freshness = dataset.freshness_seconds
    age = graph(
        f"{name}: freshness vs budget",
        [metric("DatasetAgeSeconds", dim, label="age of the published copy (s)")],
        annotations={"horizontal": [line(freshness, f"freshness {human_duration(freshness)}", fill="above")]},
        yAxis={"left": {"min": 0, "label": "seconds", "showUnits": False}},
    )
    fallback = graph(
        f"{name}: fallback use by layer",
        [
            *(
                metric("FallbackUsed", dim, ("layer", layer), label=f"served by {layer}")
                for layer in FALLBACK_LAYERS
            ),
            metric("StaleData", dim, label="stale data served", color=ORANGE),
            metric("AllFallbacksFailed", dim, label="every layer failed", color=RED),
        ],
        stat="Sum",
        period=3600,
    )
    regenerate = graph(
        f"{name}: regenerate outcomes",
        [
            metric("RegeneratePublished", dim, label="published"),
            metric("RegenerateUnchanged", dim, label="unchanged", color=GREY),
            metric("RegenerateRejected", dim, label="rejected by a guard", color=ORANGE),
            metric("RegenerateFailed", dim, label="failed", color=RED),
            metric("DatasetRepaired", dim, label="repaired"),
        ],
        stat="Sum",
        period=3600,
        view="bar",
    )
    widgets = [(6, age), (6, fallback), (6, regenerate)]
    if alarm_ids:
        widgets.append((6, alarms(f"{name}: published-data alarms (any dataset)", alarm_ids)))
    return widgets


def kv_row(alarm_ids: list[str]) -> list[tuple[int, dict[str, Any]]]:
    mode = graph(
        "KV mode: 0 = primary KV, 1 = MongoDB mirror (fallback)",
        [metric("KVFallbackActive", label="fallback active")],
        annotations={"horizontal": [line(1, "fallback", ORANGE)]},
        yAxis={"left": {"min": 0, "max": 1, "showUnits": False}},
    )
    backlog = graph(
        "KV: keys waiting for resync",
        [metric("KVDirtyKeys", label="dirty keys"), metric("KVPendingResync", label="pending resync")],
    )
    connections = graph(
        "MongoDB connections in use (%)",
        [metric("MongoConnectionsUsedRatio", label="% of available")],
        annotations={"horizontal": [line(80, "alarm: 80 %")]},
        yAxis={"left": {"min": 0, "max": 100, "showUnits": False}},
    )
    widgets = [(6, mode), (6, backlog), (6, connections)]
    if alarm_ids:
        widgets.append((6, alarms("KV alarms", alarm_ids)))
    return widgets


def dashboard(
    config: LastgoodConfig, template: dict[str, Any], source_keys: dict[str, str]
) -> dict[str, Any]:
    """The dashboard body (with `${...}` Fn::Sub placeholders) as data.

    `source_keys` maps a logical-id suffix to its source name (derive_template's `Source`
    mapping order); `template` is the long-form template the body goes into."""
    shared = global_alarms(template)
    rows: list[tuple[int, list[tuple[int, dict[str, Any]]]]] = [
        (5, deployment_row(config, shared["deployment"]))
    ]
    for key, name in source_keys.items():
        rows.append((6, source_row(config, name, per_source_alarms(template, key))))
    for dataset in config.datasets:
        rows.append((5, dataset_row(config, dataset.name, shared["datasets"])))
    rows.append((5, kv_row(shared["kv"])))
    widgets: list[dict[str, Any]] = []
    y = 0
    for height, row in rows:
        x = 0
        for width, widget in row:
            widgets.append({**widget, "x": x, "y": y, "width": width, "height": height})
            x += width
        assert x <= WIDTH, f"dashboard row at y={y} is {x} columns wide"
        y += height
    return {"start": "-P14D", "periodOverride": "inherit", "widgets": widgets}


def attach_dashboard(rendered: dict[str, Any], config: LastgoodConfig, source_keys: dict[str, str]) -> None:
    """Replace the template's placeholder body with the one for `config`."""
    body = dashboard(config, rendered, source_keys)
    text_ = json.dumps(body, separators=(",", ":"))
    rendered["Resources"][DASHBOARD]["Properties"]["DashboardBody"] = {"Fn::Sub": text_}

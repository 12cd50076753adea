"""Why a health report is not healthy: one line per failing dependency or check, naming it.

Pure functions over the report's JSON-shaped entries (no I/O), so the details,
the CLI's text output and the logs all say the same thing.
"""

from __future__ import annotations

from typing import Any


def _timeout(name: str, entry: dict[str, Any]) -> str:
    error = str(entry.get("error") or "")
    detail = error.removeprefix("Timeout: ")
    return f"{name}: timeout ({detail})" if detail else f"{name}: timeout"


def dependency_reason(name: str, dep: dict[str, Any]) -> str:
    """`s3: timeout (no answer within 3s)`, `ledger: OperationalError: connection refused`."""
    if dep.get("status") == "timeout":
        return _timeout(name, dep)
    return f"{name}: {dep.get('error') or 'not ok'}"


def _item_reason(item: dict[str, Any], limit_key: str) -> str:
    error = str(item.get("error") or "not ok")
    age, limit = item.get("age_seconds"), item.get(limit_key)
    if age is not None and limit is not None:
        return f"{error} ({age:g}s old, limit {limit:g}s)"
    return error


def check_reasons(name: str, check: dict[str, Any]) -> list[str]:
    """The reasons a failing check gives: per source / dataset where it has them, else its error."""
    if check.get("status") == "timeout":
        return [_timeout(name, check)]
    out: list[str] = []
    if name == "backups" and isinstance(check.get("sources"), dict):
        out = [
            f"backups: {source}: {_item_reason(item, 'rpo_seconds')}"
            for source, item in check["sources"].items()
            if isinstance(item, dict) and item.get("ok") is False
        ]
    elif name == "datasets" and isinstance(check.get("datasets"), dict):
        out = [
            f"datasets: {dataset}: {_item_reason(item, 'budget_seconds')}"
            for dataset, item in check["datasets"].items()
            if isinstance(item, dict) and item.get("ok") is False
        ]
    elif isinstance(check.get("reasons"), list):  # a check that names its own reasons (replica)
        out = [f"{name}: {reason}" for reason in check["reasons"]]
    elif name == "kv" and check.get("status") and not check.get("error"):
        out = [f"kv: running in {check['status']} mode: neither Upstash nor its MongoDB mirror answers"]
    if not out:
        why = check.get("error") or check.get("reason") or "not ok (the check gave no reason)"
        out = [f"{name}: {why}"]
    return out

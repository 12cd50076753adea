"""Regenerate: datasets from MongoDB → canonical JSON → guards → guarded, atomic publish.

For each configured dataset, independently (one failing never stops the others):

1. read live/ and last-good/ back and hash their bytes (`SiteStore.current`: the ETag,
   the label, and whether the bytes are what the label says) and the publish history;
2. query MongoDB with the fail-fast client; render the canonical JSON array;
3. guards (`lastgood.site.guards`): not empty, `min_count`, `max_shrink` against the
   largest count published within `shrink_window` (`lastgood.site.history`), item schema;
4. live and last-good both intact AND holding the rendered SHA-256 → `unchanged`: nothing
   written, nothing invalidated (a label that matches but bytes that do not is damage);
5. otherwise publish (`lastgood.site.publish.SiteStore.publish`): history entry, version
   copy, conditional live write, conditional last-good write that never goes backwards.

Outcomes: `published` · `repaired` (the content did not change, but a damaged, truncated
or replaced live or last-good object was rewritten) · `unchanged` · `rejected` (a guard
refused it: live and last-good untouched, the reason logged) · `failed` (MongoDB timeout
or pool exhausted, S3 error, a concurrent regenerate that published first). One metric
per dataset and outcome (`RegeneratePublished`, `RegenerateUnchanged`, `RegenerateRejected`,
`RegenerateFailed`, `DatasetRepaired`, dimension `dataset`; docs/metrics.md); a `published`
outcome that also rewrote a damaged object emits `DatasetRepaired` as well. The outcome's
`repaired` lists what was rewritten. Every changed `/data/<name>.json` (including a
repaired one: the CDN may hold the damaged copy) goes into ONE invalidation per run.

`dry_run` does steps 1-4 and reports what would happen; it writes nothing and
emits no metrics.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from lastgood.core.config import DatasetConfig, get_config
from lastgood.core.errors import ConfigError, GuardRejected
from lastgood.core.observability import emit_metrics, logger
from lastgood.core.redact import redact_text
from lastgood.site.canonical import iso_ms
from lastgood.site.guards import check_schema, guard

Status = Literal["published", "repaired", "unchanged", "rejected", "failed"]
REPAIRED_METRIC = "DatasetRepaired"
METRIC_BY_STATUS: dict[str, str] = {
    "published": "RegeneratePublished",
    "repaired": REPAIRED_METRIC,
    "unchanged": "RegenerateUnchanged",
    "rejected": "RegenerateRejected",
    "failed": "RegenerateFailed",
}


@dataclass
class Outcome:
    """One dataset's result."""

    dataset: str
    status: Status = "failed"
    reason: str | None = None
    count: int | None = None
    previous_count: int | None = None
    sha256: str | None = None
    live_changed: bool = False
    dry_run: bool = False
    seconds: float = 0.0
    repaired: list[str] = field(default_factory=list)  # "live" / "last-good" rewritten after damage
    sequence: int | None = None  # the publish sequence of what live now holds

    def metrics(self) -> dict[str, tuple[str, float]]:
        out: dict[str, tuple[str, float]] = {METRIC_BY_STATUS[self.status]: ("Count", 1)}
        if self.repaired:
            out[REPAIRED_METRIC] = ("Count", 1)
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "status": self.status,
            "reason": self.reason,
            "count": self.count,
            "previous_count": self.previous_count,
            "sha256": self.sha256,
            "live_changed": self.live_changed,
            "repaired": list(self.repaired),
            "sequence": self.sequence,
            "dry_run": self.dry_run,
            "seconds": round(self.seconds, 3),
        }


@dataclass
class RegenerateReport:
    outcomes: list[Outcome]
    generated_at: str
    invalidation: dict[str, Any] | None = None
    seconds: float = 0.0
    dry_run: bool = False
    errors: list[str] = field(default_factory=list)

    @property
    def all_failed(self) -> bool:
        return bool(self.outcomes) and all(o.status == "failed" for o in self.outcomes)

    def as_dict(self) -> dict[str, Any]:
        return {
            "generated_at": self.generated_at,
            "dry_run": self.dry_run,
            "datasets": [o.as_dict() for o in self.outcomes],
            "summary": {s: sum(1 for o in self.outcomes if o.status == s) for s in METRIC_BY_STATUS},
            "invalidation": self.invalidation,
            "errors": self.errors,
            "seconds": round(self.seconds, 3),
        }


def _describe(exc: BaseException) -> str:
    return redact_text(str(exc) if str(exc) else type(exc).__name__)[:500]


def regenerate_dataset(
    dataset: DatasetConfig, *, site: Any, generated_at: str, dry_run: bool = False
) -> Outcome:
    """Steps 1-5 for one dataset; never raises (the outcome says what happened)."""
    from lastgood.site.publish import ConcurrentUpdate
    from lastgood.site.query import query_documents, render

    started = time.perf_counter()
    outcome = Outcome(dataset.name, dry_run=dry_run)
    try:
        if dataset.item_schema is not None:
            check_schema(dataset.item_schema, f"datasets[{dataset.name}].schema")
        current = site.current(dataset.name)
        history = site.history(dataset.name, dataset.shrink_window_seconds)
        baseline, source = shrink_baseline(current, history, dataset)
        outcome.previous_count = baseline
        damaged = [(role, info) for role, info in _roles(current) if info is not None and info.damaged]
        for role, info in damaged:  # logged before the query: reported even if this run cannot fix it
            logger.warning(f"dataset {dataset.name}: {role} {info.key} is damaged: {info.problem}")
        documents = query_documents(dataset)
        rendered = render(documents)
        outcome.count, outcome.sha256 = rendered.count, rendered.sha256
        # Serialised once: only an item schema needs the items as readers parse them; the
        # other guards need the count, which the documents list has (one array item each).
        guard(dataset, rendered.items if dataset.item_schema is not None else documents, baseline, source)
        del documents  # the rendered bytes are all that is published
        live_same = current.live is not None and current.live.holds(rendered.sha256)
        good_same = current.last_good is not None and current.last_good.holds(rendered.sha256)
        new_content = current.live is None or current.live.sha256 != rendered.sha256
        if live_same and good_same:
            outcome.status = "unchanged"
            outcome.sequence = current.live.sequence if current.live is not None else None
            if not dry_run and history.rebuilt:
                _store_rebuilt_history(site, dataset.name, history)
        elif dry_run:
            outcome.status = "repaired" if damaged and not new_content else "published"
            outcome.live_changed = not live_same
            outcome.repaired = [role for role, _ in damaged]
            outcome.reason = f"dry run: would {'repair' if outcome.status == 'repaired' else 'publish'}"
            outcome.reason += " (nothing written)"
        else:
            result = site.publish(
                dataset.name,
                rendered.body,
                rendered.sha256,
                rendered.count,
                generated_at,
                current,
                history=history,
                keep_seconds=dataset.shrink_window_seconds,
            )
            outcome.repaired = list(result.repaired)
            outcome.status = "repaired" if result.repaired and not new_content else "published"
            outcome.live_changed = result.live_changed
            outcome.sequence = result.sequence
            notes = [f"{role} was damaged ({info.problem}); rewritten" for role, info in damaged]
            if not result.live_changed and result.last_good_changed and not result.repaired:
                notes.append("live was already current; last-good repaired")
            notes.extend(result.notes)
            outcome.reason = "; ".join(notes)[:500] or None
    except GuardRejected as exc:
        outcome.status = "rejected"
        outcome.reason = exc.reason
    except ConcurrentUpdate as exc:
        outcome.status = "failed"
        outcome.reason = str(exc)
    except Exception as exc:  # reported per dataset so the others still run; never published
        outcome.status = "failed"
        outcome.reason = f"{type(exc).__name__}: {_describe(exc)}"[:500]
    outcome.seconds = time.perf_counter() - started
    if outcome.status == "rejected":
        logger.warning(
            f"dataset {dataset.name} rejected: {outcome.reason}; live and last-good left untouched",
            extra=outcome.as_dict(),
        )
    elif outcome.status == "failed":
        logger.error(f"dataset {dataset.name} failed: {outcome.reason}", extra=outcome.as_dict())
    else:
        logger.info(f"dataset {dataset.name} {outcome.status}", extra=outcome.as_dict())
    return outcome


def _store_rebuilt_history(site: Any, name: str, history: Any) -> None:
    """Best effort: the dataset is fine either way; the next run rebuilds again if this fails."""
    try:
        site.save_history(name, history)
    except Exception as exc:
        logger.warning(f"dataset {name}: rebuilt history not stored: {type(exc).__name__}: {_describe(exc)}")


def _roles(current: Any) -> list[tuple[str, Any]]:
    return [("live", current.live), ("last-good", current.last_good)]


def shrink_baseline(current: Any, history: Any, dataset: DatasetConfig) -> tuple[int | None, str]:
    """The `max_shrink` baseline and how the reason names it: the largest count accepted within
    the window, never below the current last-good/live count (`Current.previous_count`)."""
    from lastgood.site.history import cutoff

    last = current.previous_count
    largest = history.largest_since(cutoff(dataset.shrink_window_seconds))
    if largest is not None and (last is None or largest.count > last):
        return largest.count, f"the largest count published within {dataset.shrink_window},"
    return last, "the last good"


def regenerate(
    names: list[str] | None = None, *, dry_run: bool = False, site: Any = None
) -> RegenerateReport:
    """Regenerate the named datasets (default: every configured one); see the module docstring."""
    from lastgood.site.keys import public_path
    from lastgood.site.publish import SiteStore, invalidate, invalidation_reference

    started = time.perf_counter()
    config = get_config()
    datasets = [config.dataset(n) for n in dict.fromkeys(names)] if names else list(config.datasets)
    if not datasets:
        raise ConfigError("no datasets configured (config `datasets` is empty)")
    report = RegenerateReport([], iso_ms(datetime.now(UTC)), dry_run=dry_run)
    site = site or SiteStore.from_settings()
    for dataset in datasets:
        report.outcomes.append(
            regenerate_dataset(dataset, site=site, generated_at=report.generated_at, dry_run=dry_run)
        )
    changed = [
        o for o in report.outcomes if o.status in ("published", "repaired") and (o.live_changed or o.repaired)
    ]
    if changed and not dry_run:
        try:
            report.invalidation = invalidate(
                [public_path(o.dataset) for o in changed],
                invalidation_reference([(o.dataset, f"{o.sha256}:{o.sequence}") for o in changed]),
            )
        except Exception as exc:  # data is published; the CDN catches up within max-age (60 s)
            message = f"CloudFront invalidation failed: {type(exc).__name__}: {_describe(exc)}"
            report.errors.append(message[:500])
            logger.error(message)
    if not dry_run:
        for o in report.outcomes:
            emit_metrics(o.metrics(), dataset=o.dataset)
    report.seconds = time.perf_counter() - started
    logger.info(
        "regenerate finished",
        extra={"summary": report.as_dict()["summary"], "seconds": round(report.seconds, 3)},
    )
    return report

"""Regenerate: datasets from MongoDB → canonical JSON → guards → guarded, atomic publish.

For each configured dataset, independently (one failing never stops the others):

1. HEAD live/ and last-good/ (the previous ETag, SHA-256 and count);
2. query MongoDB with the fail-fast client; render the canonical JSON array;
3. guards (`lastgood.site.guards`): not empty, `min_count`, `max_shrink` against the
   last good count, item schema;
4. same SHA-256 as live and last-good → `unchanged`: nothing written, nothing invalidated;
5. otherwise publish (`lastgood.site.publish.SiteStore.publish`): version copy,
   conditional live write, promote to last-good.

Outcomes: `published` · `unchanged` · `rejected` (a guard refused it: live and
last-good untouched, the reason logged) · `failed` (MongoDB timeout or pool
exhausted, S3 error, a concurrent regenerate that published first). One
metric per dataset and outcome (`RegeneratePublished`, `RegenerateUnchanged`,
`RegenerateRejected`, `RegenerateFailed`, dimension `dataset`; docs/metrics.md).
Every changed `/data/<name>.json` goes into ONE CloudFront invalidation per run.

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

Status = Literal["published", "unchanged", "rejected", "failed"]
METRIC_BY_STATUS: dict[str, str] = {
    "published": "RegeneratePublished",
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

    def as_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "status": self.status,
            "reason": self.reason,
            "count": self.count,
            "previous_count": self.previous_count,
            "sha256": self.sha256,
            "live_changed": self.live_changed,
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
        outcome.previous_count = current.previous_count
        rendered = render(query_documents(dataset))
        outcome.count, outcome.sha256 = rendered.count, rendered.sha256
        guard(dataset, rendered.items, current.previous_count)
        live_same = current.live is not None and current.live.sha256 == rendered.sha256
        good_same = current.last_good is not None and current.last_good.sha256 == rendered.sha256
        if live_same and good_same:
            outcome.status = "unchanged"
        elif dry_run:
            outcome.status = "published"
            outcome.live_changed = not live_same
            outcome.reason = "dry run: would publish (nothing written)"
        else:
            result = site.publish(
                dataset.name, rendered.body, rendered.sha256, rendered.count, generated_at, current
            )
            outcome.status = "published"
            outcome.live_changed = result.live_changed
            if not result.live_changed:
                outcome.reason = "live was already current; last-good repaired"
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
    changed = [o for o in report.outcomes if o.status == "published" and o.live_changed]
    if changed and not dry_run:
        try:
            report.invalidation = invalidate(
                [public_path(o.dataset) for o in changed],
                invalidation_reference([(o.dataset, o.sha256 or "") for o in changed]),
            )
        except Exception as exc:  # data is published; the CDN catches up within max-age (60 s)
            message = f"CloudFront invalidation failed: {type(exc).__name__}: {_describe(exc)}"
            report.errors.append(message[:500])
            logger.error(message)
    if not dry_run:
        for o in report.outcomes:
            emit_metrics({METRIC_BY_STATUS[o.status]: ("Count", 1)}, dataset=o.dataset)
    report.seconds = time.perf_counter() - started
    logger.info(
        "regenerate finished",
        extra={"summary": report.as_dict()["summary"], "seconds": round(report.seconds, 3)},
    )
    return report

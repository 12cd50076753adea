"""Regenerate: datasets from MongoDB → canonical JSON → guards → publish (see DESIGN.md).

Each dataset is independent: one failing does not stop the others. Outcomes:

- `published`  — new content written (version, live, last-good) and invalidated;
- `unchanged`  — same SHA-256 as live: nothing written, nothing invalidated;
- `rejected`   — a guard refused it (empty, below min_count, sudden drop, schema):
                 live and last-good untouched, reason logged, metric emitted;
- `failed`     — an error (MongoDB timeout / pool exhausted, S3 error, a concurrent
                 regenerate that published first): nothing of ours was published.

All changed paths go into ONE CloudFront invalidation per run.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from typing import Any, Literal

from lastgood.canonical import render, sha256_hex
from lastgood.config import DatasetConfig, get_config
from lastgood.errors import GuardRejected, LastgoodError
from lastgood.guards import check
from lastgood.observability import emit_metrics, logger
from lastgood.redact import redact_text

Status = Literal["published", "unchanged", "rejected", "failed"]
METRIC_BY_STATUS = {
    "published": "RegeneratePublished",
    "unchanged": "RegenerateUnchanged",
    "rejected": "RegenerateRejected",
    "failed": "RegenerateFailed",
}
QUERY_MAX_TIME_MS = 10_000


@dataclass
class Outcome:
    dataset: str
    status: Status
    reason: str | None = None
    count: int | None = None
    sha256: str | None = None
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "dataset": self.dataset,
            "status": self.status,
            "reason": self.reason,
            "count": self.count,
            "sha256": self.sha256,
            "seconds": round(self.seconds, 3),
        }


def query_dataset(dataset: DatasetConfig) -> list[dict[str, Any]]:
    """Read the dataset's documents with the fail-fast client (seed 000 pool policy)."""
    from lastgood.settings import get_secret, get_settings
    from lastgood.sources.mongodb import get_client

    client = get_client(str(get_secret("MONGODB_URI")))
    collection = client[get_settings().mongodb_db_name][dataset.collection]
    cursor = collection.find(
        dataset.filter,
        dataset.projection,
        sort=[tuple(s) for s in dataset.sort] or None,
        batch_size=1000,
        max_time_ms=QUERY_MAX_TIME_MS,
    )
    return list(cursor)


def regenerate_dataset(dataset: DatasetConfig, *, site: Any, dry_run: bool = False) -> Outcome:
    started = time.perf_counter()
    outcome = Outcome(dataset.name, "failed")
    try:
        current = site.current(dataset.name)
        documents = query_dataset(dataset)
        body = render(documents)
        items = json.loads(body)
        check(dataset, items, current.last_good_count)
        outcome.count = len(items)
        outcome.sha256 = sha256_hex(body)
        if outcome.sha256 == current.live_sha256:
            outcome.status = "unchanged"
        elif dry_run:
            outcome.status = "published"
            outcome.reason = "dry run: would publish"
        else:
            site.publish(dataset.name, body, outcome.sha256, len(items), current)
            outcome.status = "published"
    except GuardRejected as exc:
        outcome.status = "rejected"
        outcome.reason = exc.reason
        logger.warning("dataset rejected: live and last-good left untouched", extra=outcome.as_dict())
    except Exception as exc:  # reported per dataset; the others still run
        outcome.status = "failed"
        outcome.reason = redact_text(f"{type(exc).__name__}: {exc}")[:500]
        logger.error("dataset regeneration failed", extra=outcome.as_dict())
    outcome.seconds = time.perf_counter() - started
    return outcome


def regenerate(names: list[str] | None = None, *, dry_run: bool = False, site: Any = None) -> list[Outcome]:
    """Regenerate the named datasets (default: all configured); one invalidation for all changes."""
    from lastgood.publish import SiteStore, invalidate, public_path

    config = get_config()
    datasets = [config.dataset(n) for n in names] if names else list(config.datasets)
    if not datasets:
        raise LastgoodError("no datasets configured")
    site = site or SiteStore.from_settings()
    outcomes = [regenerate_dataset(ds, site=site, dry_run=dry_run) for ds in datasets]
    changed = [o for o in outcomes if o.status == "published" and not dry_run]
    if changed:
        reference = "-".join(f"{o.dataset}:{(o.sha256 or '')[:12]}" for o in changed)
        try:
            invalidate([public_path(o.dataset) for o in changed], reference[:128])
        except Exception as exc:  # published data is correct; the CDN catches up at max-age
            logger.error("CloudFront invalidation failed", extra={"error": redact_text(str(exc))[:300]})
    for o in outcomes:
        emit_metrics({METRIC_BY_STATUS[o.status]: ("Count", 1)}, dataset=o.dataset)
        logger.info("dataset regenerated", extra=o.as_dict())
    return outcomes

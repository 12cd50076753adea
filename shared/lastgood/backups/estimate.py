"""`lastgood backup --estimate --source NAME`: how long and how much memory the next backup takes,
and whether the source should move to Fargate.

- Size now: the engine's `estimate_size` (pg_database_size / dbStats / DBSIZE + INFO memory).
- Duration: from the last committed runs' manifests (`totals.bytes` / `duration_s`): the newest
  backup's bytes at the median rate of the last runs, never below their median duration. With
  no history, from the size now at the engine's measured rate (`ASSUMED_RATES`, stated).
- Peak memory: the highest `peak_rss_bytes` of those manifests (the backup process and its
  pg_dump, written by the backup run: `peak_rss_bytes()`); with none, the streaming assumption.
- Verdict: move to Fargate when the expected duration is above `FARGATE_FRACTION` of the backup
  function's timeout, or the peak memory above its memory size (docs/limits.md).
"""

from __future__ import annotations

import resource
from dataclasses import asdict, dataclass, field
from statistics import median
from typing import TYPE_CHECKING, Any

from lastgood.core.timefmt import human_bytes

if TYPE_CHECKING:
    from lastgood.backups.manifest import BackupManifest
    from lastgood.backups.store import BackupStore
    from lastgood.engines.base import SizeEstimate

# The backup function's settings in template.yaml (tests/infrastructure holds them equal).
LAMBDA_TIMEOUT_S = 900
LAMBDA_MEMORY_MB = 1024
# Move above two thirds of the timeout: room for growth, and the handler stops 30 s early.
FARGATE_FRACTION = 2 / 3
HISTORY_RUNS = 5
# No history: `make bench` rates on the devstack (docs/limits.md "Time"), per unit of the size
# the engine reports. PostgreSQL's is a dump rate applied to the on-disk size (indexes
# included), so it over-estimates: the safe side.
ASSUMED_RATES: dict[str, tuple[str, float, str]] = {
    "postgres": ("bytes", 4.4e6, "4.4 MB/s (make bench's pg_dump -Fc -> S3 rate) of pg_database_size"),
    "mongodb": ("bytes", 6.0e6, "6.0 MB/s (make bench's MongoDB backup rate) of dbStats.dataSize"),
    "upstash": ("records", 8800.0, "8,800 keys/s (make bench's Upstash backup rate, 64-byte values)"),
    "redis": ("records", 8800.0, "8,800 keys/s (make bench's Upstash backup rate, 64-byte values)"),
}
# Backups stream (bounded part buffers): make bench measured 97-114 MB peak from 1x to 10x.
ASSUMED_PEAK_BYTES = 128 * 1024 * 1024
ASSUMED_PEAK_WHY = "backups stream whatever the size (make bench: 97-114 MB peak at 1x-10x, docs/limits.md)"


def peak_rss_bytes() -> int:
    """Peak resident memory of this process plus its finished children (pg_dump), in bytes.

    An upper bound of what the run needed at once (a warm Lambda's peak includes earlier runs)."""
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    return int(own + children) * 1024  # Linux reports KiB


@dataclass
class Estimate:
    source: str
    engine: str
    runner: str
    size_bytes: int | None
    size_records: int | None
    size_method: str
    history_runs: int
    expected_duration_s: float | None
    duration_basis: str
    expected_peak_bytes: int
    memory_basis: str
    rate_bytes_per_s: float | None = None
    lambda_timeout_s: int = LAMBDA_TIMEOUT_S
    fargate_above_s: float = round(LAMBDA_TIMEOUT_S * FARGATE_FRACTION)
    lambda_memory_bytes: int = LAMBDA_MEMORY_MB * 1024 * 1024
    move_to_fargate: bool = False
    reasons: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    def lines(self) -> list[str]:
        """The human report: one fact a line, the verdict last."""
        size = human_bytes(self.size_bytes) if self.size_bytes is not None else "unknown bytes"
        records = f", ~{self.size_records:,} records" if self.size_records is not None else ""
        duration = f"{self.expected_duration_s:.1f} s" if self.expected_duration_s is not None else "unknown"
        out = [
            f"{self.source} ({self.engine}, runner = {self.runner!r})",
            f"  size now:        {size}{records} ({self.size_method})",
            f"  expected time:   {duration} ({self.duration_basis})",
            f"  expected memory: {human_bytes(self.expected_peak_bytes)} ({self.memory_basis})",
            f"  Lambda limits:   {self.lambda_timeout_s} s (move above {self.fargate_above_s:.0f} s), "
            f"{human_bytes(self.lambda_memory_bytes)} (the backup function's MemorySize)",
        ]
        if self.move_to_fargate and self.runner == "fargate":
            out.append(
                "  verdict: runs on Fargate (runner = 'fargate'), which this source needs: "
                + "; ".join(self.reasons)
            )
        elif self.move_to_fargate:
            out.append(
                "  verdict: MOVE TO FARGATE: "
                + "; ".join(self.reasons)
                + '. Set runner = "fargate" for this '
                'source and deploy with FargateRunner=enabled (docs/deploy.md "Fargate runner")'
            )
        else:
            where = "Fargate (runner = 'fargate')" if self.runner == "fargate" else "Lambda"
            out.append(f"  verdict: fits Lambda's limits (runs on {where})")
        return out


def _history(store: BackupStore, source: str) -> list[BackupManifest]:
    """The last committed runs' manifests, newest first (suspect ones too: they took that long)."""
    return [
        item.manifest
        for item in store.list_backups(source)
        if item.committed and item.manifest is not None and item.manifest.duration_s > 0
    ][:HISTORY_RUNS]


def from_history(
    engine: str, size: SizeEstimate, history: list[BackupManifest]
) -> tuple[float | None, float | None, str]:
    """(expected seconds or None, bytes/s, basis): the manifests' rate, else the engine's assumed rate. Pure."""
    if history:
        rate = median(m.totals.bytes / m.duration_s for m in history)
        by_rate = history[0].totals.bytes / rate if rate > 0 else 0.0
        expected = max(by_rate, median(m.duration_s for m in history))
        basis = (
            f"the last {len(history)} committed run(s): newest {human_bytes(history[0].totals.bytes)} stored "
            f"at their median {human_bytes(int(rate))}/s"
        )
        return round(expected, 1), round(rate, 1), basis
    unit, rate, why = ASSUMED_RATES[engine]
    amount = size.bytes if unit == "bytes" else size.records
    if amount is None:
        return None, None, f"no committed backup yet and the server reports no {unit}: unknown"
    return round(amount / rate, 1), None, f"no committed backup yet; assumed {why}"


def judge(estimate: Estimate) -> Estimate:
    """Set the verdict: above the stated fraction of the timeout, or above the memory size. Pure."""
    reasons = []
    if estimate.expected_duration_s is not None and estimate.expected_duration_s > estimate.fargate_above_s:
        reasons.append(
            f"expected {estimate.expected_duration_s:.0f} s is above {estimate.fargate_above_s:.0f} s "
            f"(two thirds of Lambda's {estimate.lambda_timeout_s} s)"
        )
    if estimate.expected_peak_bytes > estimate.lambda_memory_bytes:
        reasons.append(
            f"expected peak memory {human_bytes(estimate.expected_peak_bytes)} is above the backup "
            f"function's {human_bytes(estimate.lambda_memory_bytes)}"
        )
    estimate.reasons = reasons
    estimate.move_to_fargate = bool(reasons)
    return estimate


def estimate_backup(source_name: str, *, store: BackupStore | None = None) -> Estimate:
    """Measure the source and read its history; no backup is taken, nothing is written."""
    from lastgood.backups.store import BackupStore
    from lastgood.core.config import get_config
    from lastgood.core.settings import get_secret
    from lastgood.engines import get_engine

    source = get_config().source(source_name)
    store = store or BackupStore.from_settings()
    url = str(get_secret(source.url_secret))
    token = get_secret(source.token_secret) if source.token_secret else None
    size = get_engine(source.engine).estimate_size(url, token=token, database=source.database)
    history = _history(store, source.name)
    seconds, rate, basis = from_history(source.engine, size, history)
    peaks = [m.peak_rss_bytes for m in history if m.peak_rss_bytes]
    if peaks:
        peak, memory_basis = max(peaks), f"the highest of the last {len(peaks)} run(s) that recorded it"
    else:
        peak, memory_basis = ASSUMED_PEAK_BYTES, f"no run recorded it; assumed: {ASSUMED_PEAK_WHY}"
    return judge(
        Estimate(
            source=source.name,
            engine=source.engine,
            runner=source.runner,
            size_bytes=size.bytes,
            size_records=size.records,
            size_method=size.method,
            history_runs=len(history),
            expected_duration_s=seconds,
            duration_basis=basis,
            expected_peak_bytes=peak,
            memory_basis=memory_basis,
            rate_bytes_per_s=rate,
        )
    )

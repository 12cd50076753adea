"""Which store serves a call, and when the KV breaker may close again.

`Router` owns the KV circuit breaker's transitions for one `ResilientKV`:

- a call goes to KV only while the breaker is closed (the half-open prober
  first runs the resync, bounded by `recover_budget_s`); a fresh process first
  copies back what an earlier process left pending in MongoDB;
- Upstash failing like an outage (429, 5xx, timeout, connection error) opens
  it (`trip`); a KV call that succeeds while another call has just opened it
  does NOT close it: only a completed resync closes it, so a write served from
  MongoDB in the meantime is copied to KV before any read goes there;
- every write served from MongoDB reports itself once it landed (`landed`):
  checked under the same gate the resync closes under, so it either is in the
  resync's last pass or sees the breaker closed and copies its key to KV
  itself before it is acknowledged (see `lastgood.kv.resync`).

Result: within one process, no read served after recovery returns a value
older than a write acknowledged before it. (Across processes the limits in
the package docstring still apply.)
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Final, TypeVar

from lastgood.core.observability import logger
from lastgood.kv.breaker import BreakerState, CircuitBreaker
from lastgood.kv.codec import Primary, UpstashCommandError, UpstashError, UpstashRateLimited
from lastgood.kv.mirror import MirrorStore
from lastgood.kv.resync import ResyncReport, copy_back, push_key

T = TypeVar("T")

MODE_KV: Final = "kv"
RATE_LIMIT_WARNING = "KV rate limit hit, switching to MongoDB"
UNAVAILABLE_WARNING = "KV unavailable"
OWED_TO_KV = "a write served from MongoDB is not in KV yet"


class Router:
    """The KV breaker's transitions and the KV-or-MongoDB decision for one ResilientKV."""

    def __init__(self, store: MirrorStore, breaker: CircuitBreaker, *, recover_budget_s: float) -> None:
        self.store = store
        self.breaker = breaker
        self.recover_budget_s = recover_budget_s
        self._first_call = threading.Lock()
        self.pending_checked = False

    def trip(self, exc: UpstashError) -> None:
        rate_limited = isinstance(exc, UpstashRateLimited)
        reason = "rate_limited" if rate_limited else "unavailable"
        if self.breaker.record_failure(f"{reason}: {exc}"[:300]):
            logger.warning(
                RATE_LIMIT_WARNING if rate_limited else UNAVAILABLE_WARNING,
                extra={"kv_reason": reason, "error": str(exc)[:300], "cooldown_s": self.breaker.cooldown_s},
            )

    def use_kv(self) -> bool:
        """Should this call go to KV? Runs the half-open probe / first-call resync when due."""
        if self.store.primary is None:
            return False
        before = self.breaker.state
        if not self.breaker.allow():
            return False
        if before is not BreakerState.CLOSED or self.breaker.state is not BreakerState.CLOSED:
            return self._recover()
        if self.pending_checked:
            return True
        with self._first_call:  # concurrent first calls wait for the one copying back
            if self.breaker.state is not BreakerState.CLOSED:
                return False  # the first call's copy-back did not finish: MongoDB serves meanwhile
            if not self.pending_checked:
                if self.store.has_pending():
                    return self._recover()
                self.pending_checked = True
        return True

    def _recover(self) -> bool:
        report = self.resync(budget_s=self.recover_budget_s)
        if report.ok:
            return report.complete
        if self.breaker.state is not BreakerState.OPEN and not self.store.owes_kv():
            # KV answered, MongoDB did not, and this process left nothing in MongoDB that KV lacks:
            # KV is the best copy there is, so serve from it.
            self.breaker.record_success()
            return True
        self.breaker.record_failure(f"resync failed: {report.error}"[:300])
        return False

    def call(self, fn: Callable[[Primary], T]) -> tuple[bool, T | None]:
        """Run `fn` against KV when allowed: (True, result) or (False, None) after a trip."""
        if not self.use_kv():
            return False, None
        primary = self.store.primary
        assert primary is not None
        try:
            return True, fn(primary)
        except UpstashCommandError:
            raise  # the command itself was wrong (e.g. WRONGTYPE): not an outage
        except UpstashError as exc:
            self.trip(exc)
            return False, None

    def landed(self, key: str, version: int) -> None:
        """A write of `key` was stored in MongoDB; make sure KV gets it before it is acknowledged."""
        from pymongo.errors import PyMongoError

        self.store.unapplied(key, version)
        with self.store.gate:
            closed = self.breaker.state is BreakerState.CLOSED
        if not closed:
            return  # the resync that closes the breaker copies it first
        try:
            push_key(self.store, key)  # the breaker closed while this write was on its way
        except UpstashCommandError:
            self.breaker.record_failure(OWED_TO_KV)
        except UpstashError as exc:
            self.trip(exc)
        except PyMongoError:
            self.breaker.record_failure(OWED_TO_KV)  # reads of it must not go to KV until a resync

    def resync(self, *, budget_s: float | None = None) -> ResyncReport:
        """Copy pending MongoDB writes to KV, repair dirty mirror documents, close the breaker when done.

        Stops early (and reports `complete: false`) when `budget_s` runs out;
        the breaker then stays open so calls keep going to MongoDB.
        """
        report = copy_back(self.store, budget_s=budget_s, on_outage=self.trip, close=self._close)
        if report.ok and report.complete:
            self.pending_checked = True
        elif report.ok:
            self.breaker.record_failure("resync incomplete")  # keep serving from MongoDB until done
        return report

    def _close(self, report: ResyncReport) -> None:
        if self.breaker.record_success():
            logger.info("KV available again; resync complete", extra={"kv_mode": MODE_KV, **report.as_dict()})

    def probe(self) -> bool:
        """PING KV (a failure opens the breaker; a success does not close it: only a resync does)."""
        primary = self.store.primary
        if primary is None:
            return False
        try:
            primary.command("PING")
            return True
        except UpstashError as exc:
            self.trip(exc)
            return False

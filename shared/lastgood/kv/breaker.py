"""The resilient KV's circuit breaker and the process-wide breaker registry (one per Upstash URL).

Breakers are module-level so warm invocations of one Lambda process share
them; each new process starts closed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from enum import StrEnum
from typing import Any


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


class CircuitBreaker:
    """Closed → open on failure → half-open after `cooldown_s` → closed on success.

    Pure state machine with an injectable monotonic clock. In the half-open
    state one caller probes; others keep using the fallback until the probe
    reports (or until another cool-down passes, should the prober die).
    """

    def __init__(self, *, cooldown_s: float = 30.0, clock: Callable[[], float] = time.monotonic) -> None:
        if cooldown_s < 0:
            raise ValueError("cooldown_s must be >= 0")
        self.cooldown_s = cooldown_s
        self._clock = clock
        self._lock = threading.Lock()
        self._state = BreakerState.CLOSED
        self._changed_at = clock()
        self._first_opened_at: float | None = None
        self.reason: str | None = None
        self.trips = 0

    @property
    def state(self) -> BreakerState:
        return self._state

    def allow(self) -> bool:
        """May the caller use the primary now? (moves open → half-open after the cool-down)."""
        with self._lock:
            if self._state is BreakerState.CLOSED:
                return True
            if self._clock() - self._changed_at >= self.cooldown_s:
                self._state = BreakerState.HALF_OPEN
                self._changed_at = self._clock()
                return True
            return False

    def record_success(self) -> bool:
        """The primary answered; returns True when this closed an open breaker."""
        with self._lock:
            was_open = self._state is not BreakerState.CLOSED
            self._state = BreakerState.CLOSED
            self._changed_at = self._clock()
            self._first_opened_at = None
            self.reason = None
            return was_open

    def record_failure(self, reason: str) -> bool:
        """The primary failed; returns True when this opened a closed breaker (a new trip)."""
        with self._lock:
            now = self._clock()
            tripped = self._state is BreakerState.CLOSED
            if tripped:
                self._first_opened_at = now
                self.trips += 1
            self._state = BreakerState.OPEN
            self._changed_at = now
            self.reason = reason
            return tripped

    def open_age_s(self) -> float | None:
        """Seconds since the breaker first opened in this outage (None when closed)."""
        first = self._first_opened_at
        return None if first is None else max(0.0, self._clock() - first)

    def snapshot(self) -> dict[str, Any]:
        age = self.open_age_s()
        return {
            "state": self._state.value,
            "open_age_s": None if age is None else round(age, 3),
            "reason": self.reason,
            "trips": self.trips,
            "cooldown_s": self.cooldown_s,
        }


# --------------------------------------------------------------------------- process-wide registry

_BREAKERS: dict[str, CircuitBreaker] = {}
_BREAKERS_LOCK = threading.Lock()


def breaker_for(name: str, cooldown_s: float) -> CircuitBreaker:
    """The module-level breaker for one Upstash URL (shared by warm invocations)."""
    with _BREAKERS_LOCK:
        breaker = _BREAKERS.get(name)
        if breaker is None or breaker.cooldown_s != cooldown_s:
            breaker = _BREAKERS[name] = CircuitBreaker(cooldown_s=cooldown_s)
        return breaker


def clear_breakers() -> None:
    """Forget every registered breaker (`reset_kv()`, tests)."""
    with _BREAKERS_LOCK:
        _BREAKERS.clear()

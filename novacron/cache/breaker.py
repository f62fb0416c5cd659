"""A circuit breaker for one cache tier, driven by an injected clock.

Theory of operation
-------------------
The classic three-state breaker (Nygard, "Release It!", 2007): CLOSED passes every call and
counts consecutive failures; ``failure_threshold`` of them open it. OPEN rejects calls without
trying, so a dead Redis costs nothing per request; after ``reset_timeout_s`` the next call is a
trial (HALF_OPEN): success closes the breaker, failure re-opens it for another timeout. The
states and their legal moves are a ``TransitionTable``.
"""

from __future__ import annotations

from enum import Enum

from novacron.lifecycle import TransitionTable


class BreakerState(Enum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


BREAKER_LIFECYCLE = TransitionTable("circuit breaker", {
    BreakerState.CLOSED: {BreakerState.OPEN},
    BreakerState.OPEN: {BreakerState.HALF_OPEN},
    BreakerState.HALF_OPEN: {BreakerState.CLOSED, BreakerState.OPEN},
})


class CircuitBreaker:
    def __init__(self, *, failure_threshold: int = 3, reset_timeout_s: float = 2.0) -> None:
        if failure_threshold < 1 or reset_timeout_s <= 0:
            raise ValueError("failure_threshold must be >= 1 and reset_timeout_s > 0")
        self.failure_threshold = failure_threshold
        self.reset_timeout_s = reset_timeout_s
        self.state = BreakerState.CLOSED
        self.consecutive_failures = 0
        self.opened_at_s: float | None = None
        self.outage_started_s: float | None = None

    def _move(self, state: BreakerState) -> None:
        self.state = BREAKER_LIFECYCLE.check(self.state, state)

    def allows(self, now_s: float) -> bool:
        """May a call go through now? Moves OPEN to HALF_OPEN once the timeout has passed."""
        if self.state is BreakerState.CLOSED or self.state is BreakerState.HALF_OPEN:
            return True
        assert self.opened_at_s is not None
        if now_s - self.opened_at_s >= self.reset_timeout_s:
            self._move(BreakerState.HALF_OPEN)
            return True
        return False

    def record_success(self, now_s: float) -> float | None:
        """A call succeeded; returns the outage length if this closed an open breaker."""
        self.consecutive_failures = 0
        if self.state is BreakerState.HALF_OPEN:
            self._move(BreakerState.CLOSED)
            started = self.outage_started_s
            self.outage_started_s = self.opened_at_s = None
            return None if started is None else now_s - started
        return None

    def record_failure(self, now_s: float) -> bool:
        """A call failed; returns True if this opened the breaker (from CLOSED)."""
        self.consecutive_failures += 1
        if self.state is BreakerState.HALF_OPEN:
            self._move(BreakerState.OPEN)
            self.opened_at_s = now_s
            return False
        if self.state is BreakerState.CLOSED and self.consecutive_failures >= self.failure_threshold:
            self._move(BreakerState.OPEN)
            self.opened_at_s = self.outage_started_s = now_s
            return True
        return False

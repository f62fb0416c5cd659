"""Clocks for the real runtime: run-relative monotonic time, and wall time for persisted data."""

from __future__ import annotations

import time


class MonotonicClock:
    """Seconds since the clock was created, from ``time.monotonic`` (never goes back; implements
    ``novacron.ports.Clock``). The one monotonic clock of the real runtime."""

    def __init__(self) -> None:
        self._origin = time.monotonic()

    def now_s(self) -> float:
        return time.monotonic() - self._origin

    @property
    def origin_monotonic_s(self) -> float:
        """The ``time.monotonic()`` value this clock counts from (other processes may share it)."""
        return self._origin


class WallClock:
    """Seconds since the Unix epoch: for expiry times stored on disk that must survive restarts."""

    def now_s(self) -> float:
        return time.time()

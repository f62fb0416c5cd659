"""A clock set by its owner: trace replay and tests move time explicitly."""

from __future__ import annotations


class ManualClock:
    def __init__(self, start_s: float = 0.0) -> None:
        self.t_s = start_s

    def now_s(self) -> float:
        return self.t_s

    def advance(self, seconds: float) -> None:
        if seconds < 0:
            raise ValueError(f"time cannot go back ({seconds} s)")
        self.t_s += seconds

    def set(self, t_s: float) -> None:
        """Move to ``t_s`` (never backwards: out-of-order trace times are clamped)."""
        self.t_s = max(self.t_s, t_s)

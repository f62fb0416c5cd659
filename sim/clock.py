"""A ``Clock`` over SimPy's simulated time."""

from __future__ import annotations

import simpy


class SimClock:
    """Run-relative seconds are SimPy's ``env.now`` (the model's time unit is the second)."""

    def __init__(self, env: simpy.Environment) -> None:
        self._env = env

    def now_s(self) -> float:
        return float(self._env.now)

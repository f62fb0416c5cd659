"""Predictive migration: move a VM off a host whose CPU forecast crosses the ceiling, before it does.

Theory of operation
-------------------
Forecast. Each host's CPU demand (in % of its cores, uncapped, from its utilisation samples) is
smoothed by Holt's linear method (double exponential smoothing; Holt 1957, as in Hyndman and
Athanasopoulos, "Forecasting: Principles and Practice", 3rd ed., section 8.2): a level
``l = a y + (1 - a)(l + b)`` and a trend ``b = beta (l - l_prev) + (1 - beta) b``; the forecast
``h`` samples ahead is ``l + h b``. All hosts are updated at once (numpy vectors).

Plan. A host is *at risk* when its forecast at the horizon reaches ``ceiling_pct``. For each at
risk host (most at risk first) the planner picks one VM to move: the smallest VM whose share of
the host's forecast (its vCPUs over the host's reserved vCPUs, the only per-VM figure a
scheduler sees) brings the host under the ceiling, else the largest; and a destination: among
the hosts the placement filters accept for that VM, the one with the lowest forecast, provided
the VM's share does not take it over the ceiling. A VM moved within ``cooldown_s`` stays. One
move per host per round, at most ``max_moves`` per round; the runtime sends the moves through
the run's admission queue like any other migration, so its caps and token bucket still hold.

This is the predictive counterpart of the reactive rebalancer (``novacron.scheduler.rebalance``),
which balances reservations as they are now.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from novacron.config import spec

FloatArray = npt.NDArray[np.float64]
BoolArray = npt.NDArray[np.bool_]


@dataclass(frozen=True, slots=True, kw_only=True)
class PredictionConfig:
    migration: bool = spec(False, doc="move VMs off hosts whose CPU forecast crosses the ceiling (predictive)")
    ceiling_pct: float = spec(80.0, min=1.0, max=200.0, doc="CPU demand a host should stay under")
    horizon_s: float = spec(1800.0, min=0.0, max=86400, doc="how far ahead the forecast looks")
    level_smoothing: float = spec(0.5, min=0.01, max=1.0, doc="Holt's alpha (level)")
    trend_smoothing: float = spec(0.3, min=0.0, max=1.0, doc="Holt's beta (trend)")
    max_moves: int = spec(4, min=1, max=1000, doc="most moves asked per forecast round")
    cooldown_s: float = spec(3600.0, min=0.0, max=1e6, doc="a moved VM stays at least this long")


@dataclass
class HoltForecaster:
    """Holt's linear method over a vector of series (one per host)."""

    alpha: float
    beta: float
    level: FloatArray | None = None
    trend: FloatArray | None = None

    def observe(self, values: FloatArray) -> None:
        if self.level is None or self.trend is None:
            self.level, self.trend = values.astype(np.float64).copy(), np.zeros(len(values))
            return
        previous = self.level
        self.level = self.alpha * values + (1 - self.alpha) * (previous + self.trend)
        self.trend = self.beta * (self.level - previous) + (1 - self.beta) * self.trend

    def forecast(self, steps_ahead: float) -> FloatArray:
        if self.level is None or self.trend is None:
            raise ValueError("forecast before any observation")
        ahead: FloatArray = self.level + steps_ahead * self.trend
        return ahead


@dataclass(frozen=True, slots=True)
class PlannedMove:
    vm_id: str
    source: int
    destination: int
    forecast_pct: float


@dataclass
class PredictiveMigrationPlanner:
    config: PredictionConfig
    last_moved_s: dict[str, float] = field(default_factory=dict)

    def plan(self, *, now_s: float, forecast_pct: FloatArray, reserved_vcpus: FloatArray,
             vms_on: Mapping[int, Sequence[tuple[str, float]]],
             feasible: Callable[[str], BoolArray], busy: set[int]) -> list[PlannedMove]:
        """Moves for this round; ``vms_on[row]`` = (vm id, vCPUs), ``feasible(vm)`` = the rows
        the placement filters accept for it, ``busy`` = hosts with a move in flight."""
        ceiling = self.config.ceiling_pct
        projected, busy = forecast_pct.copy(), set(busy)
        moves: list[PlannedMove] = []
        for row in (int(r) for r in np.argsort(-forecast_pct, kind="stable")):
            if projected[row] < ceiling or len(moves) >= self.config.max_moves:
                break
            if row in busy:
                continue
            move = self._one_move(row, now_s, projected, reserved_vcpus, vms_on.get(row, ()), feasible, busy)
            if move is not None:
                moves.append(move)
        return moves

    def _one_move(self, row: int, now_s: float, projected: FloatArray, reserved_vcpus: FloatArray,
                  vms: Sequence[tuple[str, float]], feasible: Callable[[str], BoolArray],
                  busy: set[int]) -> PlannedMove | None:
        ceiling, total = self.config.ceiling_pct, max(float(reserved_vcpus[row]), 1e-9)
        movable = sorted((vcpus, vm_id) for vm_id, vcpus in vms
                         if now_s - self.last_moved_s.get(vm_id, -np.inf) >= self.config.cooldown_s)
        enough = [c for c in movable if projected[row] * (1 - c[0] / total) < ceiling]
        for vcpus, vm_id in (enough[:1] or movable[-1:]):
            share_pct = projected[row] * vcpus / total
            mask = feasible(vm_id).copy()
            mask[row] = False
            mask[list(busy)] = False
            room = np.where(mask & (projected + share_pct < ceiling), projected, np.inf)
            destination = int(np.argmin(room))
            if not np.isfinite(room[destination]):
                return None
            forecast = float(projected[row])
            projected[row] -= share_pct
            projected[destination] += share_pct
            busy.update((row, destination))
            self.last_moved_s[vm_id] = now_s
            return PlannedMove(vm_id, row, destination, forecast)
        return None

"""``scheduler.*`` metrics from a run's events.

Quality figures are read from the last ``PlacementQualitySampled`` (the placement at the end of
the run) except the headroom, which is the minimum over every sample (the least headroom left on
any host at any sample, checked against the targets), and imbalance, also reported as a mean.
``scheduler.policy_eval_p99_ms`` is the p99 of ``PlacementDecided.decision_ms`` over full
evaluations (cache hits excluded): the runtime's calibrated cost model in the simulation (see
``sim/scheduling.py``), so a seed's metrics repeat exactly; the benchmarks measure the real cost.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from novacron.cluster.events import RunFinished, VMMoved
from novacron.events import Event
from novacron.scheduler.events import PlacementDecided, PlacementQualitySampled, RebalanceMoveStarted, RebalancePlanned
from novacron.streaming import EventsByType, fold_events, running_max, running_min

HEADROOM_FIELDS = ("cpu", "memory", "network", "io")


class SchedulerFold:
    """Decision counts, the evaluated decisions' modelled times (one per placement: kept), the
    last quality sample with running minima of headroom, and the rebalancer's moves."""

    def __init__(self) -> None:
        self.decided = self.hits = 0
        self.policy_count: int | None = None
        self.evaluated_ms: list[float] = []
        self.last: PlacementQualitySampled | None = None
        self.imbalance: list[float] = []
        self.min_headroom: dict[str, float] = {}
        self.rebalanced = False
        self.moves = 0
        self.last_moved_s: float | None = None
        self.duration_s: float | None = None

    def handlers(self) -> Mapping[type[Event], Callable[[Any], None]]:
        return {PlacementDecided: self._decided, PlacementQualitySampled: self._quality,
                RebalancePlanned: self._planned, RebalanceMoveStarted: self._move, VMMoved: self._moved,
                RunFinished: self._finished}

    def _decided(self, ev: PlacementDecided) -> None:
        self.decided += 1
        self.hits += ev.cache_hit
        self.policy_count = int(running_max(self.policy_count, ev.policy_count))
        if not ev.cache_hit:
            self.evaluated_ms.append(ev.decision_ms)

    def _quality(self, ev: PlacementQualitySampled) -> None:
        self.last = ev
        self.imbalance.append(ev.imbalance_pct)
        for name in HEADROOM_FIELDS:
            field = f"min_headroom_{name}_pct"
            self.min_headroom[field] = running_min(self.min_headroom.get(field), getattr(ev, field))

    def _planned(self, _: RebalancePlanned) -> None:
        self.rebalanced = True

    def _move(self, _: RebalanceMoveStarted) -> None:
        self.moves += 1

    def _moved(self, ev: VMMoved) -> None:
        self.last_moved_s = ev.t_s if self.last_moved_s is None else max(self.last_moved_s, ev.t_s)

    def _finished(self, ev: RunFinished) -> None:
        self.duration_s = ev.duration_s

    def result(self) -> dict[str, float]:
        metrics: dict[str, float] = {}
        if self.decided:
            metrics["scheduler.decision_cache_hit_rate_pct"] = 100.0 * self.hits / self.decided
            metrics["scheduler.policy_count"] = float(self.policy_count or 0)
            if self.evaluated_ms:
                metrics["scheduler.policy_eval_p99_ms"] = float(np.percentile(self.evaluated_ms, 99))
        if self.last is not None:
            metrics.update(self._quality_metrics(self.last))
        if self.rebalanced:
            duration_s = self.duration_s if self.duration_s is not None else (self.last_moved_s or 0.0)
            metrics["scheduler.migrations"] = float(self.moves)
            metrics["scheduler.migrations_per_hour"] = self.moves / max(duration_s / 3600.0, 1e-9)
        return metrics

    def _quality_metrics(self, last: PlacementQualitySampled) -> dict[str, float]:
        bound = max(last.hosts_lower_bound, 1)
        metrics = {
            "scheduler.hosts_used": float(last.hosts_used),
            "scheduler.hosts_lower_bound": float(last.hosts_lower_bound),
            "scheduler.hosts_over_lower_bound_pct": 100.0 * (last.hosts_used - bound) / bound,
            "scheduler.fragmentation_pct": last.fragmentation_pct,
            "scheduler.stranded_cpu_pct": last.stranded_cpu_pct,
            "scheduler.stranded_memory_pct": last.stranded_memory_pct,
            "scheduler.imbalance_pct": last.imbalance_pct,
            "scheduler.imbalance_mean_pct": float(np.mean(self.imbalance)),
        }
        for field, value in self.min_headroom.items():
            metrics[f"scheduler.{field}"] = value
        return metrics


def scheduler_metrics(events: EventsByType) -> dict[str, float]:
    return fold_events(SchedulerFold(), events)

"""Run metrics: the numbers the target catalogue checks, computed from the event log alone.

Each capability contributes an extractor: a pure function from the run's events (grouped by
type) to named metrics. Because metrics come from events only, a simulated run, a real run and a
replayed log produce the same metrics from the same events.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from typing import TypeVar

import numpy as np

from novacron.cache.metrics import cache_metrics
from novacron.cluster.events import ClusterUtilisationSampled, VMPlaced, VMRejected, VMRequested
from novacron.cluster.uptime import host_peak_metrics, io_metrics, placement_latency_metrics, uptime_metrics
from novacron.events import Event
from novacron.migration.metrics import migration_metrics
from novacron.raft.metrics import raft_metrics
from novacron.scheduler.metrics import scheduler_metrics

E = TypeVar("E", bound=Event)


class EventsByType:
    """A run's events grouped by class, in log order within each class."""

    def __init__(self, events: Iterable[Event]) -> None:
        self._groups: dict[type[Event], list[Event]] = defaultdict(list)
        self.count = 0
        for ev in events:
            self._groups[type(ev)].append(ev)
            self.count += 1

    def of(self, cls: type[E]) -> list[E]:
        return self._groups.get(cls, [])  # type: ignore[return-value]

    def types(self) -> list[type[Event]]:
        return list(self._groups)


Metrics = dict[str, float]
Extractor = Callable[[EventsByType], Metrics]


def placement_metrics(events: EventsByType) -> Metrics:
    placed = events.of(VMPlaced)
    metrics: Metrics = {
        "cluster.vms_requested": float(len(events.of(VMRequested))),
        "cluster.vms_placed": float(len(placed)),
        "cluster.vms_rejected": float(len(events.of(VMRejected))),
    }
    if placed:
        decision_ms = np.array([e.decision_ms for e in placed])
        metrics["scheduler.decision_p50_ms"] = float(np.percentile(decision_ms, 50))
        metrics["scheduler.decision_p99_ms"] = float(np.percentile(decision_ms, 99))
    return metrics


def utilisation_metrics(events: EventsByType) -> Metrics:
    samples = events.of(ClusterUtilisationSampled)
    if not samples:
        return {}
    return {
        "cluster.peak_cpu_pct": max(s.cpu_pct for s in samples),
        "cluster.peak_memory_pct": max(s.memory_pct for s in samples),
        "cluster.mean_cpu_pct": float(np.mean([s.cpu_pct for s in samples])),
    }


EXTRACTORS: list[Extractor] = [
    placement_metrics,
    utilisation_metrics,
    cache_metrics,
    scheduler_metrics,
    uptime_metrics,
    host_peak_metrics,
    migration_metrics,
    io_metrics,
    placement_latency_metrics,
    raft_metrics,
]


def compute_metrics(events: Iterable[Event], extractors: Iterable[Extractor] = EXTRACTORS) -> Metrics:
    grouped = events if isinstance(events, EventsByType) else EventsByType(events)
    metrics: Metrics = {"run.events": float(grouped.count)}
    for extractor in extractors:
        metrics.update(extractor(grouped))
    return metrics

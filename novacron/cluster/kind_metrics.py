"""Metrics of workload kinds in a capacity run, from ``VMStarted`` (``novacron.cluster.kinds``)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from novacron.cluster.events import VMStarted
from novacron.cluster.kinds import KINDS
from novacron.events import Event
from novacron.streaming import Metrics

KIND_METRICS: tuple[tuple[str, str, str], ...] = (
    ("kinds.vms_started", "", "VMs of a workload kind that ran after their start time (restarts count again)"),
    ("kinds.start_mean_s", "s", "mean time from placement to running over started VMs (the kinds' start times)"),
    ("kinds.start_max_s", "s", "longest time from placement to running"),
    ("kinds.memory_overhead_mean_gib", "GiB", "mean runtime memory overhead reserved per started VM"),
    *((f"kinds.{name}.vms_started", "", f"{name} VMs that ran after their start time") for name in KINDS),
)


class KindStartFold:
    def __init__(self) -> None:
        self.started: dict[str, int] = {}
        self.start_total_s = self.start_max_s = self.overhead_total_gib = 0.0

    def handlers(self) -> Mapping[type[Event], Callable[[Any], None]]:
        return {VMStarted: self._started}

    def _started(self, ev: VMStarted) -> None:
        self.started[ev.kind] = self.started.get(ev.kind, 0) + 1
        self.start_total_s += ev.start_s
        self.start_max_s = max(self.start_max_s, ev.start_s)
        self.overhead_total_gib += ev.memory_overhead_gib

    def result(self) -> Metrics:
        count = sum(self.started.values())
        if not count:
            return {}
        metrics: Metrics = {"kinds.vms_started": float(count), "kinds.start_mean_s": self.start_total_s / count,
                            "kinds.start_max_s": self.start_max_s,
                            "kinds.memory_overhead_mean_gib": self.overhead_total_gib / count}
        metrics.update({f"kinds.{name}.vms_started": float(n) for name, n in self.started.items()})
        return metrics

"""Availability and per-host peak metrics, computed from the event log alone.

Theory of operation
-------------------
A VM is *alive* from its first ``VMPlaced`` until its ``VMStopped`` or the end of the run, and
*down* from each ``VMFailed`` until it runs again (``VMPlaced`` or ``VMMoved``) or, if it never
does, until it stops or the run ends. Rejected VMs never ran and do not count (they show in
``cluster.vms_rejected``). Then

    per-VM uptime  = 100 * (1 - down_s / alive_s)
    cluster uptime = 100 * (1 - sum(down_s) / sum(alive_s))   (VM-time weighted)

``cluster.uptime_pct`` is the catalogue's "uptime > 99.9 %" target; the per-VM 1st percentile
and minimum show whether a few VMs carry most of the downtime.

Peaks. ``cluster.peak_cpu_pct`` and ``cluster.peak_memory_pct`` (computed in
``novacron.metrics``) are the maximum over time of *cluster-wide* utilisation — the fraction of
the up hosts' capacity in use at one sample (CPU served, at most 100 %: demand above a host's
capacity waits, and ``novacron.cluster.sla_metrics`` reports it); that is the capacity planner's question (is the
cluster big enough at its busiest moment?), and the one the analysis' 80 % / 85 % targets ask.
A cluster can meet it while single hosts run hot, so this module adds
``cluster.host_cpu_p99_pct`` and ``cluster.host_memory_p99_pct``: the 99th percentile over all
per-host samples (every host at every demand update), the hot-spot view a rebalancer acts on.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, ClassVar

import numpy as np

from novacron.cluster.events import (
    ClusterIOSampled,
    HostFailed,
    HostUtilisationSampled,
    RunFinished,
    VMFailed,
    VMMoved,
    VMPlaced,
    VMStopped,
)
from novacron.events import Event
from novacron.streaming import ColumnFactory, EventsByType, InMemoryColumn, Metrics, fold_events, running_max

Handlers = Mapping[type[Event], Callable[[Any], None]]


class LifecycleFold:
    """Each VM's life so far: when it started and stopped, since when it is down, how long it was
    down (per-VM state, as big as the cluster's VMs, whatever the run's length)."""

    def __init__(self) -> None:
        self.started: dict[str, float] = {}
        self.stopped: dict[str, float] = {}
        self.down_since: dict[str, float] = {}
        self.down_s: dict[str, float] = {}
        self.last_s: float | None = None
        self.finished_s: float | None = None
        self.failures = 0

    def handlers(self) -> Handlers:
        return {VMPlaced: self._placed, VMFailed: self._failed, VMMoved: self._running, VMStopped: self._stopped,
                RunFinished: self._finished}

    def _finished(self, ev: RunFinished) -> None:
        self.finished_s = ev.t_s

    def _failed(self, ev: VMFailed) -> None:
        self.last_s = ev.t_s
        self.failures += 1
        self.down_since[ev.vm_id] = ev.t_s

    def _running(self, ev: VMPlaced | VMMoved | VMStopped) -> None:
        self.last_s = ev.t_s
        since = self.down_since.pop(ev.vm_id, None)
        if since is not None:
            self.down_s[ev.vm_id] = self.down_s.get(ev.vm_id, 0.0) + ev.t_s - since

    def _placed(self, ev: VMPlaced) -> None:
        self._running(ev)
        self.started.setdefault(ev.vm_id, ev.t_s)

    def _stopped(self, ev: VMStopped) -> None:
        self._running(ev)
        self.stopped[ev.vm_id] = ev.t_s

    def spans(self) -> dict[str, tuple[float, float]]:
        """For each VM that ever ran: (seconds alive, seconds down)."""
        end_s = self.finished_s if self.finished_s is not None else (self.last_s or 0.0)
        down_s = dict(self.down_s)
        for vm_id, since in self.down_since.items():
            down_s[vm_id] = down_s.get(vm_id, 0.0) + end_s - since
        return {vm_id: (self.stopped.get(vm_id, end_s) - start_s, down_s.get(vm_id, 0.0))
                for vm_id, start_s in self.started.items()}


def vm_alive_and_down_s(events: EventsByType) -> dict[str, tuple[float, float]]:
    """For each VM that ever ran: (seconds alive, seconds down)."""
    fold = LifecycleFold()
    fold_events(_SpansOnly(fold), events)
    return fold.spans()


class _SpansOnly:
    def __init__(self, lifecycle: LifecycleFold) -> None:
        self.lifecycle = lifecycle

    def handlers(self) -> Handlers:
        return self.lifecycle.handlers()

    def result(self) -> Metrics:
        return {}


class UptimeFold:
    def __init__(self) -> None:
        self.lifecycle = LifecycleFold()
        self.host_failures = 0

    def handlers(self) -> Handlers:
        return {**self.lifecycle.handlers(), HostFailed: self._host_failed}

    def _host_failed(self, _: HostFailed) -> None:
        self.host_failures += 1

    def result(self) -> Metrics:
        spans = self.lifecycle.spans()
        metrics: Metrics = {"cluster.host_failures": float(self.host_failures),
                            "cluster.vm_failures": float(self.lifecycle.failures)}
        if not spans:
            return metrics
        alive = np.array([a for a, _ in spans.values()])
        down = np.array([d for _, d in spans.values()])
        if alive.sum() <= 0:
            return metrics
        metrics["cluster.uptime_pct"] = float(100.0 * (1.0 - down.sum() / alive.sum()))
        measured = alive > 0
        per_vm = 100.0 * (1.0 - down[measured] / alive[measured])
        if per_vm.size:
            metrics["cluster.vm_uptime_p1_pct"] = float(np.percentile(per_vm, 1))
            metrics["cluster.vm_uptime_min_pct"] = float(per_vm.min())
        return metrics


def uptime_metrics(events: EventsByType) -> Metrics:
    return fold_events(UptimeFold(), events)


class IOFold:
    """Peak network and disk use: cluster-wide (mean over up hosts) and on the busiest host."""

    PEAKS: ClassVar[dict[str, str]] = {
        "cluster.peak_network_pct": "network_pct", "cluster.peak_disk_io_pct": "disk_io_pct",
        "cluster.host_network_max_pct": "network_host_max_pct", "cluster.host_disk_io_max_pct": "disk_io_host_max_pct"}

    def __init__(self) -> None:
        self.peaks: dict[str, float] = {}

    def handlers(self) -> Handlers:
        return {ClusterIOSampled: self._sampled}

    def _sampled(self, ev: ClusterIOSampled) -> None:
        for metric, field in self.PEAKS.items():
            self.peaks[metric] = running_max(self.peaks.get(metric), getattr(ev, field))

    def result(self) -> Metrics:
        return dict(self.peaks)


def io_metrics(events: EventsByType) -> Metrics:
    return fold_events(IOFold(), events)


class HostPeakFold:
    """The 99th percentiles over every per-host sample: the columns the runtime gives (a month of
    a thousand hosts is millions of samples; see ``novacron.streaming``)."""

    def __init__(self, columns: ColumnFactory) -> None:
        self.cpu = columns("cluster.host_cpu_pct")
        self.memory = columns("cluster.host_memory_pct")

    def handlers(self) -> Handlers:
        return {HostUtilisationSampled: self._sampled}

    def _sampled(self, ev: HostUtilisationSampled) -> None:
        self.cpu.append(ev.cpu_pct)
        self.memory.append(ev.memory_pct)

    def result(self) -> Metrics:
        if not len(self.cpu):
            return {}
        return {"cluster.host_cpu_p99_pct": self.cpu.percentile(99),
                "cluster.host_memory_p99_pct": self.memory.percentile(99)}


def host_peak_metrics(events: EventsByType) -> Metrics:
    return fold_events(HostPeakFold(InMemoryColumn), events)

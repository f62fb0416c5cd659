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

import heapq
from typing import TYPE_CHECKING

import numpy as np

from novacron.cluster.events import (
    ClusterIOSampled,
    HostFailed,
    HostUtilisationSampled,
    RunFinished,
    VMFailed,
    VMMoved,
    VMPlaced,
    VMRequested,
    VMStopped,
)
from novacron.events import Event

if TYPE_CHECKING:  # novacron.metrics imports this module to list its extractors
    from novacron.metrics import EventsByType, Metrics


def _run_end_s(events: EventsByType, lifecycle: list[Event]) -> float:
    finished = events.of(RunFinished)
    if finished:
        return finished[-1].t_s
    return lifecycle[-1].t_s if lifecycle else 0.0


def vm_alive_and_down_s(events: EventsByType) -> dict[str, tuple[float, float]]:
    """For each VM that ever ran: (seconds alive, seconds down)."""
    streams = [events.of(cls) for cls in (VMPlaced, VMFailed, VMMoved, VMStopped)]
    lifecycle: list[Event] = list(heapq.merge(*streams, key=lambda ev: ev.seq))
    end_s = _run_end_s(events, lifecycle)
    started: dict[str, float] = {}
    stopped: dict[str, float] = {}
    down_since: dict[str, float] = {}
    down_s: dict[str, float] = {}
    for ev in lifecycle:
        vm_id: str = ev.vm_id  # type: ignore[attr-defined]
        kind = type(ev)
        if kind is VMFailed:
            down_since[vm_id] = ev.t_s
            continue
        since = down_since.pop(vm_id, None)
        if since is not None:
            down_s[vm_id] = down_s.get(vm_id, 0.0) + ev.t_s - since
        if kind is VMPlaced:
            started.setdefault(vm_id, ev.t_s)
        elif kind is VMStopped:
            stopped[vm_id] = ev.t_s
    for vm_id, since in down_since.items():
        down_s[vm_id] = down_s.get(vm_id, 0.0) + end_s - since
    return {vm_id: (stopped.get(vm_id, end_s) - start_s, down_s.get(vm_id, 0.0))
            for vm_id, start_s in started.items()}


def uptime_metrics(events: EventsByType) -> Metrics:
    spans = vm_alive_and_down_s(events)
    metrics: Metrics = {"cluster.host_failures": float(len(events.of(HostFailed))),
                        "cluster.vm_failures": float(len(events.of(VMFailed)))}
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


def placement_latency_metrics(events: EventsByType) -> Metrics:
    """Time from a VM's request to its first placement (a Raft-backed control plane's commit
    latency and any leader failover show here; the direct plane decides at once)."""
    requested = {e.vm_id: e.t_s for e in events.of(VMRequested)}
    waits_ms: dict[str, float] = {}
    for placed in events.of(VMPlaced):
        asked = requested.get(placed.vm_id)
        if asked is not None and placed.vm_id not in waits_ms:
            waits_ms[placed.vm_id] = (placed.t_s - asked) * 1000.0
    if not waits_ms:
        return {}
    waits = np.fromiter(waits_ms.values(), dtype=np.float64, count=len(waits_ms))
    return {"cluster.placement_latency_p99_ms": float(np.percentile(waits, 99)),
            "cluster.placement_latency_max_ms": float(waits.max())}


def io_metrics(events: EventsByType) -> Metrics:
    """Peak network and disk use: cluster-wide (mean over up hosts) and on the busiest host."""
    samples = events.of(ClusterIOSampled)
    if not samples:
        return {}
    return {"cluster.peak_network_pct": max(s.network_pct for s in samples),
            "cluster.peak_disk_io_pct": max(s.disk_io_pct for s in samples),
            "cluster.host_network_max_pct": max(s.network_host_max_pct for s in samples),
            "cluster.host_disk_io_max_pct": max(s.disk_io_host_max_pct for s in samples)}


def host_peak_metrics(events: EventsByType) -> Metrics:
    samples = events.of(HostUtilisationSampled)
    if not samples:
        return {}
    cpu = np.fromiter((s.cpu_pct for s in samples), dtype=np.float64, count=len(samples))
    memory = np.fromiter((s.memory_pct for s in samples), dtype=np.float64, count=len(samples))
    return {"cluster.host_cpu_p99_pct": float(np.percentile(cpu, 99)),
            "cluster.host_memory_p99_pct": float(np.percentile(memory, 99))}

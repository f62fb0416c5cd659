"""Telemetry: per-host, per-VM and cluster time series derived from the event log, one event at a time.

Theory of operation
-------------------
A run's log already holds every measurement a dashboard wants; ``TelemetryReducer`` is a fold that
turns each event into the samples it implies, the way a Prometheus exporter would have exposed
them at that moment, so a simulated run and a real one feed the same dashboards. It keeps only
the running totals of its counters (one float per label set), so it streams over a log of any
length.

- *Gauges* are values at the event's time: a host's CPU served, asked and left waiting (CPU ready:
  the contention its VMs see), memory, running VMs, whether it is powered; the cluster's; the
  Raft term a manager entered; a migration's downtime (per VM).
- *Counters* only grow: placements and rejections, host failures, migration bytes (per VM: the
  migration traffic), finished migrations by outcome, leader elections and manager crashes (Raft
  health), cache hits, misses and failures per tier (from the interval statistics).
- *Device gauges* (recorded with injected faults, ``sim.injected_faults``): memory the guests use,
  NIC retransmissions and disk latency per host; heartbeat loss per manager.

Each family is declared once in ``FAMILIES`` (name, kind, help); names carry their unit last
(``_percent``, ``_bytes``, ``_ms``) and counters are named without the ``_total`` that their samples
carry, as in OpenMetrics.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from novacron.anomaly.events import HostDevicesSampled, ManagerHeartbeatsSampled
from novacron.cache.events import CacheStatsSampled
from novacron.cluster.events import (
    ClusterUtilisationSampled,
    HostFailed,
    HostUtilisationSampled,
    VMPlaced,
    VMRejected,
)
from novacron.events import Event
from novacron.migration.events import MigrationFinished, MigrationRoundCompleted
from novacron.raft.events import LeaderElected, ManagerCrashed, TermStarted

Labels = tuple[tuple[str, str], ...]


@dataclass(frozen=True, slots=True, kw_only=True)
class Family:
    """A metric family: its name (without ``_total``), ``gauge`` or ``counter``, and what it measures."""

    name: str
    kind: str
    help: str


def _families(*items: tuple[str, str, str]) -> Mapping[str, Family]:
    return MappingProxyType({name: Family(name=name, kind=kind, help=text) for name, kind, text in items})


FAMILIES = _families(
    ("novacron_host_cpu_percent", "gauge", "CPU served on the host (at most 100)"),
    ("novacron_host_cpu_demand_percent", "gauge", "CPU its VMs asked for (may exceed 100)"),
    ("novacron_host_cpu_ready_percent", "gauge", "share of the CPU demand left waiting (contention)"),
    ("novacron_host_memory_percent", "gauge", "memory allocated on the host"),
    ("novacron_host_vms_running", "gauge", "VMs running on the host"),
    ("novacron_host_powered_on", "gauge", "1 while the host is up and powered"),
    ("novacron_cluster_cpu_percent", "gauge", "CPU served over the up hosts' capacity"),
    ("novacron_cluster_memory_percent", "gauge", "memory allocated over the up hosts' capacity"),
    ("novacron_cluster_hosts_up", "gauge", "hosts up"),
    ("novacron_cluster_vms_running", "gauge", "VMs running in the cluster"),
    ("novacron_vm_placements", "counter", "VMs placed, by host"),
    ("novacron_vm_rejections", "counter", "VM requests rejected"),
    ("novacron_host_failures", "counter", "host failures, by host"),
    ("novacron_migration_bytes", "counter", "bytes sent by pre-copy rounds, by VM (migration traffic)"),
    ("novacron_migrations", "counter", "finished migrations, by outcome"),
    ("novacron_migration_downtime_ms", "gauge", "the last migration's measured downtime, by VM"),
    ("novacron_raft_term", "gauge", "the term a manager last entered"),
    ("novacron_raft_leader_elections", "counter", "leaders elected"),
    ("novacron_raft_manager_crashes", "counter", "manager crashes, by manager"),
    ("novacron_cache_hits", "counter", "cache hits, by tier"),
    ("novacron_cache_misses", "counter", "cache misses, by tier"),
    ("novacron_cache_failures", "counter", "cache operations that failed, by tier"),
    ("novacron_host_memory_used_percent", "gauge", "memory the guests use (not the reservation) on the host"),
    ("novacron_host_nic_retransmit_percent", "gauge", "TCP retransmissions on the host's NIC"),
    ("novacron_host_disk_latency_ms", "gauge", "mean disk I/O latency on the host"),
    ("novacron_manager_heartbeat_loss_percent", "gauge", "heartbeats to the manager left unanswered"),
)


@dataclass(frozen=True, slots=True)
class Sample:
    """One sample of one series: its family, labels, run-relative time and value."""

    family: str
    labels: Labels
    t_s: float
    value: float


class TelemetryReducer:
    """The samples each event implies (see the module docstring); ``observe`` one event at a time."""

    def __init__(self) -> None:
        self._totals: dict[tuple[str, Labels], float] = {}
        self._handlers: dict[type[Event], Callable[[Any], list[tuple[str, Labels, float, bool]]]] = {
            HostUtilisationSampled: _host_sampled, ClusterUtilisationSampled: _cluster_sampled,
            VMPlaced: lambda e: [("novacron_vm_placements", (("host", e.host_id),), 1.0, True)],
            VMRejected: lambda e: [("novacron_vm_rejections", (), 1.0, True)],
            HostFailed: lambda e: [("novacron_host_failures", (("host", e.host_id),), 1.0, True)],
            MigrationRoundCompleted: lambda e: [("novacron_migration_bytes", (("vm", e.vm_id),),
                                                 float(e.round_bytes), True)],
            MigrationFinished: _migration_finished,
            TermStarted: lambda e: [("novacron_raft_term", (("manager", str(e.manager_id)),), float(e.term), False)],
            LeaderElected: lambda e: [("novacron_raft_leader_elections", (), 1.0, True)],
            ManagerCrashed: lambda e: [("novacron_raft_manager_crashes", (("manager", str(e.manager_id)),),
                                        1.0, True)],
            CacheStatsSampled: _cache_sampled,
            HostDevicesSampled: _devices_sampled,
            ManagerHeartbeatsSampled: lambda e: [("novacron_manager_heartbeat_loss_percent",
                                                  (("manager", str(e.manager_id)),), e.heartbeat_loss_pct, False)],
        }

    def observe(self, event: Event) -> list[Sample]:
        handler = self._handlers.get(type(event))
        if handler is None:
            return []
        samples = []
        for family, labels, value, is_increment in handler(event):
            if is_increment:
                key = (family, labels)
                value = self._totals[key] = self._totals.get(key, 0.0) + value
            samples.append(Sample(family, labels, event.t_s, value))
        return samples

    def reduce(self, events: Iterable[Event]) -> Iterator[Sample]:
        for event in events:
            yield from self.observe(event)


def _host_sampled(e: HostUtilisationSampled) -> list[tuple[str, Labels, float, bool]]:
    host = (("host", e.host_id),)
    return [("novacron_host_cpu_percent", host, e.cpu_pct, False),
            ("novacron_host_cpu_demand_percent", host, e.cpu_demand_pct, False),
            ("novacron_host_cpu_ready_percent", host, e.cpu_ready_pct, False),
            ("novacron_host_memory_percent", host, e.memory_pct, False),
            ("novacron_host_vms_running", host, float(e.vms_running), False),
            ("novacron_host_powered_on", host, 1.0 if e.powered_on else 0.0, False)]


def _devices_sampled(e: HostDevicesSampled) -> list[tuple[str, Labels, float, bool]]:
    host = (("host", e.host_id),)
    return [("novacron_host_memory_used_percent", host, e.memory_used_pct, False),
            ("novacron_host_nic_retransmit_percent", host, e.nic_retransmit_pct, False),
            ("novacron_host_disk_latency_ms", host, e.disk_latency_ms, False)]


def _cluster_sampled(e: ClusterUtilisationSampled) -> list[tuple[str, Labels, float, bool]]:
    return [("novacron_cluster_cpu_percent", (), e.cpu_pct, False),
            ("novacron_cluster_memory_percent", (), e.memory_pct, False),
            ("novacron_cluster_hosts_up", (), float(e.hosts_up), False),
            ("novacron_cluster_vms_running", (), float(e.vms_running), False)]


def _migration_finished(e: MigrationFinished) -> list[tuple[str, Labels, float, bool]]:
    out: list[tuple[str, Labels, float, bool]] = [("novacron_migrations", (("outcome", e.outcome),), 1.0, True)]
    if e.downtime_ms == e.downtime_ms:  # NaN: the hypervisor did not measure it; no made-up sample
        out.append(("novacron_migration_downtime_ms", (("vm", e.vm_id),), e.downtime_ms, False))
    return out


def _cache_sampled(e: CacheStatsSampled) -> list[tuple[str, Labels, float, bool]]:
    tier = (("tier", e.cache_tier),)
    return [("novacron_cache_hits", tier, float(e.cache_hits), True),
            ("novacron_cache_misses", tier, float(e.cache_misses), True),
            ("novacron_cache_failures", tier, float(e.cache_failures), True)]

"""Contention, SLA (SLATAH, PDM, SLAV) and energy metrics, computed from the event log alone.

Theory of operation
-------------------
The formulas are in ``novacron.cluster.contention``; this module folds the run's events into them.

- Contention: ``cluster.unserved_cpu_pct`` is the CPU demand no host could serve over all CPU
  demand of the run (from ``ClusterUtilisationSampled``, in cores); ``cluster.cpu_ready_p99_pct``
  is the 99th percentile over per-host samples of hosts carrying VMs of the share of their VMs'
  demand left waiting (CPU ready, as a hypervisor reports it per VM; within a host every VM waits
  the same share under proportional sharing); ``cluster.cpu_ready_max_pct`` is the most any one
  VM waited at one sample (under shares a heavy VM waits more than its host's mean);
  ``cluster.peak_cpu_demand_pct`` is the peak of cluster-wide demand over capacity, the uncapped
  number utilisation used to show.
- Each per-host sample stands for the interval since that host's previous sample, so SLATAH and
  energy integrate over time exactly as the samples describe it.
- SLATAH over hosts active (up, with VMs) for some time; PDM over VMs that ran, migration time
  from ``MigrationFinished.total_time_ms`` (every outcome: the VM degraded while it tried).
- Energy: sum over samples of P(served CPU) x interval for powered-on hosts, x PUE, in kWh.
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING

import numpy as np

from novacron.cluster.contention import FULL_CPU_PCT, pdm, power_w, sample_durations_s, slatah
from novacron.cluster.events import (
    ClusterUtilisationSampled,
    HostUtilisationSampled,
    PowerModelSet,
    RunStarted,
)
from novacron.cluster.uptime import vm_alive_and_down_s
from novacron.migration.events import MigrationFinished

if TYPE_CHECKING:  # novacron.metrics imports this module to list its extractors
    from novacron.metrics import EventsByType, Metrics

J_PER_KWH = 3.6e6


def contention_metrics(events: EventsByType) -> Metrics:
    cluster = events.of(ClusterUtilisationSampled)
    metrics: Metrics = {}
    if cluster:
        demand = sum(s.cpu_demand_cores for s in cluster)
        unserved = sum(s.cpu_unserved_cores for s in cluster)
        metrics["cluster.peak_cpu_demand_pct"] = max(s.cpu_demand_pct for s in cluster)
        if demand > 0:
            metrics["cluster.unserved_cpu_pct"] = 100.0 * unserved / demand
    carrying = [s for s in events.of(HostUtilisationSampled) if s.vms_running > 0]
    if carrying:
        ready = np.array([s.cpu_ready_pct for s in carrying])
        metrics["cluster.cpu_ready_p99_pct"] = float(np.percentile(ready, 99))
        metrics["cluster.cpu_ready_max_pct"] = max(s.cpu_ready_max_pct for s in carrying)
    return metrics


def _start_s(events: EventsByType) -> float:
    started = events.of(RunStarted)
    return started[0].t_s if started else 0.0


def sla_energy_metrics(events: EventsByType) -> Metrics:
    samples = events.of(HostUtilisationSampled)
    if not samples:
        return {}
    codes: dict[str, int] = {}
    host = np.fromiter((codes.setdefault(s.host_id, len(codes)) for s in samples), dtype=np.int64, count=len(samples))
    t_s = np.fromiter((s.t_s for s in samples), dtype=np.float64, count=len(samples))
    cpu = np.fromiter((s.cpu_pct for s in samples), dtype=np.float64, count=len(samples))
    on = np.fromiter((s.powered_on for s in samples), dtype=bool, count=len(samples))
    has_vms = np.fromiter((s.vms_running > 0 for s in samples), dtype=bool, count=len(samples))
    durations = sample_durations_s(host, t_s, _start_s(events))
    metrics: Metrics = {}
    share = slatah(host, durations, on & has_vms, cpu >= FULL_CPU_PCT)
    if share is not None:
        metrics["cluster.slatah_pct"] = 100.0 * share
        degradation = _pdm(events)
        if degradation is not None:
            metrics["cluster.pdm_pct"] = 100.0 * degradation
            metrics["cluster.slav_pct"] = 100.0 * share * degradation
    model = events.of(PowerModelSet)
    if model:
        it_j = float(np.sum(power_w(cpu, model[-1].watts_at_pct) * durations * on))
        metrics["cluster.it_energy_kwh"] = it_j / J_PER_KWH
        metrics["cluster.energy_kwh"] = it_j * model[-1].pue / J_PER_KWH
    return metrics


def _pdm(events: EventsByType) -> float | None:
    spans = vm_alive_and_down_s(events)
    migrating_s: dict[str, float] = defaultdict(float)
    for m in events.of(MigrationFinished):
        migrating_s[m.vm_id] += m.total_time_ms / 1000.0
    alive = np.array([a for a, _ in spans.values()], dtype=np.float64)
    migrating = np.array([migrating_s.get(vm_id, 0.0) for vm_id in spans], dtype=np.float64)
    return pdm(migrating, alive)

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
- Energy: sum over samples of P(served CPU) x interval for powered-on hosts, x PUE, in kWh,
  summed exactly rounded (``novacron.streaming.ExactSum``), with the power model in force when
  the samples were folded (the inventory sets it once, before the first sample).
- Everything folds one sample at a time (per-host state only); the p99 of CPU ready goes to the
  column the runtime gives.
"""

from __future__ import annotations

from array import array
from collections import defaultdict
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from novacron.cluster.contention import FULL_CPU_PCT, pdm, power_w
from novacron.cluster.events import (
    ClusterUtilisationSampled,
    HostUtilisationSampled,
    PowerModelSet,
    RunStarted,
)
from novacron.cluster.uptime import LifecycleFold
from novacron.events import Event
from novacron.migration.events import MigrationFinished
from novacron.streaming import ColumnFactory, EventsByType, ExactSum, InMemoryColumn, Metrics, fold_events, running_max

J_PER_KWH = 3.6e6
Handlers = Mapping[type[Event], Callable[[Any], None]]


class ContentionFold:
    def __init__(self, columns: ColumnFactory) -> None:
        self.demand: list[float] = []
        self.unserved: list[float] = []
        self.peak_demand: float | None = None
        self.ready = columns("cluster.cpu_ready_pct")
        self.ready_max: float | None = None

    def handlers(self) -> Handlers:
        return {ClusterUtilisationSampled: self._cluster, HostUtilisationSampled: self._host}

    def _cluster(self, s: ClusterUtilisationSampled) -> None:
        # one per sampling interval: kept, so the sums are Python's sum over the series as before
        self.demand.append(s.cpu_demand_cores)
        self.unserved.append(s.cpu_unserved_cores)
        self.peak_demand = running_max(self.peak_demand, s.cpu_demand_pct)

    def _host(self, s: HostUtilisationSampled) -> None:
        if s.vms_running > 0:
            self.ready.append(s.cpu_ready_pct)
            self.ready_max = running_max(self.ready_max, s.cpu_ready_max_pct)

    def result(self) -> Metrics:
        metrics: Metrics = {}
        if self.peak_demand is not None:
            demand, unserved = sum(self.demand), sum(self.unserved)
            metrics["cluster.peak_cpu_demand_pct"] = self.peak_demand
            if demand > 0:
                metrics["cluster.unserved_cpu_pct"] = 100.0 * unserved / demand
        if self.ready_max is not None:
            metrics["cluster.cpu_ready_p99_pct"] = self.ready.percentile(99)
            metrics["cluster.cpu_ready_max_pct"] = self.ready_max
        return metrics


def contention_metrics(events: EventsByType) -> Metrics:
    return fold_events(ContentionFold(InMemoryColumn), events)


class SlaEnergyFold:
    """Per host: the time of its last sample, its active and full seconds (summed in log order,
    as ``numpy.bincount`` summed them); energy terms buffered and summed exactly; the VMs' lives
    and migration seconds for PDM."""

    BUFFER = 1 << 14

    def __init__(self) -> None:
        self.start_s = 0.0
        self.started = False
        self.last_s: dict[str, float] = {}
        self.active_s: dict[str, float] = {}
        self.full_s: dict[str, float] = {}
        self.lifecycle = LifecycleFold()
        self.migrating_s: dict[str, float] = defaultdict(float)
        self.model: PowerModelSet | None = None
        self.cpu, self.on_s = array("d"), array("d")
        self.it_j = ExactSum()
        self.sampled = False

    def handlers(self) -> Handlers:
        return {**self.lifecycle.handlers(), RunStarted: self._run_started, PowerModelSet: self._model,
                MigrationFinished: self._migrated, HostUtilisationSampled: self._sampled}

    def _run_started(self, ev: RunStarted) -> None:
        if not self.started:
            self.started, self.start_s = True, ev.t_s

    def _model(self, ev: PowerModelSet) -> None:
        self._flush()
        self.model = ev

    def _migrated(self, m: MigrationFinished) -> None:
        self.migrating_s[m.vm_id] += m.total_time_ms / 1000.0

    def _sampled(self, s: HostUtilisationSampled) -> None:
        self.sampled = True
        host = s.host_id
        duration_s = s.t_s - self.last_s.get(host, self.start_s)
        self.last_s[host] = s.t_s
        active = s.powered_on and s.vms_running > 0
        self.active_s[host] = self.active_s.get(host, 0.0) + duration_s * active
        self.full_s[host] = self.full_s.get(host, 0.0) + duration_s * (active and s.cpu_pct >= FULL_CPU_PCT)
        self.cpu.append(s.cpu_pct)
        self.on_s.append(duration_s * s.powered_on)
        if len(self.cpu) >= self.BUFFER:
            self._flush()

    def _flush(self) -> None:
        if self.model is not None and self.cpu:
            cpu = np.frombuffer(self.cpu, dtype=np.float64)
            self.it_j.add(power_w(cpu, self.model.watts_at_pct) * np.frombuffer(self.on_s, dtype=np.float64))
        self.cpu, self.on_s = array("d"), array("d")

    def result(self) -> Metrics:
        if not self.sampled:
            return {}
        metrics: Metrics = {}
        active = np.fromiter(self.active_s.values(), dtype=np.float64, count=len(self.active_s))
        full = np.fromiter(self.full_s.values(), dtype=np.float64, count=len(self.full_s))
        counted = active > 0  # SLATAH: mean over hosts active for some time of full time / active time
        if counted.any():
            share = float(np.mean(full[counted] / active[counted]))
            metrics["cluster.slatah_pct"] = 100.0 * share
            degradation = self._pdm()
            if degradation is not None:
                metrics["cluster.pdm_pct"] = 100.0 * degradation
                metrics["cluster.slav_pct"] = 100.0 * share * degradation
        if self.model is not None:
            self._flush()
            it_j = self.it_j.total()
            metrics["cluster.it_energy_kwh"] = it_j / J_PER_KWH
            metrics["cluster.energy_kwh"] = it_j * self.model.pue / J_PER_KWH
        return metrics

    def _pdm(self) -> float | None:
        spans = self.lifecycle.spans()
        alive = np.array([a for a, _ in spans.values()], dtype=np.float64)
        migrating = np.array([self.migrating_s.get(vm_id, 0.0) for vm_id in spans], dtype=np.float64)
        return pdm(migrating, alive)


def sla_energy_metrics(events: EventsByType) -> Metrics:
    return fold_events(SlaEnergyFold(), events)

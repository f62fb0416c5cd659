"""Injected faults with ground-truth labels: memory leaks, noisy neighbours, degraded NICs, slow disks,
flapping managers; and the device telemetry that shows them.

Theory of operation
-------------------
``FaultInjector`` draws a schedule from the run's seed (stream ``faults.injected``): ``per_kind``
faults of each kind of ``FAULT_KINDS``, each starting uniformly in ``[first_fault_s, last_fault_s)``
and lasting uniformly in ``[min_duration_s, max_duration_s]``. At its start a fault takes a subject
-- a host, or a manager -- that has no other fault then (so every labelled fault has one cause;
none free: the fault is skipped), records ``FaultInjected`` and changes the model; at its planned
end, or when an action removed its cause, it records ``FaultCleared`` (``expired`` /
``remediated``).

Every ``sample_s`` (the scenario's demand update) it records the device telemetry the cluster
model does not: ``HostDevicesSampled`` per host and ``ManagerHeartbeatsSampled`` per manager,
from simple models with noise drawn from their own stream (``faults.telemetry``):

- memory the guests use: each VM uses a share of its reservation drawn once (40-80 %), with 2 %
  noise, plus what it leaked. A *memory leak* adds ``leak_gib_per_h`` to one VM of the host with
  at least ``LEAKING_VM_MIN_GIB``, up to its whole reservation (memory is reserved, so the guest
  swaps; the host does not);
- a *noisy neighbour*: the host's VM with the most vCPUs runs them at 100 %
  (``ClusterModel.override_utilisation``); the model shares the host's cores among its VMs with
  that demand, which shows in the ``HostUtilisationSampled`` the model records anyway;
- NIC retransmissions: 0.05 % x lognormal noise; a *degraded NIC* (a failing transceiver, a duplex
  mismatch) adds ``nic_retransmit_pct``;
- disk latency: ``disk_base_ms x (1 + rho)`` with the host's served CPU share as the load rho (I/O
  follows CPU activity in the model), x lognormal noise; a *slow disk* (a failing drive retrying
  reads, a degraded RAID) multiplies it by ``slow_disk_factor``;
- heartbeat loss per manager: 0.1 % x noise. A *flapping manager* is down ``flap_down_s`` of every
  ``flap_period_s``; each crash is also an ``InjectedFaultStarted``/``Ended`` ``manager_crash``, the
  hook a Raft-backed control plane follows, and its loss is the share of the last
  ``LOSS_WINDOW_SAMPLES`` intervals it was down.

With ``failure_pct`` above 0, a degraded NIC or a slow disk that reaches its planned end gives
out with that chance and takes its host down for ``repair_s`` (``HostFailed``, its VMs fail and
restart elsewhere): the host failures a health score should see coming (``sim.health``).

The actions that remove a cause are here (``restart_vm``, ``throttle_vm``, ``replace_manager``),
with what an operator's tools would read to aim them (``top_memory_growth_vm``, ``top_cpu_vm``:
a guest agent's and ``top``'s view); draining a host moves VMs, which is the responder's
(``sim.anomaly_response``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator
from dataclasses import dataclass, field

import numpy as np
import simpy

from novacron.anomaly.events import (
    FAULT_KINDS,
    FaultCleared,
    FaultInjected,
    HostDevicesSampled,
    ManagerHeartbeatsSampled,
)
from novacron.cluster.events import HostUtilisationSampled, InjectedFaultEnded, InjectedFaultStarted
from novacron.config import ConfigError
from novacron.scenario import fault_managers_error
from sim.cluster_model import RUNNING, ClusterModel
from sim.context import SimContext

LEAKING_VM_MIN_GIB = 16.0
LOSS_WINDOW_SAMPLES = 2
"""Heartbeat loss is measured over the last two sample intervals (a rate over 10 minutes at 5-minute
samples), so a manager that is down 90 s every 10 minutes shows in every sample, not every other."""


@dataclass(frozen=True, slots=True, kw_only=True)
class InjectedFaultsConfig:
    per_kind: int = 4
    first_fault_s: float = 38 * 3600.0
    """After a day and a half: a daily-seasonal detector needs a day of history, then some surprises."""
    last_fault_s: float = 90 * 3600.0
    min_duration_s: float = 3600.0
    max_duration_s: float = 4 * 3600.0
    leak_gib_per_h: float = 4.0
    nic_retransmit_pct: float = 2.0
    disk_base_ms: float = 1.5
    slow_disk_factor: float = 5.0
    flap_period_s: float = 600.0
    flap_down_s: float = 90.0
    replace_manager_s: float = 600.0
    """How long replacing a flapping manager takes (a new VM, a snapshot install)."""
    failure_pct: float = 0.0
    """The chance that a degraded NIC or a slow disk gives out at its planned end and takes its
    host down (a failing transceiver or drive is the usual precursor of a host failure)."""
    repair_s: float = 4 * 3600.0
    """How long a host that failed that way stays down."""


@dataclass(slots=True)
class ActiveFault:
    fault_id: str
    kind: str
    subject: str
    host: int
    """The host's index; -1 for a manager."""
    vm: int
    """The VM's row in the model's table; -1 for a host's or a manager's fault."""
    manager_id: int = 0
    down: list[tuple[float, float]] = field(default_factory=list)
    """A flapping manager's down intervals."""


class FaultInjector:
    """Schedules the faults, samples device telemetry and offers the actions (module docstring)."""

    def __init__(self, ctx: SimContext, model: ClusterModel, cfg: InjectedFaultsConfig) -> None:
        if not 0 < cfg.min_duration_s <= cfg.max_duration_s or not cfg.first_fault_s < cfg.last_fault_s:
            raise ValueError(f"injected faults: durations [{cfg.min_duration_s}, {cfg.max_duration_s}] s and window "
                             f"[{cfg.first_fault_s}, {cfg.last_fault_s}) s: allowed: 0 < min <= max, first < last")
        if error := fault_managers_error(ctx.scenario, injected=True):
            raise ConfigError(error)
        self.ctx, self.model, self.cfg = ctx, model, cfg
        self.sample_s = ctx.scenario.workload.demand_update_s
        self.managers = [f"manager-{k}" for k in range(1, ctx.scenario.faults.managers + 1)]
        self.active: dict[str, ActiveFault] = {}
        self._rng = ctx.seeds.numpy("faults.injected")
        self._failures = ctx.seeds.numpy("faults.injected.failures")
        self._noise = ctx.seeds.numpy("faults.telemetry")
        self._share = np.zeros(0)
        self._leaked_gib = np.zeros(0)
        self._cpu_pct = np.zeros(len(model.store.host_ids))
        ctx.log.subscribe(HostUtilisationSampled, self._on_utilisation)

    def start(self) -> None:
        self.ctx.env.process(self._schedule())
        self.ctx.env.process(self._sample_forever())

    # --- the schedule -------------------------------------------------------------------------

    def _schedule(self) -> Generator[simpy.Event, None, None]:
        cfg, rng, env = self.cfg, self._rng, self.ctx.env
        plan = sorted((float(rng.uniform(cfg.first_fault_s, cfg.last_fault_s)), kind,
                       float(rng.uniform(cfg.min_duration_s, cfg.max_duration_s)))
                      for kind in FAULT_KINDS for _ in range(cfg.per_kind))
        for number, (start_s, kind, duration_s) in enumerate(plan):
            if start_s > env.now:
                yield env.timeout(start_s - env.now)
            fault = self._begin(f"fault-{number:03d}", kind, duration_s)
            if fault is not None:
                env.timeout(duration_s).callbacks.append(self._expiry(fault.fault_id))

    def _expiry(self, fault_id: str) -> Callable[[simpy.Event], None]:
        return lambda _ev: self.clear(fault_id, "expired")

    def _busy(self) -> set[str]:
        return {f.subject for f in self.active.values()}

    def _begin(self, fault_id: str, kind: str, duration_s: float) -> ActiveFault | None:
        fault = self._pick_manager(fault_id) if kind == "flapping_manager" else self._pick_host(fault_id, kind)
        if fault is None:
            return None
        self.active[fault_id] = fault
        m = self.model
        vm_id = m.vms.ids[fault.vm] if fault.vm >= 0 else ""
        self.ctx.recorder.emit(FaultInjected, source="faults", fault_id=fault_id, fault_kind=kind,
                               fault_target=vm_id or fault.subject,
                               host_id=fault.subject if fault.host >= 0 else "", vm_id=vm_id,
                               planned_duration_s=duration_s)
        if kind == "noisy_neighbour":
            m.override_utilisation(vm_id, 1.0)
        elif kind == "flapping_manager":
            self.ctx.env.process(self._flap(fault))
        return fault

    def _pick_manager(self, fault_id: str) -> ActiveFault | None:
        free = [name for name in self.managers if name not in self._busy()]
        if not free:
            return None
        name = free[int(self._rng.integers(len(free)))]
        return ActiveFault(fault_id, "flapping_manager", name, -1, -1, manager_id=int(name.rsplit("-", 1)[1]))

    def _pick_host(self, fault_id: str, kind: str) -> ActiveFault | None:
        m, busy = self.model, self._busy()
        candidates = [h for h, host_id in enumerate(m.store.host_ids)
                      if m.store.host_up[h] and host_id not in busy and m.vms.on_host(h).size > 0]
        if not candidates:
            return None
        host = candidates[int(self._rng.integers(len(candidates)))]
        vm = -1
        if kind in ("memory_leak", "noisy_neighbour"):
            rows = m.vms.on_host(host)
            # A leak is in any VM with room to grow (in a small one the guest's OOM killer ends it at
            # once); a noisy neighbour is the biggest (a small one is lost in the host's noise).
            roomy = rows[m.vms.memory_gib[rows] >= LEAKING_VM_MIN_GIB]
            if kind == "memory_leak" and roomy.size == 0:
                return None
            vm = int(roomy[int(self._rng.integers(roomy.size))] if kind == "memory_leak"
                     else rows[int(np.argmax(m.vms.cpu_cores[rows]))])
        return ActiveFault(fault_id, kind, m.store.host_ids[host], host, vm)

    def clear(self, fault_id: str, cleared_by: str) -> None:
        fault = self.active.pop(fault_id, None)
        if fault is None:
            return
        if fault.kind == "noisy_neighbour" and cleared_by == "expired":
            self.model.override_utilisation(self.model.vms.ids[fault.vm], None)
        self.ctx.recorder.emit(FaultCleared, source="faults", fault_id=fault_id, fault_kind=fault.kind,
                               fault_target=self.model.vms.ids[fault.vm] if fault.vm >= 0 else fault.subject,
                               cleared_by=cleared_by)
        if (fault.kind in ("degraded_nic", "slow_disk") and cleared_by == "expired" and self.cfg.failure_pct > 0
                and self._failures.random() * 100 < self.cfg.failure_pct):
            self._give_out(fault)

    def _give_out(self, fault: ActiveFault) -> None:
        """The degraded part failed: the host goes down, and comes back after ``repair_s``."""
        if self.model.fail_host(fault.host, f"{fault.kind} gave out"):
            host = fault.host
            self.ctx.env.timeout(self.cfg.repair_s).callbacks.append(lambda _ev: self.model.recover_host(host))

    def _flap(self, fault: ActiveFault) -> Generator[simpy.Event, None, None]:
        env, cfg, emit = self.ctx.env, self.cfg, self.ctx.recorder.emit
        while fault.fault_id in self.active:
            yield env.timeout(cfg.flap_period_s - cfg.flap_down_s)
            if fault.fault_id not in self.active:
                return
            emit(InjectedFaultStarted, source="faults", fault_kind="manager_crash", fault_target=fault.subject,
                 planned_duration_s=cfg.flap_down_s)
            fault.down.append((float(env.now), float(env.now) + cfg.flap_down_s))
            yield env.timeout(cfg.flap_down_s)
            emit(InjectedFaultEnded, source="faults", fault_kind="manager_crash", fault_target=fault.subject)

    # --- actions ------------------------------------------------------------------------------

    def _faults_of_vm(self, vm_id: str, kind: str) -> list[ActiveFault]:
        row = self.model.vms.index[vm_id]
        return [f for f in self.active.values() if f.kind == kind and f.vm == row]

    def restart_vm(self, vm_id: str) -> float:
        """Restart a VM's guest: its leaked memory is freed (and its leak, if any, is gone); returns the GiB."""
        row = self.model.vms.index[vm_id]
        self._grow_vm_columns()
        freed_gib = float(self._leaked_gib[row])
        self._leaked_gib[row] = 0.0
        for fault in self._faults_of_vm(vm_id, "memory_leak"):
            self.clear(fault.fault_id, "remediated")
        return freed_gib

    def throttle_vm(self, vm_id: str) -> None:
        """Cap a VM's CPU at its usual level (a cgroup quota), for the rest of the run."""
        row = self.model.vms.index[vm_id]
        self.model.override_utilisation(vm_id, float(self.model.vms.mean_utilisation[row]))
        for fault in self._faults_of_vm(vm_id, "noisy_neighbour"):
            self.clear(fault.fault_id, "remediated")

    def replace_manager(self, name: str) -> Generator[simpy.Event, None, bool]:
        """Replace a manager (``replace_manager_s``); a flapping one stops flapping. True if it was."""
        yield self.ctx.env.timeout(self.cfg.replace_manager_s)
        flapping = [f for f in self.active.values() if f.kind == "flapping_manager" and f.subject == name]
        for fault in flapping:
            self.clear(fault.fault_id, "remediated")
        return bool(flapping)

    def top_memory_growth_vm(self, host: int) -> str | None:
        """The VM on ``host`` whose memory use grew most over its usual share (a guest agent's view)."""
        rows = self.model.vms.on_host(host)
        if rows.size == 0:
            return None
        self._grow_vm_columns()
        return self.model.vms.ids[int(rows[int(np.argmax(self._leaked_gib[rows]))])]

    def top_cpu_vm(self, host: int) -> str | None:
        """The VM on ``host`` using the most cores on average (``top``'s view)."""
        v = self.model.vms
        rows = v.on_host(host)
        if rows.size == 0:
            return None
        share = np.where(np.isnan(v.observed_utilisation[rows]), v.mean_utilisation[rows], v.observed_utilisation[rows])
        return v.ids[int(rows[int(np.argmax(share * v.cpu_cores[rows]))])]

    # --- telemetry ----------------------------------------------------------------------------

    def _on_utilisation(self, ev: HostUtilisationSampled) -> None:
        self._cpu_pct[self.model.store.host_index[ev.host_id]] = ev.cpu_pct

    def _grow_vm_columns(self) -> None:
        added = self.model.vms.size - self._share.size
        if added > 0:
            self._share = np.concatenate([self._share, self._noise.uniform(0.4, 0.8, size=added)])
            self._leaked_gib = np.concatenate([self._leaked_gib, np.zeros(added)])

    def _sample_forever(self) -> Generator[simpy.Event, None, None]:
        while True:
            yield self.ctx.env.timeout(self.sample_s)
            self._leak()
            self._sample_hosts()
            self._sample_managers()

    def _leak(self) -> None:
        self._grow_vm_columns()
        v = self.model.vms
        for fault in self.active.values():
            if fault.kind == "memory_leak":
                room = float(v.memory_gib[fault.vm] * (1.0 - self._share[fault.vm]))
                grown = self._leaked_gib[fault.vm] + self.cfg.leak_gib_per_h * self.sample_s / 3600.0
                self._leaked_gib[fault.vm] = min(grown, room)

    def _sample_hosts(self) -> None:
        m, cfg, noise = self.model, self.cfg, self._noise
        v, hosts = m.vms, len(m.store.host_ids)
        running = np.flatnonzero(v.status[: v.size] == RUNNING)
        used = v.memory_gib[running] * self._share[running] * noise.normal(1.0, 0.02, size=running.size)
        used += self._leaked_gib[running]
        memory_pct = 100.0 * np.bincount(v.host[running], weights=used, minlength=hosts) / m.store.memory_capacity_gib
        retransmit = 0.05 * noise.lognormal(0.0, 0.3, size=hosts)
        latency = cfg.disk_base_ms * (1.0 + self._cpu_pct / 100.0) * noise.lognormal(0.0, 0.15, size=hosts)
        for fault in self.active.values():
            if fault.kind == "degraded_nic":
                retransmit[fault.host] += cfg.nic_retransmit_pct * float(noise.lognormal(0.0, 0.3))
            elif fault.kind == "slow_disk":
                latency[fault.host] *= cfg.slow_disk_factor
        for h, host_id in enumerate(m.store.host_ids):
            self.ctx.recorder.emit(HostDevicesSampled, source=host_id, host_id=host_id,
                                   memory_used_pct=float(memory_pct[h]), nic_retransmit_pct=float(retransmit[h]),
                                   disk_latency_ms=float(latency[h]))

    def _sample_managers(self) -> None:
        now = float(self.ctx.env.now)
        since = now - LOSS_WINDOW_SAMPLES * self.sample_s
        down_s = dict.fromkeys(self.managers, 0.0)
        for fault in self.active.values():
            if fault.kind == "flapping_manager":
                down_s[fault.subject] += sum(max(0.0, min(end, now) - max(start, since)) for start, end in fault.down)
                fault.down = [(s, e) for s, e in fault.down if e > since + self.sample_s]
        for k, name in enumerate(self.managers, start=1):
            loss_pct = min(100.0, 0.1 * float(self._noise.lognormal(0.0, 0.5))
                           + 100.0 * down_s[name] / (LOSS_WINDOW_SAMPLES * self.sample_s))
            self.ctx.recorder.emit(ManagerHeartbeatsSampled, source=name, manager_id=k,
                                   heartbeat_loss_pct=loss_pct if math.isfinite(loss_pct) else 100.0)

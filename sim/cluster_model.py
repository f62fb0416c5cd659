"""The capacity-planning cluster model: topology, VM lifecycles, demand and failures, at scale.

Theory of operation
-------------------
Hosts are rows of the run's ``AllocationStore`` (capacity and allocation, owned by the control
plane), placed in a failure-domain tree: ``hosts_per_rack`` hosts per rack, ``racks_per_zone`` racks per zone,
``zones_per_datacenter`` zones per datacenter (``HostLocated`` events record it). VMs are rows of
a columnar ``VMTable`` (numpy arrays that double when full), so per-tick work is vectorised.

Three kinds of SimPy activity drive the model, none of them one process per VM:

- one *arrivals* process pulls ``VMSpec`` from the workload stream (a generator: a trace is
  never loaded whole) and asks the control plane to place each VM; a VM with a finite lifetime
  gets a departure timeout whose callback stops it — an event, not a process;
- one *demand* process wakes every ``demand_update_s`` and computes every running VM's CPU use in
  a few numpy operations (diurnal sinusoid x gamma noise x bursts), aggregates it per host with
  ``bincount``, shares each overloaded host's physical cores among its VMs
  (``novacron.cluster.contention``: proportional or by shares; the rest of the demand waits as
  CPU ready time), and records one ``HostUtilisationSampled`` per host (served CPU capped at
  100 %, the demand and the ready share beside it), one
  ``ClusterUtilisationSampled`` and one ``ClusterIOSampled`` (network and disk, which follow
  CPU activity scaled by each VM's I/O intensity): per-VM demand is not logged (50,000 VMs x 288
  ticks would be 14 million events); per-host samples are. With ``workload.trace_readings_path`` the
  process first streams the trace's CPU readings up to the current time into the VM table
  (a merge join on time: readings are never loaded whole), and a VM's measured CPU replaces its
  synthetic demand;
- fault processes (``faults.py``) crash hosts and racks; the model records ``VMFailed`` for the
  VMs that ran there and, after the restart delay, asks the control plane to restart them
  elsewhere. VMs no host can take wait and are retried whenever a host recovers.

Every allocation change goes through the ``ControlPlane`` seam (``control_plane.py``). Its
decisions are SimPy events, acted on in callbacks, so a control plane may take time to decide (a
replicated log's commit); a VM whose owner deletes it while a decision is in flight leaves as
soon as the decision lands, and a VM placed on a host that crashed meanwhile fails at once.
Memory is reserved (not overcommitted), so memory never contends and there is no swap to record;
CPU may be overcommitted by ``cpu_overcommit`` and then contends.

With ``[workload] kinds`` each VM has a workload kind (``novacron.cluster.kinds.kind_of``): its
request reserves its memory plus the kind's overhead, and once placed (or restarted elsewhere) it
stays requested -- its room held, no CPU demand yet -- for the kind's ``start_s`` before it runs
(``VMStarted``); its lifetime counts from then. A host that crashes while a VM starts on it fails
that VM when the start ends. Without kinds, a VM runs at once (the model before kinds).

The model owns each VM's lifecycle status (the transition table of ``novacron.cluster.state``,
kept as integer codes in a numpy column for the vectorised demand update); the VM's host column
is a projection of the control plane's ``VMPlaced``/``VMMoved`` events (log subscription).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import simpy

from novacron.cluster.contention import share_cpu
from novacron.cluster.events import (
    ClusterIOSampled,
    ClusterUtilisationSampled,
    HostFailed,
    HostLocated,
    HostRecovered,
    HostUtilisationSampled,
    PowerModelSet,
    VMFailed,
    VMMoved,
    VMPlaced,
    VMRequested,
    VMStarted,
    VMStopped,
)
from novacron.cluster.kinds import WorkloadKind, kind_of
from novacron.cluster.state import VM_LIFECYCLE, VMStatus
from novacron.scheduler.events import HostPowerChanged
from sim.allocation import AllocationStore, VMRequest, follow_allocations
from sim.context import SimContext
from sim.pools import PoolContention, pool_tree
from sim.workloads import VMSpec, WorkloadItem, workload_for
from sim.workloads.traces import read_azure_cpu_readings_series

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

STATUS_ORDER: tuple[VMStatus, ...] = (VMStatus.REQUESTED, VMStatus.RUNNING, VMStatus.FAILED, VMStatus.STOPPED,
                                       VMStatus.REJECTED)
"""The VM lifecycle's states as the integer codes of ``VMTable.status`` (index = code)."""
PENDING, RUNNING, FAILED, STOPPED, REJECTED = range(len(STATUS_ORDER))
LEGAL_TRANSITIONS: frozenset[tuple[int, int]] = frozenset(
    (src, dst) for src, a in enumerate(STATUS_ORDER) for dst, b in enumerate(STATUS_ORDER)
    if b in VM_LIFECYCLE.allowed(a))
"""Code pairs the transition table allows; ``VMTable.set_status`` checks every change against it."""
NOISE_SHAPE = 16.0
"""Gamma shape of per-update demand noise (mean 1, coefficient of variation 1/sqrt(16) = 25 %)."""
DAY_S = 86400.0


@dataclass
class Topology:
    rack_of: IntArray
    zone_of: IntArray
    datacenter_of: IntArray

    @classmethod
    def build(cls, hosts: int, hosts_per_rack: int, racks_per_zone: int, zones_per_datacenter: int) -> Topology:
        rack = np.arange(hosts, dtype=np.int64) // hosts_per_rack
        zone = rack // racks_per_zone
        return cls(rack_of=rack, zone_of=zone, datacenter_of=zone // zones_per_datacenter)

    @property
    def racks(self) -> int:
        return int(self.rack_of.max()) + 1

    @property
    def zones(self) -> int:
        return int(self.zone_of.max()) + 1

    def hosts_in_rack(self, rack: int) -> IntArray:
        return np.flatnonzero(self.rack_of == rack)


@dataclass(frozen=True, slots=True)
class HostCPU:
    """Per-host CPU at one demand update, in cores: what the VMs got, what they asked, what there is."""

    served_cores: FloatArray
    demand_cores: FloatArray
    physical_cores: FloatArray
    worst_ready_pct: FloatArray
    """Per host, the largest share of one VM's demand left waiting."""


def _worst_ready_pct(wanted: FloatArray, served: FloatArray, vm_hosts: IntArray, hosts: int) -> FloatArray:
    worst = np.zeros(hosts)
    waiting = np.flatnonzero(served < wanted)
    if waiting.size:  # only contended hosts pay for the scatter-max
        np.maximum.at(worst, vm_hosts[waiting], 100.0 * (1.0 - served[waiting] / wanted[waiting]))
    return worst


class VMTable:
    """Every VM the run has seen, as columns; row ``i`` is the ``i``-th VM requested."""

    COLUMNS: tuple[tuple[str, type], ...] = (
        ("cpu_cores", np.float64), ("memory_gib", np.float64), ("host", np.int64), ("status", np.int8),
        ("mean_utilisation", np.float64), ("amplitude", np.float64), ("phase_days", np.float64),
        ("burst_probability", np.float64), ("io_intensity", np.float64), ("observed_utilisation", np.float64),
    )

    def __init__(self, capacity: int = 1024) -> None:
        self.ids: list[str] = []
        self.index: dict[str, int] = {}
        self.size = 0
        self.cpu_cores = np.zeros(capacity)
        self.memory_gib = np.zeros(capacity)
        self.host = np.full(capacity, -1, dtype=np.int64)
        self.status = np.zeros(capacity, dtype=np.int8)
        self.mean_utilisation = np.zeros(capacity)
        self.amplitude = np.zeros(capacity)
        self.phase_days = np.zeros(capacity)
        self.burst_probability = np.zeros(capacity)
        self.io_intensity = np.zeros(capacity)
        self.observed_utilisation = np.full(capacity, np.nan)
        """The VM's last measured CPU (from a readings trace); NaN = use the synthetic model."""

    def add(self, spec: VMSpec) -> int:
        if self.size == len(self.host):
            self._grow()
        i = self.size
        if spec.vm_id in self.index:
            raise ValueError(f"VM {spec.vm_id!r} requested twice; VM ids must be unique in a workload")
        self.index[spec.vm_id] = i
        self.ids.append(spec.vm_id)
        self.cpu_cores[i] = spec.cpu_cores
        self.memory_gib[i] = spec.memory_gib
        self.mean_utilisation[i] = spec.mean_cpu_utilisation
        self.amplitude[i] = spec.diurnal_amplitude
        self.phase_days[i] = spec.diurnal_phase_days
        self.burst_probability[i] = spec.burst_probability
        self.io_intensity[i] = spec.io_intensity
        self.size += 1
        return i

    def _grow(self) -> None:
        for name, _ in self.COLUMNS:
            old = getattr(self, name)
            fill = {"host": -1, "observed_utilisation": np.nan}.get(name, 0)
            new = np.full(2 * len(old), fill, dtype=old.dtype)
            new[: len(old)] = old
            setattr(self, name, new)

    def set_status(self, i: int, status: int) -> None:
        """Move VM ``i`` to ``status``; raises ``IllegalTransition`` unless the table allows it."""
        current = int(self.status[i])
        if (current, status) not in LEGAL_TRANSITIONS:
            VM_LIFECYCLE.check(STATUS_ORDER[current], STATUS_ORDER[status])
        self.status[i] = status

    def vm_request(self, i: int) -> VMRequest:
        return VMRequest(self.ids[i], int(self.cpu_cores[i]), float(self.memory_gib[i]))

    def on_host(self, host: int) -> IntArray:
        n = self.size
        return np.flatnonzero((self.host[:n] == host) & (self.status[:n] == RUNNING))


class ReadingsFeed:
    """Streams Azure CPU readings (time-ordered) into the VM table as the run's clock passes them."""

    def __init__(self, path: str) -> None:
        if not Path(path).exists():
            raise FileNotFoundError(f"workload.trace_readings_path = {path!r}: no such file or directory")
        self._stream = read_azure_cpu_readings_series(path)
        self._next = next(self._stream, None)

    def apply_until(self, now_s: float, vms: VMTable) -> int:
        applied = 0
        while self._next is not None and self._next.timestamp_s <= now_s:
            i = vms.index.get(self._next.vm_id)
            if i is not None:
                vms.observed_utilisation[i] = self._next.avg_cpu_pct / 100.0
                applied += 1
            self._next = next(self._stream, None)
        return applied


class ClusterModel:
    """Hosts, VMs and their lifecycles; faults and the demand process act on it."""

    def __init__(self, ctx: SimContext, workload: Iterator[WorkloadItem] | None = None) -> None:
        c = ctx.scenario.cluster
        self.ctx = ctx
        services = ctx.services
        self.store: AllocationStore = services.allocations
        self.scheduler = services.scheduler
        self.control = services.control
        self.topology = Topology.build(c.hosts, c.hosts_per_rack, c.racks_per_zone, c.zones_per_datacenter)
        self.vms = VMTable()
        self.workload = workload if workload is not None else workload_for(
            ctx.scenario, ctx.seeds.numpy("workload.synthetic"))
        self.awaiting_restart: dict[int, int] = {}
        """Failed VMs no host could take yet -> the host they failed on (ordered: oldest first)."""
        self._restarting: set[int] = set()
        """VMs with a restart decision in flight."""
        self._leave_when_placed: set[int] = set()
        """VMs whose owner deleted them while a placement or restart was being decided."""
        self._kinds: dict[int, WorkloadKind] = {}
        """VMs' workload kinds (empty without ``[workload] kinds``)."""
        self._starting: dict[int, bool] = {}
        """VMs placed but still starting -> whether their host crashed meanwhile."""
        self._demand_rng = ctx.seeds.numpy("workload.demand")
        self._switched_off: set[str] = set()
        """Hosts the scheduler powered off (consolidation): up, but drawing no power."""
        ctx.log.subscribe(HostPowerChanged, self._power_changed)
        readings_path = ctx.scenario.workload.trace_readings_path
        self._readings = None if readings_path is None else ReadingsFeed(readings_path)
        tree = pool_tree(ctx.scenario)
        self._pools = None if tree is None else PoolContention(ctx, tree)
        self._record_topology()
        follow_allocations(ctx.log, placed=self._follow_host, moved=self._follow_host)

    @property
    def starting(self) -> frozenset[int]:
        """VMs placed or restarted (their room held) whose kind's start has not ended yet."""
        return frozenset(self._starting)

    def _follow_host(self, ev: VMPlaced | VMMoved) -> None:
        """The VM's host column follows the control plane's decisions."""
        self.vms.host[self.vms.index[ev.vm_id]] = self.store.host_index[ev.host_id]

    def _record_topology(self) -> None:
        t, emit = self.topology, self.ctx.recorder.emit
        for i, host_id in enumerate(self.store.host_ids):
            emit(HostLocated, source="inventory", host_id=host_id, rack=f"rack-{t.rack_of[i]:03d}",
                 zone=f"zone-{t.zone_of[i]:02d}", datacenter=f"dc-{t.datacenter_of[i]}")
        c = self.ctx.scenario.cluster
        emit(PowerModelSet, source="inventory", watts_at_pct=c.power_table(), pue=c.pue)

    def start(self) -> None:
        self.ctx.env.process(self._arrivals())
        self.ctx.env.process(self._demand_updates())

    # --- VM lifecycle -------------------------------------------------------------------------

    def _arrivals(self) -> Generator[simpy.Event, None, None]:
        env = self.ctx.env
        for item in self.workload:
            at_s = item.arrival_s if isinstance(item, VMSpec) else item.at_s
            if at_s > env.now:  # a late row (unsorted trace) takes effect now
                yield env.timeout(at_s - env.now)
            if isinstance(item, VMSpec):
                self.request_vm(item)
            elif item.vm_id in self.vms.index:
                self.depart(self.vms.index[item.vm_id])

    def request_vm(self, spec: VMSpec) -> int:
        """Request a VM now and ask the control plane to place it; it runs once that is decided."""
        kind = self._kind_of(spec.vm_id)
        if kind is not None:  # the runtime's own memory is reserved with the VM's
            spec = dataclasses.replace(spec, memory_gib=spec.memory_gib + kind.memory_overhead_gib)
        i = self.vms.add(spec)
        if kind is not None:
            self._kinds[i] = kind
        self.ctx.recorder.emit(VMRequested, source="inventory", vm_id=spec.vm_id,
                               cpu_cores=spec.cpu_cores, memory_gib=spec.memory_gib)
        lifetime_s = spec.lifetime_s
        decision = self.control.place(self.vms.vm_request(i))
        decision.callbacks.append(lambda ev: self._placed(i, ev.value, lifetime_s))
        return i

    def _kind_of(self, vm_id: str) -> WorkloadKind | None:
        names = self.ctx.scenario.workload.kinds
        if not names:
            return None
        gpus = self.ctx.scenario.gpus
        return kind_of(vm_id, names, needs_gpu=gpus.enabled and gpus.request_of(vm_id).needs_gpu)

    def _placed(self, i: int, host: int | None, lifetime_s: float | None) -> None:
        if host is None:
            self.vms.set_status(i, REJECTED)
            self._leave_when_placed.discard(i)
            return
        kind = self._kinds.get(i)
        if kind is not None:
            self._start(i, kind, lambda: self._run_on(*self._start_ended(i), started=kind, lifetime_s=lifetime_s))
            return
        if lifetime_s is not None:
            self.ctx.env.timeout(lifetime_s).callbacks.append(lambda _ev: self.depart(i))
        self._run_on(i, host)

    def _start(self, i: int, kind: WorkloadKind, then: Callable[[], None]) -> None:
        """VM ``i`` holds its room on its host and runs ``kind.start_s`` later (``then``)."""
        self._starting[i] = False
        self.ctx.env.timeout(kind.start_s).callbacks.append(lambda _ev: then())

    def _start_ended(self, i: int) -> tuple[int, int, bool]:
        """(VM, its host now -- a move may have changed it --, whether that host crashed meanwhile)."""
        return i, int(self.vms.host[i]), self._starting.pop(i)

    def _run_on(self, i: int, host: int, crashed: bool = False, started: WorkloadKind | None = None,
                lifetime_s: float | None = None) -> None:
        """A decision put VM ``i`` on ``host``: it runs there, unless it left or the host died meanwhile
        (``crashed``: while the VM was starting); ``started``: the kind whose start just ended."""
        self.vms.set_status(i, RUNNING)  # its host column already follows the recorded VMPlaced
        if i in self._leave_when_placed:
            self._leave_when_placed.discard(i)
            self.depart(i)
        elif crashed or not self.store.host_up[host]:
            self._fail_vms([i], host, "host crash")
        elif started is not None:
            self.ctx.recorder.emit(VMStarted, source="inventory", vm_id=self.vms.ids[i],
                                   host_id=self.store.host_ids[host], kind=started.name,
                                   start_s=started.start_s, memory_overhead_gib=started.memory_overhead_gib)
            if lifetime_s is not None:  # a lifetime is the time it runs, from its start
                self.ctx.env.timeout(lifetime_s).callbacks.append(lambda _ev: self.depart(i))

    def depart(self, i: int) -> None:
        """The VM's owner deletes it: stop it wherever it is (after any decision in flight)."""
        status = int(self.vms.status[i])
        if status == PENDING or i in self._restarting:
            self._leave_when_placed.add(i)
            return
        if status not in (RUNNING, FAILED):
            return
        host = int(self.vms.host[i])
        if status == RUNNING:
            self.control.release(self.vms.ids[i])
        self.awaiting_restart.pop(i, None)
        self.ctx.recorder.emit(VMStopped, source="inventory", vm_id=self.vms.ids[i],
                               host_id=self.store.host_ids[host])
        self.vms.set_status(i, STOPPED)

    # --- failures -----------------------------------------------------------------------------

    def fail_host(self, host: int, reason: str) -> bool:
        """Crash a host: its VMs fail now and are restarted elsewhere after the restart delay."""
        if not self.store.host_up[host]:
            return False
        host_id = self.store.host_ids[host]
        self.ctx.recorder.emit(HostFailed, source=host_id, host_id=host_id, reason=reason)
        self._fail_vms(self.vms.on_host(host).tolist(), host, reason)
        for i in self._starting:  # they fail when their start ends (``_run_on``)
            if self.vms.host[i] == host:
                self._starting[i] = True
        return True

    def _fail_vms(self, victims: list[int], host: int, reason: str) -> None:
        emit, host_id = self.ctx.recorder.emit, self.store.host_ids[host]
        for i in victims:
            self.control.release(self.vms.ids[i])
            self.vms.set_status(i, FAILED)
            emit(VMFailed, source=host_id, vm_id=self.vms.ids[i], host_id=host_id, reason=reason)
        delay_s = self.ctx.scenario.faults.restart_delay_s
        self.ctx.env.timeout(delay_s).callbacks.append(lambda _ev: self._restart_all(victims, host))

    def _restart_all(self, victims: list[int], failed_host: int) -> None:
        for i in victims:
            if self.vms.status[i] == FAILED:
                self._restart(i, failed_host)

    def _restart(self, i: int, failed_host: int) -> None:
        if i in self._restarting:
            return
        self._restarting.add(i)
        self.awaiting_restart.pop(i, None)
        decision = self.control.restart_elsewhere(self.vms.vm_request(i), failed_host)
        decision.callbacks.append(lambda ev: self._restarted(i, failed_host, ev.value))

    def _restarted(self, i: int, failed_host: int, host: int | None) -> None:
        kind = self._kinds.get(i)
        if host is not None and kind is not None:  # it boots again: still restarting until it runs
            self._start(i, kind, lambda: self._restart_started(i, kind))
            return
        self._restarting.discard(i)
        if host is not None:
            self._run_on(i, host)
        elif i in self._leave_when_placed:
            self._leave_when_placed.discard(i)
            self.depart(i)
        else:
            self.awaiting_restart[i] = failed_host

    def _restart_started(self, i: int, kind: WorkloadKind) -> None:
        self._restarting.discard(i)
        self._run_on(*self._start_ended(i), started=kind)

    def recover_host(self, host: int) -> None:
        if self.store.host_up[host]:
            return
        host_id = self.store.host_ids[host]
        self.ctx.recorder.emit(HostRecovered, source=host_id, host_id=host_id)
        for i, failed_host in list(self.awaiting_restart.items()):
            self._restart(i, failed_host)

    # --- demand -------------------------------------------------------------------------------

    def override_utilisation(self, vm_id: str, utilisation: float | None) -> None:
        """Pin a VM's CPU use to ``utilisation`` (0-1) until called with ``None`` (injected faults: a
        noisy neighbour; a throttle). A readings trace's next measurement replaces it."""
        self.vms.observed_utilisation[self.vms.index[vm_id]] = math.nan if utilisation is None else utilisation


    def cpu_demand_cores(self, now_s: float) -> tuple[IntArray, FloatArray, IntArray]:
        """Running VMs' hosts, their CPU use in cores at ``now_s`` (one draw per VM), their rows."""
        v, n = self.vms, self.vms.size
        running = np.flatnonzero(v.status[:n] == RUNNING)
        rng = self._demand_rng
        day = np.sin(2 * np.pi * (now_s / DAY_S + v.phase_days[running]))
        level = v.mean_utilisation[running] * (1.0 + v.amplitude[running] * day)
        level *= rng.gamma(NOISE_SHAPE, 1.0 / NOISE_SHAPE, size=running.size)
        bursting = rng.random(running.size) < v.burst_probability[running]
        level[bursting] *= self.ctx.scenario.workload.burst_factor
        observed = v.observed_utilisation[running]
        measured = ~np.isnan(observed)
        level[measured] = observed[measured]  # a trace's measured CPU replaces the model
        np.clip(level, 0.0, 1.0, out=level)
        return v.host[running], level * v.cpu_cores[running], running

    def _demand_updates(self) -> Generator[simpy.Event, None, None]:
        env, inv = self.ctx.env, self.store
        hosts = len(inv.host_ids)
        physical_cores = inv.cpu_capacity / self.ctx.scenario.cluster.cpu_overcommit
        policy = self.ctx.scenario.cluster.contention
        while True:
            yield env.timeout(self.ctx.scenario.workload.demand_update_s)
            if self._readings is not None:
                self._readings.apply_until(float(env.now), self.vms)
            vm_hosts, wanted, running = self.cpu_demand_cores(float(env.now))
            if self._pools is not None:
                served = self._pools.serve(wanted, vm_hosts, [self.vms.ids[i] for i in running],
                                           self.vms.cpu_cores[running], physical_cores)
            else:
                served = share_cpu(wanted, vm_hosts, physical_cores, policy=policy,
                                   weights=self.vms.cpu_cores[running])
            cpu_wanted = np.bincount(vm_hosts, weights=wanted, minlength=hosts).astype(np.float64)
            cpu_served = np.bincount(vm_hosts, weights=served, minlength=hosts).astype(np.float64)
            vms_per_host = np.bincount(vm_hosts, minlength=hosts)
            self._record_samples(HostCPU(served_cores=cpu_served, demand_cores=cpu_wanted,
                                         physical_cores=physical_cores,
                                         worst_ready_pct=_worst_ready_pct(wanted, served, vm_hosts, hosts)),
                                 vms_per_host)
            # A VM's I/O follows the CPU it gets, not the CPU it waits for.
            io_cores = np.bincount(vm_hosts, weights=served * self.vms.io_intensity[running],
                                   minlength=hosts).astype(np.float64)
            self._record_io(io_cores)

    def _power_changed(self, ev: HostPowerChanged) -> None:
        if ev.powered_on:
            self._switched_off.discard(ev.host_id)
        else:
            self._switched_off.add(ev.host_id)

    def _record_samples(self, cpu: HostCPU, vms_per_host: IntArray) -> None:
        inv, emit = self.store, self.ctx.recorder.emit
        cpu_pct = (100.0 * cpu.served_cores / cpu.physical_cores).tolist()
        demand_pct = (100.0 * cpu.demand_cores / cpu.physical_cores).tolist()
        unserved = cpu.demand_cores - cpu.served_cores
        ready_pct = (100.0 * unserved / np.maximum(cpu.demand_cores, 1e-12)).tolist()
        memory_pct = (100.0 * inv.memory_allocated_gib / inv.memory_capacity_gib).tolist()
        worst_pct = cpu.worst_ready_pct.tolist()
        counts = vms_per_host.tolist()
        up = inv.host_up
        up_list = up.tolist()
        for h, host_id in enumerate(inv.host_ids):
            emit(HostUtilisationSampled, source=host_id, host_id=host_id, cpu_pct=cpu_pct[h],
                 memory_pct=memory_pct[h], vms_running=counts[h], cpu_demand_pct=demand_pct[h],
                 cpu_ready_pct=ready_pct[h], cpu_ready_max_pct=worst_pct[h],
                 powered_on=bool(up_list[h]) and host_id not in self._switched_off)
        # Cluster utilisation is over the hosts that are up: a crashed host's capacity is gone.
        capacity_up = max(float(cpu.physical_cores[up].sum()), 1e-9)
        emit(ClusterUtilisationSampled, source="inventory",
             cpu_pct=float(100 * cpu.served_cores[up].sum() / capacity_up),
             memory_pct=float(100 * inv.memory_allocated_gib[up].sum() / max(inv.memory_capacity_gib[up].sum(), 1e-9)),
             hosts_up=int(up.sum()), vms_running=int(vms_per_host.sum()),
             cpu_demand_pct=float(100 * cpu.demand_cores[up].sum() / capacity_up),
             cpu_demand_cores=float(cpu.demand_cores.sum()), cpu_unserved_cores=float(unserved.sum()))

    def _record_io(self, io_busy_cores: FloatArray) -> None:
        """Network and disk use: busy vCPUs x I/O intensity x per-vCPU traffic, over capacity."""
        c, w, up = self.ctx.scenario.cluster, self.ctx.scenario.workload, self.store.host_up
        network_pct = 100.0 * io_busy_cores * w.network_mbps_per_vcpu / (c.host_network_gbps * 1000.0)
        disk_pct = 100.0 * io_busy_cores * w.disk_iops_per_vcpu / c.host_disk_iops
        hosts_up = max(int(up.sum()), 1)
        self.ctx.recorder.emit(ClusterIOSampled, source="inventory",
                               network_pct=float(network_pct[up].sum() / hosts_up),
                               disk_io_pct=float(disk_pct[up].sum() / hosts_up),
                               network_host_max_pct=float(network_pct.max(initial=0.0)),
                               disk_io_host_max_pct=float(disk_pct.max(initial=0.0)))

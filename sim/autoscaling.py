"""The cluster autoscaler in the simulation: a policy's answer turned into hosts on and off.

Theory of operation
-------------------
Every ``[autoscale] interval_s`` the component builds an ``Observation`` (vCPUs reserved on all
hosts from the scheduler's table, the CPU demand of the last ``ClusterUtilisationSampled``, the
vCPUs of VMs rejected since the last decision) and asks the core policy
(``novacron.cluster.autoscaling``) how many hosts it wants in service. Then:

- *scale out*: first uncordon hosts that are still draining (instant: they are powered on),
  then power on hosts that are off, lowest row first; such a host draws power at once but takes
  VMs only after ``provisioning_delay_s`` (``HostServiceChanged`` with reason ``provisioned``);
- *scale in*: cordon the in-service hosts with the fewest reserved vCPUs (the scheduler's
  ``set_in_service``: they pass no placement filter); a cordoned host is powered off once its
  last VM has left. VMs are not migrated off: a drain waits for departures, as a cluster
  autoscaler that never evicts would.

At the start the hosts beyond ``initial_hosts`` are out of service and off. The oracle gets the
future need from the workload itself (the same stream, from the same seed): vCPUs alive and
the expected CPU (each VM's mean times its diurnal curve; not the per-tick noise or bursts) on
a one-minute grid, including VMs that will be rejected. Host-hours are read back from the log
with ``host_hours`` (powered-on time of every host).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator, Iterable

import numpy as np
import numpy.typing as npt
import simpy

from novacron.cluster.autoscale_events import AutoscaleDecided, HostServiceChanged
from novacron.cluster.autoscaling import AutoscaleConfig, AutoscalePolicy, Observation, build_policy
from novacron.cluster.events import ClusterUtilisationSampled, VMRejected, VMRequested, VMStopped
from novacron.events import Event
from novacron.scheduler.events import HostPowerChanged
from novacron.scheduler.state import CPU
from sim.context import SimContext
from sim.scheduling import SimScheduler
from sim.workloads import VMSpec, workload_for

FloatArray = npt.NDArray[np.float64]
GRID_S = 60.0
DAY_S = 86400.0


class FutureNeed:
    """The workload's need in hosts on a one-minute grid, known in advance (for the oracle)."""

    def __init__(self, specs: Iterable[VMSpec], *, duration_s: float, vcpus_per_host: float,
                 cores_per_host: float) -> None:
        steps = math.ceil(duration_s / GRID_S) + 2
        vcpus, cpu_mean, cpu_sin, cpu_cos = (np.zeros(steps) for _ in range(4))
        for vm in specs:
            start = min(int(vm.arrival_s // GRID_S), steps - 1)
            end = steps - 1 if vm.lifetime_s is None else min(int((vm.arrival_s + vm.lifetime_s) // GRID_S), steps - 1)
            mean = vm.cpu_cores * vm.mean_cpu_utilisation
            phase = 2 * np.pi * vm.diurnal_phase_days
            for column, value in ((vcpus, vm.cpu_cores), (cpu_mean, mean),
                                  (cpu_sin, mean * vm.diurnal_amplitude * np.cos(phase)),
                                  (cpu_cos, mean * vm.diurnal_amplitude * np.sin(phase))):
                column[start] += value
                column[end] -= value
        t = np.arange(steps) * GRID_S
        day = 2 * np.pi * t / DAY_S
        # sin(day + phase) = sin(day) cos(phase) + cos(day) sin(phase), summed over the VMs alive
        cpu = np.cumsum(cpu_mean) + np.sin(day) * np.cumsum(cpu_sin) + np.cos(day) * np.cumsum(cpu_cos)
        self.need_hosts: FloatArray = np.maximum(np.cumsum(vcpus) / vcpus_per_host, cpu / cores_per_host)

    def highest(self, start_s: float, end_s: float) -> float:
        last = len(self.need_hosts) - 1
        lo, hi = min(int(start_s // GRID_S), last), min(int(end_s // GRID_S), last)
        return float(self.need_hosts[lo: hi + 1].max())


class Autoscaler:
    def __init__(self, ctx: SimContext, scheduler: SimScheduler) -> None:
        self.ctx, self.scheduler = ctx, scheduler
        self.config: AutoscaleConfig = ctx.scenario.autoscale
        c, s = ctx.scenario.cluster, ctx.scenario.scheduler
        self.hosts = c.hosts
        self.vcpus_per_host = c.host_cpu_cores * c.cpu_overcommit * (1.0 - s.headroom_cpu_pct / 100.0)
        self.cores_per_host = float(c.host_cpu_cores)
        future = FutureNeed(self._workload_specs(), duration_s=ctx.scenario.duration_s,
                            vcpus_per_host=self.vcpus_per_host, cores_per_host=self.cores_per_host) \
            if self.config.policy == "oracle" else None
        self.policy: AutoscalePolicy = build_policy(self.config, None if future is None else future.highest)
        self.in_service: set[int] = set(range(min(self.config.initial_hosts, self.hosts)))
        self.provisioning: set[int] = set()
        self.cordoned: set[int] = set()
        self.cores_of: dict[str, int] = {}
        self.rejected_vcpus = 0.0
        self.cpu_demand_cores = 0.0
        log = ctx.log
        log.subscribe(VMRequested, self._requested)
        log.subscribe(VMRejected, self._rejected)
        log.subscribe(ClusterUtilisationSampled, self._sampled)
        log.subscribe(VMStopped, self._stopped)

    def _workload_specs(self) -> list[VMSpec]:
        stream = workload_for(self.ctx.scenario, self.ctx.seeds.numpy("workload.synthetic"))
        return [item for item in stream if isinstance(item, VMSpec)]

    def _requested(self, ev: VMRequested) -> None:
        self.cores_of[ev.vm_id] = ev.cpu_cores

    def _rejected(self, ev: VMRejected) -> None:
        self.rejected_vcpus += self.cores_of.get(ev.vm_id, 0)

    def _sampled(self, ev: ClusterUtilisationSampled) -> None:
        self.cpu_demand_cores = ev.cpu_demand_cores

    def _stopped(self, _ev: VMStopped) -> None:
        self._power_off_drained()

    def start(self) -> None:
        for row in range(self.hosts):
            if row not in self.in_service:
                self._leave_service(row, "not provisioned")
                self.scheduler.set_power(row, on=False)
        self.ctx.env.process(self._decide_every_interval())

    def observation(self) -> Observation:
        allocated = float(self.scheduler.table.allocated[CPU].sum())
        obs = Observation(now_s=float(self.ctx.env.now), hosts_in_service=len(self.in_service),
                          hosts_provisioning=len(self.provisioning), vcpus_allocated=allocated,
                          vcpus_per_host=self.vcpus_per_host, cpu_used_cores=self.cpu_demand_cores,
                          cores_per_host=self.cores_per_host, vcpus_rejected=self.rejected_vcpus)
        self.rejected_vcpus = 0.0
        return obs

    def _decide_every_interval(self) -> Generator[simpy.Event, None, None]:
        while True:
            yield self.ctx.env.timeout(self.config.interval_s)
            obs = self.observation()
            desired = min(max(self.policy.desired_hosts(obs), self.config.min_hosts), self.hosts)
            self.ctx.recorder.emit(AutoscaleDecided, source="autoscaler", policy=self.config.policy,
                                   desired_hosts=desired, hosts_in_service=obs.hosts_in_service,
                                   hosts_provisioning=obs.hosts_provisioning, need_hosts=obs.need_hosts)
            self.scale_to(desired)
            self._power_off_drained()

    def scale_to(self, desired: int) -> None:
        capacity = len(self.in_service) + len(self.provisioning)
        if desired > capacity:
            self._scale_out(desired - capacity)
        elif desired < capacity:
            self._scale_in(capacity - desired)

    def _allocated(self, row: int) -> float:
        return float(self.scheduler.table.allocated[CPU, row])

    def _scale_out(self, count: int) -> None:
        for row in sorted(self.cordoned, key=lambda r: (-self._allocated(r), r))[:count]:
            self.cordoned.discard(row)
            self._join_service(row, "uncordoned")
            count -= 1
        off = [r for r in range(self.hosts) if r not in self.in_service | self.provisioning | self.cordoned]
        for row in off[:count]:
            self.provisioning.add(row)
            self.scheduler.set_power(row, on=True)
            self.ctx.env.timeout(self.config.provisioning_delay_s).callbacks.append(self._on_provisioned(row))

    def _on_provisioned(self, row: int) -> Callable[[simpy.Event], None]:
        return lambda _ev: self._provisioned(row)

    def _provisioned(self, row: int) -> None:
        self.provisioning.discard(row)
        self._join_service(row, "provisioned")

    def _scale_in(self, count: int) -> None:
        if len(self.in_service) <= 1:
            return
        emptiest = sorted(self.in_service, key=lambda r: (self._allocated(r), -r))
        for row in emptiest[:min(count, len(self.in_service) - 1)]:
            self.in_service.discard(row)
            self.cordoned.add(row)
            self._leave_service(row, "cordoned")

    def _join_service(self, row: int, reason: str) -> None:
        self.in_service.add(row)
        self.scheduler.set_in_service(row, True)
        host_id = self.scheduler.table.host_ids[row]
        self.ctx.recorder.emit(HostServiceChanged, source="autoscaler", host_id=host_id, in_service=True,
                               reason=reason)

    def _leave_service(self, row: int, reason: str) -> None:
        self.scheduler.set_in_service(row, False)
        host_id = self.scheduler.table.host_ids[row]
        self.ctx.recorder.emit(HostServiceChanged, source="autoscaler", host_id=host_id, in_service=False,
                               reason=reason)

    def _power_off_drained(self) -> None:
        for row in sorted(self.cordoned):
            if self._allocated(row) <= 1e-9 and self.scheduler.table.allocated[:, row].sum() <= 1e-9:
                self.cordoned.discard(row)
                self.scheduler.set_power(row, on=False)


def start(ctx: SimContext) -> Autoscaler | None:
    """The run's autoscaler, unless ``[autoscale] policy = "off"``."""
    if ctx.scenario.autoscale.policy == "off":
        return None
    autoscaler = Autoscaler(ctx, ctx.services.scheduler_for("autoscale.policy"))
    autoscaler.start()
    return autoscaler


def host_hours(events: Iterable[Event], hosts: Iterable[str], end_s: float) -> float:
    """Powered-on host-hours over ``[0, end_s]`` from ``HostPowerChanged`` (every host starts on)."""
    on_since: dict[str, float | None] = dict.fromkeys(hosts, 0.0)
    total_s = 0.0
    for ev in events:
        if isinstance(ev, HostPowerChanged):
            since = on_since.get(ev.host_id)
            if ev.powered_on and since is None:
                on_since[ev.host_id] = ev.t_s
            elif not ev.powered_on and since is not None:
                total_s += ev.t_s - since
                on_since[ev.host_id] = None
    total_s += sum(end_s - since for since in on_since.values() if since is not None)
    return total_s / 3600.0

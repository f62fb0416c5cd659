"""The real runtime's migration batch: the core's admission, planner and controller over libvirt.

Theory of operation
-------------------
The batch is the simulation's (``sim.migration.service.run_batch``), with the same random
stream and the same draws in the same order, so the same VMs move at the same scenario times:
at ``start_s`` it picks ``migrations`` running VMs and arrival times within
``request_window_s``; at each arrival the destination is the least committed other host (with
two hosts, the other one), the request is planned by the core planner under the scenario's
calibration profile and queued at the run's one ``AdmissionController`` (caps, token bucket,
headroom over the hosts' *measured* load). ``step`` is called by the run's loop every poll
interval: it admits what may start (claiming room on the destination through the control
plane), advances every running ``MigrationController`` one ``drive_step`` against the source's
``LibvirtHypervisor`` (several can run at once, as in the simulation; the lab runs one), and
ends each finished one: its slot is released, a completed copy is committed through the
control plane (``VMMoved``), any other outcome gives the claim back. The controller records its
own events (``MigrationRequested`` ... ``MigrationFinished``), exactly as in the simulation.

The guest's profile for the planner is what the real guest is (``guests``, set when it boots:
``backends.lab.guest.LabWorkload.as_workload``): its memory, the dirtier's working set and rate,
and as non-zero memory the kernel's resident pages, the static fill and the working set, which
is the drawn non-zero memory whenever the kernel's floor leaves room for it.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

import numpy as np

from backends.realrun.control import RealClaim, RealControlPlane
from backends.realrun.hosts import RealHosts
from novacron.events import Recorder
from novacron.migration.admission import AdmissionController, AdmissionRequest, HostLoad, estimate_cost
from novacron.migration.calibration import CalibrationProfile
from novacron.migration.config import MigrationConfig, bandwidth_budget_bytes_s, policies
from novacron.migration.controller import MigrationController, MigrationRequest, drive_step
from novacron.migration.events import MigrationAdmitted, MigrationQueued
from novacron.migration.guests import GuestWorkload
from novacron.migration.planner import VMMigrationProfile, link_from_profile, plan_migration
from novacron.migration.protocol import GIB, MIB, MigrationCommand
from novacron.scenario import ClusterConfig


@dataclass
class _Running:
    controller: MigrationController
    claim: RealClaim
    commands: list[MigrationCommand]


class RealMigrations:
    def __init__(self, cfg: MigrationConfig, cluster: ClusterConfig, admission: AdmissionController,
                 profile: CalibrationProfile, rng: np.random.Generator, recorder: Recorder, hosts: RealHosts,
                 control: RealControlPlane) -> None:
        self.cfg, self.cluster, self.adm, self.profile = cfg, cluster, admission, profile
        self.rng, self.recorder, self.hosts, self.control = rng, recorder, hosts, control
        self.policy, _ = policies(cfg)
        self.guests: dict[str, GuestWorkload] = {}
        self.pending: dict[str, tuple[MigrationController, float]] = {}
        self.running: dict[str, _Running] = {}
        self.completed: list[tuple[str, str, str, str]] = []
        """(migration id, vm id, source, destination) of every committed move, for the health checks."""

    def batch(self) -> list[tuple[float, str, int]]:
        """At ``start_s``: the batch's (arrival scenario time, vm id, request number)."""
        vm_ids = sorted(self.control.placed)
        if len(self.hosts.hosts) < 2 or not vm_ids:
            return []
        count = min(self.cfg.migrations, len(vm_ids))
        chosen = self.rng.choice(len(vm_ids), size=count, replace=False)
        arrivals = np.sort(self.rng.uniform(0.0, self.cfg.request_window_s, size=count))
        return [(self.cfg.start_s + float(at_s), vm_ids[int(index)], n)
                for n, (index, at_s) in enumerate(zip(chosen, arrivals, strict=True))]

    def update_loads(self, rows: list[tuple[str, float, float]]) -> None:
        for host_id, cpu_pct, memory_pct in rows:
            self.adm.update_host(host_id, HostLoad(cpu_pct=cpu_pct, memory_pct=memory_pct))

    def request(self, n: int, vm_id: str, now_s: float) -> None:
        if vm_id in self.running or self.adm.vm_migrating(vm_id):
            return
        source = self.control.host_of(vm_id)
        others = sorted((h.host_id for h in self.hosts.hosts if h.host_id != source),
                        key=lambda h: self.adm.committed(h, "cpu"))
        candidates = others[: max(len(others) // 2, 1)]
        destination = candidates[int(self.rng.integers(0, len(candidates)))]
        self.rng.random()  # the simulation's warm-or-not draw (warm_fraction is 0 here)
        priority = int(self.rng.integers(0, 3))
        self.rng.random()  # the simulation's destination-crash draw (its probability is 0 here)
        controller = self._controller(f"mig-{n:05d}", vm_id, source, destination, priority)
        nic_gbps = self.cluster.host_network_gbps
        cost = estimate_cost(vm_memory_gib=controller.request.vm.memory_bytes / GIB,
                             bandwidth_gbps=controller.policy.bandwidth_mib_s * MIB * 8 / 1e9 if
                             controller.policy.bandwidth_mib_s else nic_gbps,
                             host_memory_gib=self.hosts.by_id(destination).memory_gib, host_network_gbps=nic_gbps,
                             host_cpu_cores=self.hosts.by_id(destination).cpu_cores)
        req = AdmissionRequest(migration_id=controller.request.migration_id, vm_id=vm_id, source_host_id=source,
                               destination_host_id=destination, cost=cost, priority=priority)
        decision = self.adm.can_admit(req, now_s)
        if not decision.admitted:
            self.recorder.emit(MigrationQueued, source="admission", migration_id=req.migration_id, vm_id=vm_id,
                               reason=decision.reason)
        self.adm.enqueue(req, now_s)
        self.pending[req.migration_id] = (controller, now_s)

    def _controller(self, migration_id: str, vm_id: str, source: str, destination: str,
                    priority: int) -> MigrationController:
        guest = self.guests[vm_id]
        profile = VMMigrationProfile(vm_id=vm_id, memory_bytes=guest.memory_bytes, wws_bytes=guest.wws_bytes,
                                     dirty_rate_pages_s=guest.dirty_rate_pages_s,
                                     nonzero_bytes=guest.resident_bytes + guest.wws_bytes)
        budget = bandwidth_budget_bytes_s(self.cfg, self.adm.policy, self.cluster.host_network_gbps)
        link = link_from_profile(self.profile, max_bandwidth_bytes_s=budget,
                                 link_bytes_s=self.cluster.host_network_gbps * 1e9 / 8)
        plan = plan_migration(profile, link, self.cfg.downtime_ms, permit_postcopy=self.cfg.permit_postcopy,
                              force=None)
        request = MigrationRequest(migration_id=migration_id, vm=profile, source_host_id=source,
                                   destination_host_id=destination, priority=priority)
        policy = dataclasses.replace(self.policy, bandwidth_mib_s=link.bandwidth_bytes_s / MIB)
        return MigrationController(request, plan, policy, self.recorder)

    def step(self, now_s: float) -> None:
        self._admit(now_s)
        for migration_id, run in list(self.running.items()):
            source = self.hosts.by_id(run.controller.request.source_host_id).hypervisor
            run.commands = drive_step(run.controller, source, run.commands, now_s)
            if run.controller.done:
                self._finish(migration_id, run)

    def _admit(self, now_s: float) -> None:
        for req in self.adm.pop_admissible(now_s):
            controller, asked_s = self.pending.pop(req.migration_id)
            claim = self.control.claim(req.vm_id, req.destination_host_id)
            if claim is None:
                self.adm.release(req.migration_id)
                continue
            self.recorder.emit(MigrationAdmitted, source="admission", migration_id=req.migration_id,
                               vm_id=req.vm_id, queue_wait_s=now_s - asked_s,
                               running_on_source=self.adm.running_on(req.source_host_id),
                               running_on_destination=self.adm.running_on(req.destination_host_id),
                               running_global=len(self.adm.running))
            controller.admitted(now_s)
            self.running[req.migration_id] = _Running(controller, claim, controller.start(now_s))

    def _finish(self, migration_id: str, run: _Running) -> None:
        del self.running[migration_id]
        self.adm.release(migration_id)
        if run.controller.phase.value == "completed":
            source = run.controller.request.source_host_id
            self.control.commit_move(run.claim)
            self.hosts.moved(run.controller.vm_id, source, run.claim.host_id)
            self.completed.append((migration_id, run.controller.vm_id, source, run.claim.host_id))
        else:
            self.control.release_claim(run.claim)

    @property
    def idle(self) -> bool:
        return not self.running and not self.pending

    def next_poll_s(self) -> float:
        return min((r.controller.poll_interval_s for r in self.running.values()), default=math.inf)

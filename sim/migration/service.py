"""The run's migration service: every migration -- the batch's and the rebalancer's -- runs here.

See ``sim/migration/hypervisor.py`` for the hypervisor model over the QEMU model. The service is
built once per run by the composition root (``sim.services``) and holds the run's one
``AdmissionController``; ``run_migration`` runs one admitted move through the core
``MigrationController`` against ``SimHypervisor`` with ``drive_step``, exactly as a real runtime
would. The scheduler's rebalancer admits its moves through ``rebalancer_admission`` (the same
controller wrapped in the scheduler's ``MoveAdmission`` protocol), so the caps hold across both.

The batch (``run_batch``): requests arrive uniformly over the request window; the dispatcher
admits queued requests whenever a migration ends, a request arrives or the token bucket refills;
each admitted one claims its destination, runs, and commits through the control plane. Every
migration ends with one ``MigrationFinished``: a request whose claim is refused is cancelled
(``aborted``), and a copy the control plane refuses to commit ends ``aborted`` too.

Where VMs are is not the service's fact: it follows the control plane's ``VMPlaced``/``VMMoved``
and the VMs' ends through the event log's subscription (a projection); host utilisation samples
feed the admission cost model, and a ``HostFailed`` crashes the migrations from or to that host
at their next step. A VM's guest profile (memory, working set, dirty rate, power state) is drawn
when it is first placed, from the service's own random stream.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Generator
from dataclasses import replace
from typing import cast

import numpy as np
import simpy

from novacron.app.profiles import load_profile
from novacron.cluster.events import (
    HostFailed,
    HostUtilisationSampled,
    VMMoved,
    VMPlaced,
)
from novacron.events import InMemoryEventLog
from novacron.migration.admission import (
    AdmissionController,
    AdmissionRequest,
    HostLoad,
    MigrationCost,
    estimate_cost,
)
from novacron.migration.config import MigrationConfig, bandwidth_budget_bytes_s
from novacron.migration.config import build_admission as config_build_admission
from novacron.migration.controller import MigrationController, MigrationRequest, drive_step
from novacron.migration.events import MigrationAdmitted, MigrationQueued
from novacron.migration.guests import draw_guest_workload
from novacron.migration.move_admission import MoveLike, RebalancerAdmission
from novacron.migration.planner import LinkEstimate, VMMigrationProfile, link_from_profile, plan_migration
from novacron.migration.protocol import GIB, MIB, MigrationCommand, MigrationType, PowerState
from novacron.scheduler.config import SchedulerConfig
from sim.allocation import AllocationStore, Claim, follow_allocations
from sim.context import SimContext
from sim.migration.commit import CommitOutcome, MoveCommitter
from sim.migration.hypervisor import SimHypervisor, policies
from sim.migration.qemu_model import GuestProfile, StreamCalibration


class MigrationService:
    """Admission, the hypervisor model and the migration controller for one run."""

    def __init__(self, ctx: SimContext, admission: AdmissionController, allocations: AllocationStore) -> None:
        c, cfg = ctx.scenario.cluster, ctx.scenario.migration
        self.ctx, self.cfg, self.adm = ctx, cfg, admission
        self._allocations = allocations
        """Read only: which VMs run and which hosts are up are the control plane's facts."""
        host_ids = allocations.host_ids
        nic_bytes_s = c.host_network_gbps * 1e9 / 8
        self.hv = SimHypervisor(nic_bytes_s=dict.fromkeys(host_ids, nic_bytes_s),
                                calibration=scenario_profile(cfg))
        self.policy, _ = policies(cfg)
        self.host_memory_gib = dict.fromkeys(host_ids, c.host_memory_gib)
        self.host_network_gbps = dict.fromkeys(host_ids, c.host_network_gbps)
        self.host_cores = dict.fromkeys(host_ids, c.host_cpu_cores)
        self.rng = ctx.seeds.numpy("migration.batch")
        self._guest_rng = ctx.seeds.numpy("migration.guests")
        self.pending: dict[str, tuple[MigrationController, float]] = {}
        self.wake: simpy.Event | None = None
        self.mine: set[str] = set()
        """VMs with a move in progress here, the batch's or the rebalancer's, copy to commit (their
        location is the hypervisor's to change until the commit is decided)."""
        self._subscribe(ctx.log)

    def _subscribe(self, log: InMemoryEventLog) -> None:
        follow_allocations(log, placed=self._on_placed, moved=self._on_moved)
        log.subscribe(HostFailed, self._on_host_failed)
        log.subscribe(HostUtilisationSampled, self._on_sampled)

    def _on_placed(self, ev: VMPlaced) -> None:
        if ev.vm_id not in self.hv.guests:
            rng = self._guest_rng
            self.hv.guests[ev.vm_id] = _draw_guest(rng, self.cfg, int(ev.memory_gib * GIB))
            shutoff = rng.random() < self.cfg.shutoff_fraction
            self.hv.power[ev.vm_id] = PowerState.SHUTOFF if shutoff else PowerState.RUNNING
        self.hv.location[ev.vm_id] = ev.host_id

    def _on_moved(self, ev: VMMoved) -> None:
        if ev.vm_id not in self.mine:
            self.hv.location[ev.vm_id] = ev.host_id

    def _on_host_failed(self, ev: HostFailed) -> None:
        self.hv.crash_host(ev.host_id)

    def running(self, vm_id: str) -> bool:
        return vm_id in self._allocations.vm_host

    def running_vms(self) -> list[str]:
        return sorted(self._allocations.vm_host)

    def _on_sampled(self, ev: HostUtilisationSampled) -> None:
        self.adm.update_host(ev.host_id, HostLoad(cpu_pct=ev.cpu_pct, memory_pct=ev.memory_pct))

    def poke(self) -> None:
        if self.wake is not None and not self.wake.triggered:
            self.wake.succeed()

    def bandwidth_budget_bytes_s(self, src: str, dst: str) -> float:
        """A NIC's share for one migration (``novacron.migration.config.bandwidth_budget_bytes_s``)."""
        nic_gbps = min(self.host_network_gbps[src], self.host_network_gbps[dst])
        return bandwidth_budget_bytes_s(self.cfg, self.adm.policy, nic_gbps)

    def link(self, src: str, dst: str) -> LinkEstimate:
        nic = min(self.host_network_gbps[src], self.host_network_gbps[dst]) * 1e9 / 8
        return link_from_profile(self.hv.calibration, max_bandwidth_bytes_s=self.bandwidth_budget_bytes_s(src, dst),
                                 link_bytes_s=nic)

    def pick_destination(self, vm_id: str, host_ids: list[str]) -> str | None:
        """A random host among the less loaded half (by committed CPU), never the VM's own;
        ``None`` when every other host is down."""
        up = self._allocations.host_up
        index = self._allocations.host_index
        others = sorted((h for h in host_ids if h != self.hv.location[vm_id] and up[index[h]]),
                        key=lambda h: self.adm.committed(h, "cpu"))
        if not others:
            return None
        candidates = others[: max(len(others) // 2, 1)]
        return candidates[int(self.rng.integers(0, len(candidates)))]

    def request_move(self, n: int, vm_id: str, dst: str) -> None:
        env, cfg = self.ctx.env, self.cfg
        src, guest = self.hv.location[vm_id], self.hv.guests[vm_id]
        warm = self.rng.random() < cfg.warm_fraction
        link = self.link(src, dst)
        migration_id = f"mig-{n:05d}"
        priority = int(self.rng.integers(0, 3))
        ctl = self.plan_controller(migration_id, vm_id, dst, priority=priority,
                                   force=MigrationType.WARM if warm else None)
        plan = ctl.plan
        if self.rng.random() < cfg.destination_crash_probability:
            horizon_s = plan.predicted_total_time_ms / 1000.0 if math.isfinite(plan.predicted_total_time_ms) else 10.0
            self.hv.crash_at_s[vm_id] = float(self.rng.uniform(0.05, 0.95)) * horizon_s
        cost = estimate_cost(vm_memory_gib=guest.memory_bytes / GIB, bandwidth_gbps=link.bandwidth_bytes_s * 8 / 1e9,
                             host_memory_gib=self.host_memory_gib[dst], host_network_gbps=self.host_network_gbps[dst],
                             host_cpu_cores=self.host_cores[dst])
        req = AdmissionRequest(migration_id=migration_id, vm_id=vm_id, source_host_id=src, destination_host_id=dst,
                               cost=cost, priority=priority)
        decision = self.adm.can_admit(req, env.now)
        if not decision.admitted:
            self.ctx.recorder.emit(MigrationQueued, source="admission", migration_id=migration_id, vm_id=vm_id,
                                   reason=decision.reason)
        self.adm.enqueue(req, env.now)
        self.pending[migration_id] = (ctl, env.now)
        self.poke()

    def dispatch(self, committer: MoveCommitter) -> Generator[simpy.Event, None, None]:
        env = self.ctx.env
        while True:
            for req in self.adm.pop_admissible(env.now):
                ctl, asked_s = self.pending.pop(req.migration_id)
                claim = committer.claim(req.vm_id, req.destination_host_id)
                if claim is None:
                    self.adm.release(req.migration_id)
                    self.hv.crash_at_s.pop(req.vm_id, None)  # drawn for this move: the VM's next one draws its own
                    ctl.cancel("no room claimed: the VM is gone or the destination is down or full", env.now)
                    continue
                self.ctx.recorder.emit(MigrationAdmitted, source="admission", migration_id=req.migration_id,
                                       vm_id=req.vm_id, queue_wait_s=env.now - asked_s,
                                       running_on_source=self.adm.running_on(req.source_host_id),
                                       running_on_destination=self.adm.running_on(req.destination_host_id),
                                       running_global=len(self.adm.running))
                ctl.admitted(env.now)
                env.process(self._execute_batch_move(ctl, claim, committer))
            self.wake = env.event()
            waits: list[simpy.Event] = [self.wake]
            token_s = self.adm.next_token_s(env.now)
            if self.adm.queued and token_s > env.now:
                waits.append(env.timeout(token_s - env.now))
            yield env.any_of(waits)

    def plan_controller(self, migration_id: str, vm_id: str, dst: str, *, priority: int = 0,
                        force: MigrationType | None = None) -> MigrationController:
        """Plan a move of ``vm_id`` to ``dst`` and make its controller (phase ``requested``)."""
        src, guest = self.hv.location[vm_id], self.hv.guests[vm_id]
        profile = VMMigrationProfile(vm_id=vm_id, memory_bytes=guest.memory_bytes, wws_bytes=guest.wws_bytes,
                                     dirty_rate_pages_s=guest.dirty_rate_pages_s, power_state=self.hv.power[vm_id],
                                     nonzero_bytes=guest.resident_bytes + guest.wws_bytes)
        link = self.link(src, dst)
        plan = plan_migration(profile, link, self.cfg.downtime_ms, permit_postcopy=self.cfg.permit_postcopy,
                              force=force)
        return MigrationController(MigrationRequest(migration_id=migration_id, vm=profile, source_host_id=src,
                                                    destination_host_id=dst, priority=priority),
                                   plan, replace(self.policy, bandwidth_mib_s=link.bandwidth_bytes_s / MIB),
                                   self.ctx.recorder, awaits_commit=True)

    def run_migration(self, migration_id: str, vm_id: str, dst: str, claim: Claim, committer: MoveCommitter, *,
                      mover: str) -> Generator[simpy.Event, None, str]:
        """Run one move its caller already admitted and claimed (the rebalancer) and commit it;
        returns why it did not move the VM (empty: moved). The caller frees its admission slot."""
        ctl = self.plan_controller(migration_id, vm_id, dst)
        ctl.admitted(self.ctx.env.now)
        return (yield from self.execute_move(ctl, claim, committer, mover=mover))

    def execute_move(self, ctl: MigrationController, claim: Claim, committer: MoveCommitter, *, mover: str,
                     copied: Callable[[], None] | None = None) -> Generator[simpy.Event, None, str]:
        """One whole move: copy the VM (QEMU model, core controller), call ``copied``, then commit
        the copy through the control plane, or give the claim back if the copy failed. Returns
        why the VM was not moved (empty: moved). Until the commit is decided the VM stays
        ``mine``: the hypervisor's guest is on the destination, the allocation not yet."""
        vm_id, source = ctl.vm_id, ctl.request.source_host_id
        self.mine.add(vm_id)
        yield from self._drive(ctl)
        if copied is not None:
            copied()
        reason = ""
        if ctl.done:  # the copy did not complete: nothing to commit
            committer.release(claim)
            reason = f"the migration ended {ctl.phase.value}"
        else:
            committed = committer.commit(claim, source, mover=mover)
            yield committed
            reason = cast(CommitOutcome, committed.value).reason
            if reason:
                self.hv.location[vm_id] = source  # the guest stays on the source
            ctl.commit_decided(reason, self.ctx.env.now)
        self.mine.discard(vm_id)
        return reason

    def _drive(self, ctl: MigrationController) -> Generator[simpy.Event, None, None]:
        env = self.ctx.env
        commands: list[MigrationCommand] = ctl.start(env.now)
        while True:
            commands = drive_step(ctl, self.hv, commands, env.now)
            if ctl.copy_ended:
                return
            yield env.timeout(self.hv.advance(ctl.vm_id, ctl.poll_interval_s))

    def _execute_batch_move(self, ctl: MigrationController, claim: Claim,
                            committer: MoveCommitter) -> Generator[simpy.Event, None, None]:
        """A batch move: its admission slot is freed when the copy ends, before the commit."""
        yield from self.execute_move(ctl, claim, committer, mover="migration",
                                     copied=lambda: self.adm.release(ctl.request.migration_id))
        self.poke()


def _draw_guest(rng: np.random.Generator, cfg: MigrationConfig, memory_bytes: int) -> GuestProfile:
    drawn = draw_guest_workload(rng, cfg, memory_bytes)
    return GuestProfile(memory_bytes=drawn.memory_bytes, resident_bytes=drawn.resident_bytes,
                        wws_bytes=drawn.wws_bytes, dirty_rate_pages_s=drawn.dirty_rate_pages_s)


def rebalancer_admission(ctx: SimContext, controller: AdmissionController,
                         memory_gib_of: Callable[[str], float]) -> RebalancerAdmission:
    """A ``MoveAdmission`` for the scheduler's rebalancer over the run's controller, pricing a move
    with the cost model (the VM's memory on the target, a NIC share under the network headroom)."""
    c = ctx.scenario.cluster
    share_gbps = c.host_network_gbps * controller.policy.ceiling_pct("network") / 100.0 / controller.policy.max_per_host

    def cost_of(move: MoveLike) -> MigrationCost:
        return estimate_cost(vm_memory_gib=memory_gib_of(move.vm_id), bandwidth_gbps=share_gbps,
                             host_memory_gib=c.host_memory_gib, host_network_gbps=c.host_network_gbps,
                             host_cpu_cores=c.host_cpu_cores)

    return RebalancerAdmission(controller, cost_of, ctx.clock.now_s)


def scenario_profile(cfg: MigrationConfig) -> StreamCalibration:
    """The scenario's calibration profile (``[migration] calibration``, resolved when the scenario
    was loaded); without one, the stream figures of the ``[migration]`` section."""
    if cfg.calibration:
        return load_profile(cfg.calibration)  # the file is read once, when the run is built
    return StreamCalibration(name="scenario", stream_cap_bytes_s=cfg.stream_cap_mib_s * MIB,
                             stop_copy_bytes_s=cfg.stop_copy_mib_s * MIB)


def build_admission(cfg: MigrationConfig, scheduler: SchedulerConfig) -> AdmissionController:
    """The run's one admission controller (``novacron.migration.config.build_admission``)."""
    return config_build_admission(cfg, scheduler)


def run_batch(ctx: SimContext, service: MigrationService,
              committer: MoveCommitter) -> Generator[simpy.Event, None, None]:
    cfg = service.cfg
    yield ctx.env.timeout(cfg.start_s)
    vm_ids = service.running_vms()
    if len(service.host_memory_gib) < 2 or not vm_ids:
        return
    ctx.env.process(service.dispatch(committer))
    host_ids = sorted(service.host_memory_gib)
    count = min(cfg.migrations, len(vm_ids))
    chosen = service.rng.choice(len(vm_ids), size=count, replace=False)
    arrivals = np.sort(service.rng.uniform(0.0, cfg.request_window_s, size=count))
    for n, (index, at_s) in enumerate(zip(chosen, arrivals, strict=True)):
        yield ctx.env.timeout(max(cfg.start_s + float(at_s) - ctx.env.now, 0.0))
        vm_id = vm_ids[int(index)]
        if not service.running(vm_id) or vm_id in service.mine or service.adm.vm_migrating(vm_id):
            continue  # failed, stopped or being moved (by the rebalancer, say) since the batch began
        destination = service.pick_destination(vm_id, host_ids)
        if destination is not None:
            service.request_move(n, vm_id, destination)


def start(ctx: SimContext) -> None:
    """The batch component: ``[migration] migrations`` requests through the run's service."""
    cfg = ctx.scenario.migration
    ctx.config_metrics["migration.max_concurrent_per_host"] = float(cfg.max_concurrent_per_host)
    ctx.config_metrics["migration.max_concurrent_global"] = float(cfg.max_concurrent_global)
    if cfg.migrations > 0:
        services = ctx.services
        ctx.env.process(run_batch(ctx, services.migrations, services.committer))

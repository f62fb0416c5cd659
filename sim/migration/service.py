"""The migration component of a simulated run: a batch of requests through admission and control.

See ``sim/migration/hypervisor.py`` for the model. Requests arrive uniformly over the request window;
the dispatcher admits queued requests whenever a migration ends, a request arrives or the
token bucket refills. Each admitted migration is one SimPy process running the core
controller against ``SimHypervisor``.

The batch follows the run's event log (``follow_log``) instead of holding the cluster model:
placements and moves by others update where VMs are, failed or stopped VMs are skipped, host
utilisation samples feed the admission cost model, and a ``HostFailed`` crashes the
migrations from or to that host at their next step (within one poll interval).

One ``AdmissionController`` per run (``shared_admission``) is meant to be shared by everything
that moves VMs; ``rebalancer_admission(ctx, memory_gib_of)`` wraps it in the scheduler's
``MoveAdmission`` protocol, so the rebalancer and this batch count against the same caps, and
``migration_service(ctx).migrate_admitted(...)`` runs an admitted move through the QEMU model
and the core controller (the batch is built on that same per-run service).
"""

from __future__ import annotations

import math
import weakref
from collections.abc import Callable, Generator
from dataclasses import dataclass, field, replace
from typing import cast

import numpy as np
import simpy

from novacron.cluster.events import (
    HostAdded,
    HostFailed,
    HostRecovered,
    HostUtilisationSampled,
    VMFailed,
    VMMoved,
    VMPlaced,
    VMStopped,
)
from novacron.migration.admission import (
    AdmissionController,
    AdmissionRequest,
    HostLoad,
    MigrationCost,
    estimate_cost,
)
from novacron.migration.config import MigrationConfig
from novacron.migration.controller import ControllerPolicy, MigrationController, MigrationRequest, drive_step
from novacron.migration.events import MigrationAborted, MigrationAdmitted, MigrationQueued
from novacron.migration.move_admission import MoveLike, RebalancerAdmission
from novacron.migration.planner import LinkEstimate, VMMigrationProfile, link_from_profile, plan_migration
from novacron.migration.protocol import GIB, MIB, PAGE_SIZE_BYTES, MigrationCommand, MigrationType, PowerState
from novacron.scheduler.events import RebalanceMoveStarted
from sim.context import SimContext
from sim.migration.commit import Claim, CommitOutcome, committer_for
from sim.migration.hypervisor import SimHypervisor, policies
from sim.migration.qemu_model import GuestProfile, StreamCalibration


@dataclass
class Batch:
    ctx: SimContext
    cfg: MigrationConfig
    hv: SimHypervisor
    adm: AdmissionController
    policy: ControllerPolicy
    host_memory_gib: dict[str, float]
    host_network_gbps: dict[str, float]
    host_cores: dict[str, int]
    rng: np.random.Generator
    pending: dict[str, tuple[MigrationController, float]] = field(default_factory=dict)
    wake: simpy.Event | None = None
    alive: set[str] = field(default_factory=set)
    down_hosts: set[str] = field(default_factory=set)
    mine: set[str] = field(default_factory=set)
    """VMs this batch is migrating (their location is the hypervisor's to change)."""
    moved_by_others: set[str] = field(default_factory=set)
    """VMs the scheduler's rebalancer is moving (until their ``VMMoved``)."""
    log_index: int = 0

    def follow_log(self) -> None:
        """Apply what the rest of the model did since the last look: placements, moves, failures,
        host crashes (which crash migrations heading there) and utilisation samples."""
        log = self.ctx.log
        while self.log_index < len(log):
            ev = log[self.log_index]
            self.log_index += 1
            if isinstance(ev, VMPlaced):
                if ev.vm_id not in self.hv.guests:
                    self.hv.guests[ev.vm_id] = _draw_guest(self.rng, self.cfg, int(ev.memory_gib * GIB))
                    self.hv.power[ev.vm_id] = PowerState.RUNNING
                self.hv.location[ev.vm_id] = ev.host_id
                self.alive.add(ev.vm_id)
            elif isinstance(ev, RebalanceMoveStarted):
                self.moved_by_others.add(ev.vm_id)
            elif isinstance(ev, VMMoved) and ev.vm_id not in self.mine:
                self.hv.location[ev.vm_id] = ev.host_id
                self.alive.add(ev.vm_id)
                self.moved_by_others.discard(ev.vm_id)
            elif isinstance(ev, VMFailed | VMStopped):
                self.alive.discard(ev.vm_id)
            elif isinstance(ev, HostFailed):
                self.down_hosts.add(ev.host_id)
                self.hv.crash_host(ev.host_id)
            elif isinstance(ev, HostRecovered):
                self.down_hosts.discard(ev.host_id)
            elif isinstance(ev, HostUtilisationSampled):
                self.adm.update_host(ev.host_id, HostLoad(cpu_pct=ev.cpu_pct, memory_pct=ev.memory_pct))

    def poke(self) -> None:
        if self.wake is not None and not self.wake.triggered:
            self.wake.succeed()

    def bandwidth_budget_bytes_s(self, src: str, dst: str) -> float:
        """A NIC's share for one migration that keeps the network headroom with ``max_per_host``
        migrations running; the controller sets it as the migration's bandwidth limit."""
        nic = min(self.host_network_gbps[src], self.host_network_gbps[dst]) * 1e9 / 8
        usable = nic * self.adm.policy.ceiling_pct("network") / 100.0 / self.adm.policy.max_per_host
        return min(usable, self.cfg.bandwidth_mib_s * MIB) if self.cfg.bandwidth_mib_s else usable

    def link(self, src: str, dst: str) -> LinkEstimate:
        nic = min(self.host_network_gbps[src], self.host_network_gbps[dst]) * 1e9 / 8
        return link_from_profile(self.hv.calibration, max_bandwidth_bytes_s=self.bandwidth_budget_bytes_s(src, dst),
                                 link_bytes_s=nic)

    def pick_destination(self, vm_id: str, host_ids: list[str]) -> str | None:
        """A random host among the less loaded half (by committed CPU), never the VM's own;
        ``None`` when every other host is down."""
        others = sorted((h for h in host_ids if h != self.hv.location[vm_id] and h not in self.down_hosts),
                        key=lambda h: self.adm.committed(h, "cpu"))
        if not others:
            return None
        candidates = others[: max(len(others) // 2, 1)]
        return candidates[int(self.rng.integers(0, len(candidates)))]

    def request(self, n: int, vm_id: str, dst: str) -> None:
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

    def dispatch(self) -> Generator[simpy.Event, None, None]:
        env = self.ctx.env
        while True:
            for req in self.adm.pop_admissible(env.now):
                ctl, asked_s = self.pending.pop(req.migration_id)
                committer = committer_for(self.ctx)
                claim = None if committer is None else committer.claim(req.vm_id, req.destination_host_id)
                if committer is not None and claim is None:
                    self.adm.release(req.migration_id)
                    self.ctx.recorder.emit(MigrationAborted, source="migration", migration_id=req.migration_id,
                                           vm_id=req.vm_id, reason="no room claimed: the VM is gone or the "
                                           "destination is down or full")
                    continue
                self.ctx.recorder.emit(MigrationAdmitted, source="admission", migration_id=req.migration_id,
                                       vm_id=req.vm_id, queue_wait_s=env.now - asked_s,
                                       running_on_source=self.adm.running_on(req.source_host_id),
                                       running_on_destination=self.adm.running_on(req.destination_host_id),
                                       running_global=len(self.adm.running))
                ctl.admitted(env.now)
                env.process(self.migrate(ctl, claim=claim))
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
                                   self.ctx.recorder)

    def migrate_admitted(self, migration_id: str, vm_id: str, dst: str) -> Generator[simpy.Event, None, str]:
        """Run one migration that its caller already admitted (the rebalancer, through
        ``rebalancer_admission``); returns the outcome (``completed``, ``rolled_back``...). The
        caller releases its slot and records ``VMMoved`` itself."""
        self.follow_log()
        ctl = self.plan_controller(migration_id, vm_id, dst)
        ctl.admitted(self.ctx.env.now)
        yield from self.migrate(ctl, owns_slot=False)
        return ctl.phase.value

    def migrate(self, ctl: MigrationController, *, owns_slot: bool = True,
                claim: Claim | None = None) -> Generator[simpy.Event, None, None]:
        env = self.ctx.env
        commands: list[MigrationCommand] = ctl.start(env.now)
        self.mine.add(ctl.vm_id)
        while True:
            self.follow_log()
            commands = drive_step(ctl, self.hv, commands, env.now)
            if ctl.done:
                break
            yield env.timeout(self.hv.advance(ctl.vm_id, ctl.poll_interval_s))
        self.mine.discard(ctl.vm_id)
        if not owns_slot:
            return
        self.adm.release(ctl.request.migration_id)
        if ctl.phase.value == "completed":
            yield from self.commit(ctl, claim)
        elif claim is not None:
            committer = committer_for(self.ctx)
            if committer is not None:
                committer.release(claim)
        self.poke()

    def commit(self, ctl: MigrationController, claim: Claim | None) -> Generator[simpy.Event, None, None]:
        """A completed copy becomes the VM's placement through the control plane, and only if
        the VM still runs on the source; otherwise it is recorded as aborted."""
        request = ctl.request
        committer = committer_for(self.ctx)
        if committer is None or claim is None:  # no cluster model: the log is the only truth
            self.follow_log()
            if ctl.vm_id in self.alive and request.destination_host_id not in self.down_hosts:
                self.ctx.recorder.emit(VMMoved, source="migration", vm_id=ctl.vm_id,
                                       from_host_id=request.source_host_id, host_id=request.destination_host_id)
                return
            reason = "aborted: the VM stopped or failed, or the destination crashed, during the migration"
        else:
            committed = committer.commit(claim, request.source_host_id, mover="migration")
            yield committed
            outcome = cast(CommitOutcome, committed.value)
            if outcome.host is not None:
                return
            reason = outcome.reason
        self.hv.location[ctl.vm_id] = request.source_host_id
        self.ctx.recorder.emit(MigrationAborted, source="migration", migration_id=request.migration_id,
                               vm_id=ctl.vm_id, reason=reason)


def _draw_guest(rng: np.random.Generator, cfg: MigrationConfig, memory_bytes: int) -> GuestProfile:
    low, high = cfg.dirty_rate_pages_s
    rate = float(math.exp(rng.uniform(math.log(max(low, 1.0)), math.log(max(high, 1.0)))))
    wws = int(rng.uniform(cfg.wws_fraction[0], cfg.wws_fraction[1]) * memory_bytes) // PAGE_SIZE_BYTES * PAGE_SIZE_BYTES
    resident = max(int(cfg.nonzero_fraction * memory_bytes) - wws, 0)
    return GuestProfile(memory_bytes=memory_bytes, resident_bytes=resident, wws_bytes=wws, dirty_rate_pages_s=rate)


_SHARED: dict[int, tuple[weakref.ref[SimContext], AdmissionController]] = {}


def shared_admission(ctx: SimContext) -> AdmissionController:
    """The run's one migration admission controller, shared by every subsystem that moves VMs
    (wrap it in ``novacron.migration.move_admission.RebalancerAdmission`` for the rebalancer)."""
    entry = _SHARED.get(id(ctx))
    if entry is None or entry[0]() is not ctx:
        entry = (weakref.ref(ctx), AdmissionController(policies(ctx.scenario.migration)[1]))
        _SHARED[id(ctx)] = entry
    return entry[1]


def rebalancer_admission(ctx: SimContext, memory_gib_of: Callable[[str], float]) -> RebalancerAdmission:
    """A ``MoveAdmission`` for the scheduler's rebalancer over the shared controller, pricing a move
    with the cost model (the VM's memory on the target, a NIC share under the network headroom)."""
    c, adm = ctx.scenario.cluster, shared_admission(ctx)
    share_gbps = c.host_network_gbps * adm.policy.ceiling_pct("network") / 100.0 / adm.policy.max_per_host

    def cost_of(move: MoveLike) -> MigrationCost:
        return estimate_cost(vm_memory_gib=memory_gib_of(move.vm_id), bandwidth_gbps=share_gbps,
                             host_memory_gib=c.host_memory_gib, host_network_gbps=c.host_network_gbps,
                             host_cpu_cores=c.host_cpu_cores)

    return RebalancerAdmission(adm, cost_of, ctx.clock.now_s)


def scenario_profile(cfg: MigrationConfig) -> StreamCalibration:
    """The scenario's calibration profile (``[migration] calibration``, resolved when the scenario
    was loaded); without one, the stream figures of the ``[migration]`` section."""
    if cfg.calibration:
        from novacron.app.profiles import load_profile  # the file is read once, when the run is built

        return load_profile(cfg.calibration)
    return StreamCalibration(name="scenario", stream_cap_bytes_s=cfg.stream_cap_mib_s * MIB,
                             stop_copy_bytes_s=cfg.stop_copy_mib_s * MIB)


def _build(ctx: SimContext, cfg: MigrationConfig) -> Batch | None:
    hosts = ctx.log.of_type(HostAdded)
    if len(hosts) < 2:
        return None
    hv = SimHypervisor(nic_bytes_s={h.host_id: h.network_gbps * 1e9 / 8 for h in hosts},
                       calibration=scenario_profile(cfg))
    rng = ctx.seeds.numpy("migration.batch")
    for placed in ctx.log.of_type(VMPlaced):
        memory = int(placed.memory_gib * GIB)
        hv.guests[placed.vm_id] = _draw_guest(rng, cfg, memory)
        hv.power[placed.vm_id] = PowerState.SHUTOFF if rng.random() < cfg.shutoff_fraction else PowerState.RUNNING
    controller_policy, _ = policies(cfg)
    return Batch(ctx=ctx, cfg=cfg, hv=hv, policy=controller_policy,
                 host_memory_gib={h.host_id: h.memory_gib for h in hosts},
                 host_network_gbps={h.host_id: h.network_gbps for h in hosts},
                 host_cores={h.host_id: h.cpu_cores for h in hosts}, rng=rng, adm=shared_admission(ctx))


_SERVICES: dict[int, tuple[weakref.ref[SimContext], Batch]] = {}


def migration_service(ctx: SimContext) -> Batch | None:
    """The run's migration service (hypervisor model, shared admission, Nova policy), built on
    first use from what the log holds; ``None`` while fewer than two hosts exist. The scheduler's
    rebalancer can run its moves through it::

        service = migration_service(ctx)
        outcome = yield from service.migrate_admitted(migration_id, vm_id, destination_host_id)
    """
    entry = _SERVICES.get(id(ctx))
    if entry is not None and entry[0]() is ctx:
        return entry[1]
    batch = _build(ctx, ctx.scenario.migration)
    if batch is not None:
        _SERVICES[id(ctx)] = (weakref.ref(ctx), batch)
    return batch


def run_batch(ctx: SimContext, cfg: MigrationConfig) -> Generator[simpy.Event, None, None]:
    yield ctx.env.timeout(cfg.start_s)
    batch = migration_service(ctx)
    if batch is None:
        return
    batch.follow_log()
    if not batch.alive:
        return
    ctx.env.process(batch.dispatch())
    vm_ids = sorted(batch.alive)
    host_ids = sorted(batch.host_memory_gib)
    count = min(cfg.migrations, len(vm_ids))
    chosen = batch.rng.choice(len(vm_ids), size=count, replace=False)
    arrivals = np.sort(batch.rng.uniform(0.0, cfg.request_window_s, size=count))
    for n, (index, at_s) in enumerate(zip(chosen, arrivals, strict=True)):
        yield ctx.env.timeout(max(cfg.start_s + float(at_s) - ctx.env.now, 0.0))
        vm_id = vm_ids[int(index)]
        batch.follow_log()
        if (vm_id not in batch.alive or vm_id in batch.mine or vm_id in batch.moved_by_others
                or batch.adm.vm_migrating(vm_id)):
            continue  # failed, stopped or being moved by someone else since the batch began
        destination = batch.pick_destination(vm_id, host_ids)
        if destination is not None:
            batch.request(n, vm_id, destination)


def start(ctx: SimContext) -> None:
    cfg = ctx.scenario.migration
    ctx.config_metrics["migration.max_concurrent_per_host"] = float(cfg.max_concurrent_per_host)
    ctx.config_metrics["migration.max_concurrent_global"] = float(cfg.max_concurrent_global)
    if cfg.migrations > 0:
        ctx.env.process(run_batch(ctx, cfg))

"""The placement scheduler in the simulation: placing VMs, rebalancing, quality samples.

Theory of operation
-------------------
``SimScheduler`` is the control plane's placer: ``choose_host`` picks a host for a VM and the
control plane allocates it in the run's allocation store (``sim.allocation``). The scheduler's
``HostTable`` (four resources, NUMA splits, power state) is a read-only projection of the
control plane's decisions: it follows ``VMPlaced``, ``VMMoved``, ``VMStopped``/``VMFailed``,
``MoveClaimed``/``MoveClaimReleased`` and host liveness through the event log's subscription.
Each VM request becomes a ``PlacementRequest``: its network
and I/O demand scale with its vCPUs (``[scheduler]`` per-vCPU figures), consecutive VMs form
apps of ``anti_affinity_group_size`` replicas that must not share a host, and a VM's peers are
the hosts of the earlier VMs of its app (network-aware placement puts it near them).

Decision time is *modelled*, not measured. The core cannot read a clock, a measured time in an
event would make two runs of one seed differ, and even a measured figure kept outside the log
broke the capacity sweeps, which require every metric of a seed to repeat. So
``VMPlaced.decision_ms`` and ``PlacementDecided.decision_ms`` carry a cost model: a fixed part
per policy plus a part per host and policy, calibrated on this machine with
``benchmarks/bench_scheduler.py`` (RESULTS_scheduler.md), or a fixed cost for a cache hit; the
catalogue's ``scheduler.policy_eval_p99_ms`` is its p99 over full evaluations (cache misses).
The measured check of the < 10 ms target is the benchmark.

Rebalancing runs every ``rebalance_interval_s``. Moves are admitted by the run's one
``AdmissionController`` (``[scheduler] admission = "migration"``: its cost model, headroom, caps
and token bucket, with host loads from the utilisation samples, which the migration service
feeds it) or by the
plain caps (``"caps"``); a move the admission refuses when it is about to start is dropped
(``RebalanceMoveRefused``) and re-planned next round. The controller is shared with the
migration batch, so the caps hold across both. A move claims its destination through the
control plane when it starts (as Nova claims it), runs through the run's migration service (the
QEMU model and the core migration controller, as every migration does) and commits through the
control plane only if the copy completed and the VM is still on its source. Consolidation
powers a host off once it is empty; placing a VM on a powered-off host powers it on.

Health (``[scheduler] health_min_score`` / ``weight_health``): the host health scores are a
projection of ``NodeHealthScored`` (``sim.health``), read by the scheduler's health filter and
scorer; with a minimum score, an evacuation round every ``health_evacuate_interval_s`` moves the
VMs of hosts below it (``novacron.scheduler.health.plan_evacuation``) through ``execute_move``,
like the rebalancer's moves (``RebalancePlanned`` with mode ``evacuate``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Generator

import numpy as np
import numpy.typing as npt
import simpy

from novacron.cluster.events import (
    HostFailed,
    HostRecovered,
    MoveClaimed,
    MoveClaimReleased,
    NodeHealthScored,
    VMFailed,
    VMMoved,
    VMPlaced,
    VMStopped,
)
from novacron.events import InMemoryEventLog
from novacron.migration.admission import AdmissionController
from novacron.scheduler.admission import ConcurrencyCaps, ExecutedAdmission, Move
from novacron.scheduler.cache import CachingScheduler, DecisionCache
from novacron.scheduler.config import SchedulerConfig, build_scheduler
from novacron.scheduler.evacuation import plan_evacuation
from novacron.scheduler.events import (
    HostPowerChanged,
    PlacementDecided,
    PlacementQualitySampled,
    RebalanceMoveRefused,
    RebalanceMoveStarted,
    RebalancePlanned,
)
from novacron.scheduler.health import HostHealth
from novacron.scheduler.quality import measure
from novacron.scheduler.rebalance import (
    PlacedVM,
    Placements,
    RebalanceConfig,
    RebalancePlan,
    plan_balance,
    plan_consolidation,
)
from novacron.scheduler.state import MEMORY, HostTable, PlacementRequest
from sim.allocation import VMRequest, follow_allocations
from sim.context import SimContext
from sim.migration.commit import MoveCommitter
from sim.migration.service import MigrationService, rebalancer_admission

FloatArray = npt.NDArray[np.float64]

MODEL_FIXED_MS_PER_POLICY = 0.007
MODEL_MS_PER_HOST_POLICY = 2.0e-6
MODEL_CACHE_HIT_MS = 0.03


class SimScheduler:
    """The scheduler as the control plane's placer, its host table a projection of the log."""

    def __init__(self, ctx: SimContext, host_ids: list[str], controller: AdmissionController) -> None:
        self.ctx = ctx
        self.config: SchedulerConfig = ctx.scenario.scheduler
        c = ctx.scenario.cluster
        self.table = HostTable.uniform(c.hosts, cpu=c.host_cpu_cores * c.cpu_overcommit,
                                       memory_gib=c.host_memory_gib, network_gbps=c.host_network_gbps,
                                       iops=c.host_disk_iops, numa_nodes=self.config.numa_nodes,
                                       hosts_per_rack=c.hosts_per_rack)
        self.table.host_ids = tuple(host_ids)
        self.rows = {host_id: row for row, host_id in enumerate(host_ids)}
        self.health = HostHealth.all_healthy(len(host_ids))
        """Each host's health score, a projection of ``NodeHealthScored`` (``sim.health``)."""
        self.scheduler = CachingScheduler(build_scheduler(self.config, self.health), DecisionCache(
            ttl_s=self.config.decision_cache_ttl_s, tolerance=self.config.cache_tolerance_pct / 100))
        self.rng = ctx.seeds.numpy("scheduler.tiebreak")
        self.caps = ConcurrencyCaps(max_per_host=self.config.max_moves_per_host, max_total=self.config.max_moves_total)
        self.admission: ExecutedAdmission = self.caps if self.config.admission == "caps" else \
            rebalancer_admission(ctx, controller, self._memory_gib_of)
        self.in_flight: dict[str, Move] = {}
        self.vms = Placements()
        self.claims: dict[int, tuple[int, PlacementRequest, FloatArray]] = {}
        """Move claims held in the table (row, request, NUMA split), so placements leave that room."""
        self.app_rows: dict[int, list[int]] = {}
        self.last_moved_s: dict[str, float] = {}
        self.power_off_pending: set[int] = set()
        self.out_of_service: set[int] = set()
        """Hosts the autoscaler took out of service (``sim.autoscaling``): up, but taking no VMs."""
        self.failed: set[int] = set()
        self.requests = 0
        self.request_of: dict[str, tuple[int, PlacementRequest]] = {}
        """A VM's app and request, kept so a restarted VM keeps its anti-affinity group."""
        self.moves_started = 0
        ctx.config_metrics["scheduler.decision_cache_ttl_s"] = self.config.decision_cache_ttl_s
        self._subscribe(ctx.log)

    def _subscribe(self, log: InMemoryEventLog) -> None:
        """The table follows the control plane's decisions and host liveness."""
        follow_allocations(log, placed=self._on_placed, moved=self._on_moved, ended=self._on_ended)
        log.subscribe(MoveClaimed, self._on_claimed)
        log.subscribe(MoveClaimReleased, self._on_claim_released)
        log.subscribe(HostFailed, self._on_host_failed)
        log.subscribe(HostRecovered, self._on_host_recovered)
        if self.config.uses_health():
            log.subscribe(NodeHealthScored, self._on_health_scored)

    def request_for(self, vm_id: str, cpu: int, memory_gib: float) -> tuple[int, PlacementRequest]:
        known = self.request_of.get(vm_id)
        if known is not None:  # a restart: same app, same anti-affinity group
            return known
        cfg, n = self.config, self.requests
        self.requests += 1
        app = n // cfg.anti_affinity_group_size if cfg.anti_affinity_group_size else n
        peers = tuple(self.app_rows.get(app, [])[-cfg.peers_per_vm:]) if cfg.peers_per_vm else ()
        group = f"app-{app}" if cfg.anti_affinity_group_size > 1 else None
        self.request_of[vm_id] = app, PlacementRequest(vm_id=vm_id, demand=self.request_demand(cpu, memory_gib),
                                                       anti_affinity_group=group, peer_hosts=peers)
        return self.request_of[vm_id]

    def choose_host(self, vm: VMRequest) -> tuple[int | None, str, float]:
        """Pick a host for one VM: (host index or None, rejection reason, modelled decision ms).
        The control plane allocates it; the table follows the recorded ``VMPlaced``."""
        _, request = self.request_for(vm.vm_id, vm.cpu_cores, vm.memory_gib)
        decision = self.scheduler.place(self.table, request, self.rng, self.ctx.env.now)
        policies = self.scheduler.scheduler.policy_count
        modelled_ms = MODEL_CACHE_HIT_MS if decision.cached else policies * (
            MODEL_FIXED_MS_PER_POLICY + MODEL_MS_PER_HOST_POLICY * self.table.size)
        if decision.row is None:
            return None, f"no feasible host ({decision.rejected_by})", modelled_ms
        row = decision.row
        if not self.table.powered_on[row]:
            self._power(row, on=True)
        self.ctx.recorder.emit(PlacementDecided, source="scheduler", vm_id=vm.vm_id, host_id=self.table.host_ids[row],
                               hosts_feasible=decision.hosts_feasible, policy_count=policies,
                               cache_hit=decision.cached, decision_ms=modelled_ms)
        return row, "", modelled_ms

    def feasible_rows(self, vm: VMRequest) -> npt.NDArray[np.bool_]:
        """Hosts powered on that pass every filter for this VM now (no state change): where another
        placer (the memory pool's affinity) may put it instead of the scheduler's choice."""
        _, request = self.request_for(vm.vm_id, vm.cpu_cores, vm.memory_gib)
        mask, _ = self.scheduler.scheduler.feasible(self.table, request)
        return mask & self.table.powered_on

    def can_place(self, vm: VMRequest) -> bool:
        """Whether some host passes every filter for this VM now (no state change): lets a
        caller avoid a rejection that would end a failed VM's life."""
        _, request = self.request_for(vm.vm_id, vm.cpu_cores, vm.memory_gib)
        mask, rejected_by = self.scheduler.scheduler.feasible(self.table, request, lenient=True)
        return rejected_by is None and bool(mask.any())

    def _memory_gib_of(self, vm_id: str) -> float:
        vm = self.vms.get(vm_id)
        return vm.request.demand[MEMORY] if vm is not None else 0.0

    # --- the projection ---------------------------------------------------------------------------

    def _on_placed(self, ev: VMPlaced) -> None:
        # A VM another placer put there (``sim.gpus``' GPU VMs) joins the table like the scheduler's own.
        app, request = self.request_for(ev.vm_id, ev.cpu_cores, ev.memory_gib)
        row = self.rows[ev.host_id]
        self.vms.put(PlacedVM(request, row, self.table.allocate(row, request)))
        self.app_rows.setdefault(app, []).append(row)
        self.power_off_pending.discard(row)

    def _on_ended(self, ev: VMStopped | VMFailed) -> None:
        vm = self.vms.pop(ev.vm_id)
        if vm is not None:
            self.table.release(vm.row, vm.request, vm.numa_split)

    def _on_moved(self, ev: VMMoved) -> None:
        vm = self.vms[ev.vm_id]
        destination = self.rows[ev.host_id]
        self.table.release(vm.row, vm.request, vm.numa_split)
        self.vms.put(PlacedVM(vm.request, destination, self.table.allocate(destination, vm.request)))
        self.last_moved_s[ev.vm_id] = ev.t_s
        if not self.table.powered_on[destination]:
            self._power(destination, on=True)
        self.power_off_pending.discard(destination)

    def _on_claimed(self, ev: MoveClaimed) -> None:
        row, request = self.rows[ev.host_id], self.vms[ev.vm_id].request
        self.claims[ev.claim_id] = (row, request, self.table.allocate(row, request))

    def _on_claim_released(self, ev: MoveClaimReleased) -> None:
        row, request, split = self.claims.pop(ev.claim_id)
        self.table.release(row, request, split)

    def _on_host_failed(self, ev: HostFailed) -> None:
        self.failed.add(self.rows[ev.host_id])
        self.table.up[self.rows[ev.host_id]] = False

    def _on_host_recovered(self, ev: HostRecovered) -> None:
        row = self.rows[ev.host_id]
        self.failed.discard(row)
        self.table.up[row] = row not in self.out_of_service

    def _on_health_scored(self, ev: NodeHealthScored) -> None:
        row = self.rows.get(ev.node_id)
        if row is not None:
            self.health.record(row, score=ev.health_score, pressure=ev.pressure)

    def set_in_service(self, row: int, in_service: bool) -> None:
        """The autoscaler's cordon: a host out of service passes no placement filter (as if down)."""
        if in_service:
            self.out_of_service.discard(row)
        else:
            self.out_of_service.add(row)
        self.table.up[row] = in_service and row not in self.failed

    def set_power(self, row: int, *, on: bool) -> None:
        """Power a host on or off for the autoscaler (its VMs must have left first)."""
        if bool(self.table.powered_on[row]) != on:
            self._power(row, on=on)

    def _power(self, row: int, *, on: bool) -> None:
        self.table.powered_on[row] = on
        self.ctx.recorder.emit(HostPowerChanged, source="scheduler", host_id=self.table.host_ids[row], powered_on=on)

    def rebalance_config(self) -> RebalanceConfig:
        cfg = self.config
        return RebalanceConfig(imbalance_threshold_pct=cfg.imbalance_threshold_pct,
                               max_moves_per_host=cfg.max_moves_per_host, max_moves_total=cfg.max_moves_total,
                               ping_pong_window_s=cfg.ping_pong_window_s)

    def plan(self) -> RebalancePlan:
        planner = plan_consolidation if self.config.rebalance == "consolidate" else plan_balance
        return planner(self.table, self.vms, self.scheduler.scheduler, self.admission, config=self.rebalance_config(),
                       last_moved_s=self.last_moved_s, now_s=self.ctx.env.now, excluded=self.in_flight)

    def rebalance(self, committer: MoveCommitter,
                  migrations: MigrationService) -> Generator[simpy.Event, None, None]:
        while True:
            yield self.ctx.env.timeout(self.config.rebalance_interval_s)
            self._power_off_empty_hosts()
            plan = self.plan()
            self.ctx.recorder.emit(RebalancePlanned, source="rebalancer", rebalance_mode=plan.mode,
                                   moves_planned=len(plan.moves), imbalance_before_pct=plan.imbalance_before_pct,
                                   imbalance_after_pct=plan.imbalance_after_pct,
                                   hosts_to_power_off=len(plan.hosts_to_power_off))
            self.power_off_pending.update(self.rows[h] for h in plan.hosts_to_power_off)
            for move in plan.moves:
                self.ctx.env.process(self.execute_move(move, committer, migrations))
            self._power_off_empty_hosts()

    def evacuate(self, committer: MoveCommitter,
                 migrations: MigrationService) -> Generator[simpy.Event, None, None]:
        """Every ``health_evacuate_interval_s``: move VMs off the hosts scoring below
        ``health_min_score`` (``plan_evacuation``), through the same claim, admission and
        migration path as the rebalancer's moves."""
        while True:
            yield self.ctx.env.timeout(self.config.health_evacuate_interval_s)
            plan = plan_evacuation(self.table, self.vms, self.scheduler.scheduler, self.admission,
                                   health=self.health, min_score=self.config.health_min_score,
                                   config=self.rebalance_config(), now_s=self.ctx.env.now, excluded=self.in_flight)
            if not plan.moves:
                continue
            self.ctx.recorder.emit(RebalancePlanned, source="rebalancer", rebalance_mode=plan.mode,
                                   moves_planned=len(plan.moves), imbalance_before_pct=plan.imbalance_before_pct,
                                   imbalance_after_pct=plan.imbalance_after_pct, hosts_to_power_off=0)
            for move in plan.moves:
                self.ctx.env.process(self.execute_move(move, committer, migrations))

    def execute_move(self, move: Move, committer: MoveCommitter,
                     migrations: MigrationService) -> Generator[simpy.Event, None, None]:
        """One planned move: claim the destination, run the migration through the run's
        migration service (the QEMU model and the core controller), commit it through the
        control plane only if the copy completed and the VM is still on its source."""
        vm = self.vms.get(move.vm_id)
        if vm is None or self.table.host_ids[vm.row] != move.source_host_id:
            self._refused(move, "stale: the VM or the destination changed since the plan")
            return
        claim = committer.claim(move.vm_id, move.destination_host_id)
        if claim is None:
            self._refused(move, "stale: the destination is down or has no room for the VM")
            return
        if not self.start_move(move):
            committer.release(claim)
            return
        self.ctx.recorder.emit(RebalanceMoveStarted, source="rebalancer", vm_id=move.vm_id,
                               from_host_id=move.source_host_id, host_id=move.destination_host_id)
        migration_id = f"rebalance-{self.moves_started:05d}"
        self.moves_started += 1
        reason = yield from migrations.run_migration(migration_id, move.vm_id, move.destination_host_id, claim,
                                                     committer, mover="rebalancer")
        self.finish_move(move)
        if reason:
            self._refused(move, f"superseded: {reason}")
        self._power_off_empty_hosts()

    def _refused(self, move: Move, reason: str) -> None:
        self.ctx.recorder.emit(RebalanceMoveRefused, source="rebalancer", vm_id=move.vm_id, reason=reason)

    def start_move(self, move: Move) -> bool:
        """Take the admission slot when the move starts; the admission's answer now is final."""
        try:
            self.admission.started(move)
        except ValueError as refused:
            self._refused(move, str(refused))
            return False
        self.in_flight[move.vm_id] = move
        return True

    def finish_move(self, move: Move) -> None:
        self.in_flight.pop(move.vm_id, None)
        self.admission.finished(move.vm_id)

    def _power_off_empty_hosts(self) -> None:
        busy = {h for m in self.in_flight.values() for h in (m.source_host_id, m.destination_host_id)}
        for row in sorted(self.power_off_pending):
            if self.table.allocated[:, row].sum() <= 1e-9 and self.table.host_ids[row] not in busy:
                self.power_off_pending.discard(row)
                if self.table.powered_on[row]:
                    self._power(row, on=False)

    def sample_quality(self) -> Generator[simpy.Event, None, None]:
        w = self.ctx.scenario.workload
        flavours = [self.request_demand(c, m) for c, m in zip(w.vm_cpu_cores, w.vm_memory_gib, strict=True)]
        smallest, largest = np.min(flavours, axis=0), np.max(flavours, axis=0)
        while True:
            yield self.ctx.env.timeout(self.config.quality_sample_s)
            q = measure(self.table, self.config.headroom(), smallest=smallest, reference=largest)
            # The event carries exactly the measurement's fields (one schema, no hand copy).
            self.ctx.recorder.emit(PlacementQualitySampled, source="scheduler", **dataclasses.asdict(q))

    def request_demand(self, cpu: int, memory_gib: float) -> tuple[float, float, float, float]:
        cfg = self.config
        return (float(cpu), memory_gib, cpu * cfg.vm_network_gbps_per_vcpu, cpu * cfg.vm_iops_per_vcpu)



def build(ctx: SimContext, host_ids: list[str], controller: AdmissionController) -> SimScheduler | None:
    """The run's scheduler, or ``None`` with ``placer = "first_fit"`` (the control plane places)."""
    if ctx.scenario.scheduler.placer == "first_fit":
        return None
    return SimScheduler(ctx, host_ids, controller)


def start(ctx: SimContext, scheduler: SimScheduler, committer: MoveCommitter, migrations: MigrationService) -> None:
    """Start the scheduler's processes: quality samples and, unless off, the rebalancer."""
    ctx.env.process(scheduler.sample_quality())
    if ctx.scenario.scheduler.rebalance != "off":
        ctx.env.process(scheduler.rebalance(committer, migrations))
    if ctx.scenario.scheduler.health_min_score > 0:
        ctx.env.process(scheduler.evacuate(committer, migrations))

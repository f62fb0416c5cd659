"""The placement scheduler in the simulation: placing VMs, rebalancing, quality samples.

Theory of operation
-------------------
``SimScheduler`` owns the scheduler's ``HostTable`` (the truth for allocations) and mirrors CPU
and memory into the foundation's ``Inventory`` arrays after every change, so the utilisation
sampler reads the same placement. Each VM request becomes a ``PlacementRequest``: its network
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

Rebalancing runs every ``rebalance_interval_s``. Moves are admitted by the migration
subsystem's ``AdmissionController`` (``[scheduler] admission = "migration"``: its cost model,
headroom, caps and token bucket, with host loads from the inventory's CPU samples and the
table's allocations) or by the plain caps (``"caps"``); a move the admission refuses when it
is about to start is dropped (``RebalanceMoveRefused``) and re-planned next round. This
controller is the run's one shared controller (``sim.migration.service.shared_admission``), also
used by the migration batch, so the caps hold across both. VMs that other components move (``VMMoved``
from another source) are read back from the log, so the table stays the truth. A move reserves the VM's resources on the
destination when it starts (as Nova claims them) and frees the source when it ends; its
duration is a stand-in model (2 s + memory over the move's NIC share, ``move_share``) until the migration
subsystem drives the moves. Consolidation powers a host off once it is empty; placing a VM on
a powered-off host powers it on.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, cast

import numpy as np
import simpy

from novacron.cluster.events import HostUtilisationSampled, VMFailed, VMMoved, VMStopped
from novacron.migration.admission import HostLoad
from novacron.scheduler.admission import ConcurrencyCaps, ExecutedAdmission, Move
from novacron.scheduler.cache import CachingScheduler, DecisionCache
from novacron.scheduler.config import SchedulerConfig, build_scheduler
from novacron.scheduler.events import (
    HostPowerChanged,
    PlacementDecided,
    PlacementQualitySampled,
    RebalanceMoveRefused,
    RebalanceMoveStarted,
    RebalancePlanned,
)
from novacron.scheduler.quality import measure
from novacron.scheduler.rebalance import PlacedVM, RebalanceConfig, RebalancePlan, plan_balance, plan_consolidation
from novacron.scheduler.state import CPU, MEMORY, NETWORK, HostTable, PlacementRequest
from sim.context import SimContext
from sim.migration.service import rebalancer_admission, shared_admission

if TYPE_CHECKING:
    from sim.inventory import Inventory
    from sim.migration.commit import CommitOutcome, MoveCommitter

MODEL_FIXED_MS_PER_POLICY = 0.007
MODEL_MS_PER_HOST_POLICY = 2.0e-6
MODEL_CACHE_HIT_MS = 0.03


class SimScheduler:
    """The scheduler wired to the simulated inventory: the placer ``place_vm`` calls."""

    def __init__(self, ctx: SimContext, inv: Inventory) -> None:
        self.ctx, self.inv = ctx, inv
        self.config: SchedulerConfig = ctx.scenario.scheduler
        c = ctx.scenario.cluster
        self.table = HostTable.uniform(c.hosts, cpu=c.host_cpu_cores * c.cpu_overcommit,
                                       memory_gib=c.host_memory_gib, network_gbps=c.host_network_gbps,
                                       iops=c.host_disk_iops, numa_nodes=self.config.numa_nodes,
                                       hosts_per_rack=c.hosts_per_rack)
        self.table.host_ids = tuple(inv.host_ids)
        self.rows = {host_id: row for row, host_id in enumerate(inv.host_ids)}
        self.scheduler = CachingScheduler(build_scheduler(self.config), DecisionCache(
            ttl_s=self.config.decision_cache_ttl_s, tolerance=self.config.cache_tolerance_pct / 100))
        self.rng = ctx.seeds.numpy("scheduler.tiebreak")
        self.caps = ConcurrencyCaps(max_per_host=self.config.max_moves_per_host, max_total=self.config.max_moves_total)
        self.controller = shared_admission(ctx)
        self.admission: ExecutedAdmission = self.caps if self.config.admission == "caps" else \
            rebalancer_admission(ctx, self._memory_gib_of)
        self.in_flight: dict[str, Move] = {}
        self.events_seen = 0
        self.cpu_pct: dict[str, float] = {}
        self.vms: dict[str, PlacedVM] = {}
        self.app_rows: dict[int, list[int]] = {}
        self.last_moved_s: dict[str, float] = {}
        self.power_off_pending: set[int] = set()
        self.requests = 0
        self.request_of: dict[str, tuple[int, PlacementRequest]] = {}
        """A VM's app and request, kept so a restarted VM keeps its anti-affinity group."""
        self.reserved = np.zeros_like(self.table.allocated)
        """Destination claims of moves in flight: in the table, not yet in the inventory."""
        self.on_moved: Callable[[str, int], None] | None = None
        """Told (VM id, new host index) after every move, so a cluster model owning VM records
        (``sim/cluster_model.py``) follows moves it did not make."""
        self.committer: MoveCommitter | None = None
        """Set by a cluster model: moves claim the destination and commit through its control plane."""
        ctx.config_metrics["scheduler.decision_cache_ttl_s"] = self.config.decision_cache_ttl_s

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

    def place(self, vm_id: str, cpu: int, memory_gib: float) -> tuple[int | None, str, float]:
        """Place one VM: (host index or None, rejection reason, modelled decision ms)."""
        app, request = self.request_for(vm_id, cpu, memory_gib)
        self.absorb_log()
        decision = self.scheduler.place(self.table, request, self.rng, self.ctx.env.now)
        policies = self.scheduler.scheduler.policy_count
        modelled_ms = MODEL_CACHE_HIT_MS if decision.cached else policies * (
            MODEL_FIXED_MS_PER_POLICY + MODEL_MS_PER_HOST_POLICY * self.table.size)
        if decision.row is None:
            return None, f"no feasible host ({decision.rejected_by})", modelled_ms
        row = decision.row
        if not self.table.powered_on[row]:
            self._power(row, on=True)
        self.ctx.recorder.emit(PlacementDecided, source="scheduler", vm_id=vm_id, host_id=self.table.host_ids[row],
                               hosts_feasible=decision.hosts_feasible, policy_count=policies,
                               cache_hit=decision.cached, decision_ms=modelled_ms)
        self.vms[vm_id] = PlacedVM(request, row, self.table.allocate(row, request))
        self.app_rows.setdefault(app, []).append(row)
        self.power_off_pending.discard(row)
        self._mirror()
        return row, "", modelled_ms

    def can_place(self, vm_id: str, cpu: int, memory_gib: float) -> bool:
        """Whether some host passes every filter for this VM now (no state change): lets a
        caller avoid a rejection that would end a failed VM's life."""
        self.absorb_log()
        _, request = self.request_for(vm_id, cpu, memory_gib)
        mask, rejected_by = self.scheduler.scheduler.feasible(self.table, request)
        return rejected_by is None and bool(mask.any())

    def _memory_gib_of(self, vm_id: str) -> float:
        vm = self.vms.get(vm_id)
        return vm.request.demand[MEMORY] if vm is not None else 0.0

    def move_share(self) -> float:
        """A move's share of the NIC: the network ceiling split among a host's concurrent moves
        (as the migration batch budgets its streams), so moves alone never break the headroom."""
        return (1.0 - self.config.headroom_network_pct / 100.0) / self.config.max_moves_per_host

    def update_loads(self) -> None:
        """Host loads for admission, as utilisation: CPU from the inventory's samples, memory
        as allocated (it is reserved). Network and I/O reservations are not traffic, so they
        count as 0 here, as in the migration batch; the moves' own streams are the cost."""
        memory_pct = 100.0 * self.table.allocated[MEMORY] / self.table.capacity[MEMORY]
        for row, host_id in enumerate(self.table.host_ids):
            self.controller.update_host(host_id, HostLoad(cpu_pct=self.cpu_pct.get(host_id, 0.0),
                                                          memory_pct=float(memory_pct[row])))

    def absorb_log(self) -> None:
        """Catch up with what others changed: host up/down (the inventory), CPU samples, VMs
        that stopped or failed, and VMs other components moved, so the table stays the truth."""
        self.table.up[:] = self.inv.host_up
        log, changed = self.ctx.log, False
        while self.events_seen < len(log):
            ev = log[self.events_seen]
            self.events_seen += 1
            if isinstance(ev, HostUtilisationSampled):
                self.cpu_pct[ev.host_id] = ev.cpu_pct
            elif isinstance(ev, VMStopped | VMFailed):
                changed |= self._absorb_end(ev.vm_id)
            elif isinstance(ev, VMMoved):  # a no-op for moves the table already has
                changed |= self._absorb_move(ev)
        if changed:
            self._mirror()

    def _absorb_end(self, vm_id: str) -> bool:
        vm = self.vms.pop(vm_id, None)
        if vm is None:
            return False
        self.table.release(vm.row, vm.request, vm.numa_split)
        self.inv.vm_host.pop(vm_id, None)  # the releaser already did, unless a move re-added it
        return True

    def _absorb_move(self, ev: VMMoved) -> bool:
        vm = self.vms.get(ev.vm_id)
        if vm is None or ev.host_id not in self.rows or self.table.host_ids[vm.row] == ev.host_id:
            return False
        # The VM ends where the log says, as the projection has it, even when the mover's idea of
        # its source was stale (the migration batch reads placements once, when it starts).
        destination = self.rows[ev.host_id]
        self.table.release(vm.row, vm.request, vm.numa_split)
        self.vms[ev.vm_id] = PlacedVM(vm.request, destination, self.table.allocate(destination, vm.request))
        self.inv.vm_host[ev.vm_id] = destination
        self.last_moved_s[ev.vm_id] = ev.t_s
        if not self.table.powered_on[destination]:
            self._power(destination, on=True)
        self.power_off_pending.discard(destination)
        if self.on_moved is not None:
            self.on_moved(ev.vm_id, destination)
        return True

    def _mirror(self) -> None:
        """The inventory holds placed VMs only; in-flight destination claims stay in the table."""
        self.inv.cpu_allocated[:] = self.table.allocated[CPU] - self.reserved[CPU]
        self.inv.memory_allocated_gib[:] = self.table.allocated[MEMORY] - self.reserved[MEMORY]

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
        self.absorb_log()
        self.update_loads()
        vms = [v for v in self.vms.values() if v.request.vm_id not in self.in_flight]
        return planner(self.table, vms, self.scheduler.scheduler, self.admission, config=self.rebalance_config(),
                       last_moved_s=self.last_moved_s, now_s=self.ctx.env.now)

    def rebalance(self) -> Generator[simpy.Event, None, None]:
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
                self.ctx.env.process(self.migrate(move))
            self._power_off_empty_hosts()

    def migrate(self, move: Move) -> Generator[simpy.Event, None, None]:
        if self.committer is not None:
            yield from self.migrate_committed(move, self.committer)
            return
        self.absorb_log()
        vm, destination = self.vms.get(move.vm_id), self.rows[move.destination_host_id]
        if vm is None or self.table.host_ids[vm.row] != move.source_host_id or not self.table.up[destination]:
            self._refused(move, "stale: the VM or the destination changed since the plan")
            return
        if not self.start_move(move):
            return
        self.ctx.recorder.emit(RebalanceMoveStarted, source="rebalancer", vm_id=move.vm_id,
                               from_host_id=move.source_host_id, host_id=move.destination_host_id)
        demand = vm.request.demand_array()
        claim = self.table.allocate(destination, vm.request)  # claimed on the destination at start
        self.reserved[:, destination] += demand
        yield self.ctx.env.timeout(self.move_duration_s(vm.request, destination))
        self.absorb_log()
        self.finish_move(move)
        self.reserved[:, destination] = np.maximum(self.reserved[:, destination] - demand, 0.0)
        self.table.release(destination, vm.request, claim)
        current = self.vms.get(move.vm_id)
        if current is None or current.row != vm.row or not self.table.up[destination]:
            self._mirror()  # the VM stopped, failed or moved meanwhile, or the destination crashed
            self._refused(move, "superseded: the VM or the destination changed during the move")
            return
        self.table.release(vm.row, vm.request, vm.numa_split)
        self.vms[move.vm_id] = PlacedVM(vm.request, destination, self.table.allocate(destination, vm.request))
        self.inv.vm_host[move.vm_id] = destination
        self._mirror()
        self.last_moved_s[move.vm_id] = self.ctx.env.now
        self.ctx.recorder.emit(VMMoved, source="rebalancer", vm_id=move.vm_id, from_host_id=move.source_host_id,
                               host_id=move.destination_host_id)
        if self.on_moved is not None:
            self.on_moved(move.vm_id, destination)
        self._power_off_empty_hosts()

    def move_duration_s(self, request: PlacementRequest, destination: int) -> float:
        nic_gbps = float(self.table.capacity[NETWORK, destination])
        return 2.0 + request.demand[MEMORY] * 8.0 / (self.move_share() * nic_gbps)

    def migrate_committed(self, move: Move, committer: MoveCommitter) -> Generator[simpy.Event, None, None]:
        """A move with a cluster model: claim the destination at start (through the committer,
        in this table), commit through the control plane at the end only if the VM is still on
        its source; the table then follows the recorded ``VMMoved`` (``absorb_log``)."""
        self.absorb_log()
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
        yield self.ctx.env.timeout(self.move_duration_s(vm.request, claim.host))
        committed = committer.commit(claim, move.source_host_id, mover="rebalancer")
        yield committed
        outcome = cast("CommitOutcome", committed.value)
        self.finish_move(move)
        if outcome.host is None:
            self._refused(move, f"superseded: {outcome.reason}")
        self._mirror()
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
            self.absorb_log()
            q = measure(self.table, self.config.headroom(), smallest=smallest, reference=largest)
            # The event carries exactly the measurement's fields (one schema, no hand copy).
            self.ctx.recorder.emit(PlacementQualitySampled, source="scheduler", **dataclasses.asdict(q))

    def request_demand(self, cpu: int, memory_gib: float) -> tuple[float, float, float, float]:
        cfg = self.config
        return (float(cpu), memory_gib, cpu * cfg.vm_network_gbps_per_vcpu, cpu * cfg.vm_iops_per_vcpu)


def attach(ctx: SimContext, inv: Inventory) -> SimScheduler | None:
    """Start the scheduler's processes and make it the inventory's placer (unless first fit)."""
    if ctx.scenario.scheduler.placer == "first_fit":
        return None
    scheduler = SimScheduler(ctx, inv)
    inv.placer = scheduler.place
    inv.can_place = scheduler.can_place
    ctx.env.process(scheduler.sample_quality())
    if ctx.scenario.scheduler.rebalance != "off":
        ctx.env.process(scheduler.rebalance())
    return scheduler

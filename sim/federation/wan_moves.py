"""Cross-datacenter migrations in the federation model: a VM and its disk over the WAN.

Theory of operation
-------------------
``[federation] migrations`` moves start uniformly in ``migration_window_s`` after
``migration_start_s``. Each picks a running VM (drawn from the run's generator) and a cluster of
another datacenter that is not lost and holds no member of the VM's HA group (the global
scheduler's ranking, as seen from the source cluster's view). A move is admitted only while its
source host sends fewer than ``max_concurrent_per_host`` and the federation fewer than
``max_concurrent_global`` (the migration admission caps); otherwise it waits and asks again.

The source delegates to the destination, which reserves a host (its scheduler, with headroom)
and answers; the copy then takes the time ``novacron.federation.wan_migration`` plans for the
link between the two datacenters (its bandwidth share and RTT, the disk, the guest's memory and
dirty rate, the scenario's downtime limit). At the end the destination records the move through
the federation group and the VM runs there; a move whose pre-copy would not converge, or whose
source or destination was lost meanwhile, is aborted and the reservation given back. Its bytes
count as WAN traffic of the source datacenter.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

from novacron.federation.events import CrossDatacenterMigrationFinished
from novacron.federation.placement import PlacementRequest, rank_clusters
from novacron.federation.state import FederationStateMachine
from novacron.federation.wan_migration import WanMove, plan_block_live, plan_cold, wan_link
from novacron.migration.planner import VMMigrationProfile
from sim.federation.model import MESSAGE_BYTES, ClusterAgent, FederationModel, LocalVM

GIB = 1 << 30
MIB = 1 << 20
WWS_FRACTION = 0.1
"""Writable working set of a federation VM: a tenth of its memory."""
DIRTY_RATE_PAGES_S = 2000.0
"""A moderately busy guest (LAB.md measured 2,000-20,000 pages/s for its dirtier)."""
RETRY_S = 10.0


@dataclass
class Move:
    vm_id: str
    source: int
    host: int
    target: int = -1
    plan: WanMove | None = None


class WanMoves:
    def __init__(self, model: FederationModel, downtime_limit_ms: float) -> None:
        self.model = model
        self.downtime_limit_ms = downtime_limit_ms
        self.running: dict[str, Move] = {}
        self.cap = model.shape.caps_global
        """Moves in flight at most (the global admission cap, counted here)."""

    def schedule(self) -> None:
        m = self.model
        s = m.section
        for _ in range(s.migrations):
            at_s = s.migration_start_s + m.moves_rng.random() * s.migration_window_s
            m.raft.schedule(at_s, self.request)

    def request(self) -> None:
        m = self.model
        candidates = sorted((vm, a.index) for a in m.own_clusters() if a.alive for vm, v in a.vms.items()
                            if v.running and vm not in self.running)
        if not candidates:
            return
        vm, source = candidates[int(m.moves_rng.random() * len(candidates))]
        self._try(vm, source)

    def _try(self, vm: str, source: int) -> None:
        m = self.model
        agent = m.clusters[source]
        local = agent.vms.get(vm)
        if not agent.alive or local is None or not local.running or vm in self.running:
            return
        on_host = sum(1 for mv in self.running.values() if mv.source == source and mv.host == local.host)
        if on_host >= m.shape.caps_per_host or len(self.running) >= self.cap:
            m.raft.schedule(m.now_s + RETRY_S, partial(self._try, vm, source))
            return
        target = self._destination(agent, vm)
        if target is None:
            return
        move = Move(vm, source, local.host, target)
        self.running[vm] = move
        self._ask_target(move, local)

    def _ask_target(self, move: Move, local: LocalVM) -> None:
        self.model.send(move.source, move.target, MESSAGE_BYTES, partial(self._reserve, move, local))

    def _destination(self, agent: ClusterAgent, vm: str) -> int | None:
        m = self.model
        state = m.state_of(agent.index)
        placed = state.vms.get(vm)
        if placed is None:
            return None
        per_dc = m.section.clusters_per_datacenter
        partners = {q.cluster // per_dc for other, q in state.vms.items()
                    if placed.group and q.group == placed.group and other != vm}
        others = [dc for dc in range(len(m.matrix.datacenters)) if dc != agent.datacenter and dc not in state.lost]
        if not others:
            return None
        dc = others[int(m.moves_rng.random() * len(others))]
        req = PlacementRequest(vm_id=vm, cpu=placed.cpu, memory_gib=placed.memory_gib, user_datacenter=dc,
                               data_datacenter=dc, group=placed.group)
        ranking = rank_clusters(req, agent.view.snapshot(), m.policy, lost=state.lost,
                                avoid_datacenters=partners | {agent.datacenter})
        return ranking[0] if ranking else None

    def _reserve(self, move: Move, local: LocalVM) -> None:
        m = self.model
        target = m.clusters[move.target]
        host = target.scheduler.place(local.cpu, local.memory_gib)
        if host is None:
            m.send(move.target, move.source, MESSAGE_BYTES, partial(self._end, move, "aborted", None))
            return
        target.vms[move.vm_id] = LocalVM(host, local.cpu, local.memory_gib)
        m.send(move.target, move.source, MESSAGE_BYTES, partial(self._copy, move, local, host))

    def _copy(self, move: Move, local: LocalVM, host: int) -> None:
        m = self.model
        s = m.section
        src_dc, dst_dc = m.clusters[move.source].datacenter, m.clusters[move.target].datacenter
        link = wan_link(m.matrix.bandwidth_mbit_s, s.migration_wan_share, m.matrix.rtt(src_dc, dst_dc))
        memory = int(local.memory_gib * GIB)
        vm = VMMigrationProfile(vm_id=move.vm_id, memory_bytes=memory, wws_bytes=int(memory * WWS_FRACTION),
                                dirty_rate_pages_s=DIRTY_RATE_PAGES_S, disk_bytes=int(s.vm_disk_gib * GIB))
        move.plan = plan = (plan_cold(vm, link) if s.migration_kind == "cold" else
                            plan_block_live(vm, link, disk_write_bytes_s=s.disk_write_mib_s * MIB,
                                            downtime_limit_ms=self.downtime_limit_ms))
        m.network.wan_sent_bytes[src_dc] += plan.wan_bytes
        if not plan.converges:
            self._give_back(move, host)
            self._end(move, "aborted", plan)
            return
        m.raft.schedule(m.now_s + plan.total_time_ms / 1000.0, partial(self._switch, move, host))

    def _switch(self, move: Move, host: int) -> None:
        m = self.model
        source, target = m.clusters[move.source], m.clusters[move.target]
        if not source.alive or not target.alive or move.vm_id not in source.vms:
            self._give_back(move, host)
            self._end(move, "aborted", move.plan)
            return
        source.vms[move.vm_id].running = False  # switch-over: the guest pauses on the source (the downtime)
        data = FederationStateMachine.move(m.new_command_id("move"), move.vm_id, move.source, move.target, host)
        m.replicate(target, data, on_applied=partial(self._recorded, move, host))

    def _recorded(self, move: Move, host: int) -> None:
        m = self.model
        source, target = m.clusters[move.source], m.clusters[move.target]
        placed = m.state_of(target.index).vms.get(move.vm_id)
        if placed is None or placed.cluster != target.index or placed.host != host:
            self._give_back(move, host)
            if move.vm_id in source.vms and source.alive:
                source.vms[move.vm_id].running = True  # the group refused the move: resume on the source
            self._end(move, "aborted", move.plan)
            return
        target.vms[move.vm_id].running = True
        old = source.vms.pop(move.vm_id, None)
        if old is not None:
            source.scheduler.release(old.host, old.cpu, old.memory_gib)
        self._end(move, "completed", move.plan)

    def _give_back(self, move: Move, host: int) -> None:
        target = self.model.clusters[move.target]
        local = target.vms.pop(move.vm_id, None)
        if local is not None and not local.running:
            target.scheduler.release(host, local.cpu, local.memory_gib)

    def _end(self, move: Move, outcome: str, plan: WanMove | None) -> None:
        m = self.model
        self.running.pop(move.vm_id, None)
        completed = outcome == "completed" and plan is not None
        m.emit(CrossDatacenterMigrationFinished, vm_id=move.vm_id,
               from_datacenter=m.dc_name(m.clusters[move.source].datacenter),
               datacenter=m.dc_name(m.clusters[move.target].datacenter), migration_kind=m.section.migration_kind,
               outcome=outcome, total_time_ms=plan.total_time_ms if completed and plan else 0.0,
               downtime_ms=plan.downtime_ms if completed and plan else 0.0,
               wan_bytes=plan.wan_bytes if plan is not None else 0)

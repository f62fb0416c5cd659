"""Cross-datacenter moves in a run partitioned by datacenter: ``WanMoves`` as messages.

Theory of operation
-------------------
The single-process ``sim.federation.wan_moves`` touches both ends of a move from one place (the
target reserves, the source pauses, the target's replica records, the source releases) and counts
the global admission cap in one table. Here every step runs in the datacenter that owns it and the
other end learns of it by a message:

    source: pick a VM and a destination (its view, its replica)  --reserve-->  target
    target: reserve a host or refuse                               --answer-->  source
    source: plan the copy; after it, pause the VM                  --switch-->  target
    target: record the move through the federation group           --done--->   source
    source: release the old host (or resume the VM), report the outcome

The move's outcome event is emitted by the source when it learns it. The global cap
``max_concurrent_global`` becomes a static share per source datacenter
(``max(1, cap // datacenters)``): no datacenter knows the others' moves without a round trip.
Move times come from the run's ``federation.moves`` stream (the same for every datacenter); move
``k`` belongs to datacenter ``k mod datacenters``, which picks one of its own running VMs with its
own generator.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING

from novacron.federation.state import FederationStateMachine
from sim.federation.model import MESSAGE_BYTES, LocalVM
from sim.federation.wan_moves import Move, WanMoves

if TYPE_CHECKING:
    from sim.federation.partition import PartitionedFederation

MOVE_HANDLERS = frozenset({"on_reserve", "on_answer", "on_switch", "on_give_back", "on_done"})


@dataclass
class Reserved:
    """At the target: a host held for an incoming VM."""

    host: int
    cpu: float
    memory_gib: float


class PartitionedMoves(WanMoves):
    model: PartitionedFederation

    def __init__(self, model: PartitionedFederation, downtime_limit_ms: float) -> None:
        super().__init__(model, downtime_limit_ms)
        n = len(model.matrix.datacenters)
        self.cap = max(1, model.shape.caps_global // n)

    def schedule(self) -> None:
        m = self.model
        s = m.section
        rng = m.shared_rng("federation.moves")
        n = len(m.matrix.datacenters)
        for k in range(s.migrations):
            at_s = s.migration_start_s + rng.random() * s.migration_window_s
            if k % n == m.dc:
                m.raft.schedule(at_s, self.request)

    def _ask_target(self, move: Move, local: LocalVM) -> None:
        self.model.post(move.source, move.target, MESSAGE_BYTES, "moves:on_reserve", move.vm_id, move.source,
                        move.target, local.cpu, local.memory_gib)

    # -- at the target ---------------------------------------------------------------------------

    def on_reserve(self, vm: str, source: int, target: int, cpu: float, memory_gib: float) -> None:
        m = self.model
        host = m.clusters[target].scheduler.place(cpu, memory_gib)
        if host is not None:
            m.clusters[target].vms[vm] = LocalVM(host, cpu, memory_gib)
        m.post(target, source, MESSAGE_BYTES, "moves:on_answer", vm, -1 if host is None else host)

    def on_give_back(self, vm: str, target: int, host: int) -> None:
        agent = self.model.clusters[target]
        local = agent.vms.pop(vm, None)
        if local is not None and not local.running:
            agent.scheduler.release(host, local.cpu, local.memory_gib)

    def on_switch(self, vm: str, source: int, target: int, host: int, data: bytes) -> None:
        m = self.model
        m.replicate(m.clusters[target], data, on_applied=partial(self._recorded_here, vm, source, target, host))

    def _recorded_here(self, vm: str, source: int, target: int, host: int) -> None:
        m = self.model
        placed = m.state_of(target).vms.get(vm)
        done = placed is not None and placed.cluster == target and placed.host == host
        if done:
            m.clusters[target].vms[vm].running = True
        else:
            self.on_give_back(vm, target, host)
        m.post(target, source, MESSAGE_BYTES, "moves:on_done", vm, done)

    # -- back at the source ----------------------------------------------------------------------

    def on_answer(self, vm: str, host: int) -> None:
        move = self.running.get(vm)
        if move is None:
            return
        if host < 0:
            self._end(move, "aborted", None)
            return
        local = self.model.clusters[move.source].vms.get(vm)
        if local is None:
            self.model.post(move.source, move.target, MESSAGE_BYTES, "moves:on_give_back", vm, move.target, host)
            self._end(move, "aborted", None)
            return
        self._copy(move, local, host)

    def _give_back(self, move: Move, host: int) -> None:
        m = self.model
        m.post(move.source, move.target, MESSAGE_BYTES, "moves:on_give_back", move.vm_id, move.target, host)

    def _switch(self, move: Move, host: int) -> None:
        m = self.model
        source = m.clusters[move.source]
        if not source.alive or move.vm_id not in source.vms:
            self._give_back(move, host)
            self._end(move, "aborted", move.plan)
            return
        source.vms[move.vm_id].running = False  # switch-over: the guest pauses on the source (the downtime)
        data = FederationStateMachine.move(m.new_command_id("move"), move.vm_id, move.source, move.target, host)
        m.post(move.source, move.target, MESSAGE_BYTES + len(data), "moves:on_switch", move.vm_id, move.source,
               move.target, host, data)

    def on_done(self, vm: str, done: bool) -> None:
        move = self.running.get(vm)
        if move is None:
            return
        source = self.model.clusters[move.source]
        if not done:
            if vm in source.vms and source.alive:
                source.vms[vm].running = True  # the group refused the move: resume on the source
            self._end(move, "aborted", move.plan)
            return
        old = source.vms.pop(vm, None)
        if old is not None:
            source.scheduler.release(old.host, old.cpu, old.memory_gib)
        self._end(move, "completed", move.plan)

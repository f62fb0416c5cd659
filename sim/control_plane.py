"""The control plane seam: every placement, restart, move and claim decision goes through here.

Theory of operation
-------------------
The control plane owns the run's ``AllocationStore`` (``sim.allocation``) and is its only
writer. The cluster model asks it to place a VM, restart a crashed host's VM elsewhere or
commit a move, and gets back a *decision*: a SimPy event that triggers when the decision has
been applied, with the chosen host index (or ``None``) as its value. The model acts on it in a
callback, so decisions may take time without the model changing.

``DirectControlPlane`` decides in-process: the placer (the scheduler's ``choose_host``, or first
fit over the store's arrays) picks a host, the store records the allocation, and the decision
triggers at once. A Raft-backed implementation (``sim.raft.control_plane``) proposes the same
decision to the managers' replicated log and takes it when the entry is applied, so a leader
failover shows up as placement latency (``decision_ms``) and the model does not change.

Every decision is recorded as an event (``VMPlaced``, ``VMRejected``, ``VMMoved``,
``MoveClaimed``, ``MoveClaimReleased``); the projections (scheduler table, VM rows, migration
service, ``ClusterState``) follow those events through the log's subscription.

Contract, whatever the implementation:

- ``place``: when applied, ``VMPlaced`` or ``VMRejected`` has been recorded; value = host or ``None``;
- ``restart_elsewhere``: when applied, ``VMPlaced`` (a FAILED VM running again) has been
  recorded, value = the host; or nothing recorded and value ``None`` (the VM stays failed; the
  model retries when a host recovers) -- never ``VMRejected``, which would end the VM's life;
- ``commit_move``: when applied, ``VMMoved`` has been recorded, value = the new host; or ``None``;
- ``release``, ``claim_room`` and ``release_claim`` act at once: a stopped VM or a crashed host
  frees its room as a host-local fact (the model records ``VMStopped``/``VMFailed``, which say
  why), and a claim is a hold a mover takes and gives back itself.
"""

from __future__ import annotations

from typing import Protocol

import simpy

from novacron.cluster.events import MoveClaimed, MoveClaimReleased, VMMoved, VMPlaced, VMRejected
from novacron.cluster.first_fit import first_fit
from sim.allocation import AllocationStore, Claim, VMRequest
from sim.context import SimContext

Decision = simpy.Event
"""Triggers when a control decision has been applied; its value is a host index or ``None``."""


class Placer(Protocol):
    """Who picks a host (the scheduler); it decides, the control plane allocates."""

    def choose_host(self, vm: VMRequest) -> tuple[int | None, str, float]:
        """(host index or ``None``, rejection reason, modelled decision ms)."""
        ...

    def can_place(self, vm: VMRequest) -> bool:
        """Whether some host would take ``vm`` now (no state change)."""
        ...


def choose_host_or_first_fit(placer: Placer | None, store: AllocationStore,
                             vm: VMRequest) -> tuple[int | None, str, float]:
    """``placer``'s choice for ``vm``; without a placer, the first host with room (no decision time)."""
    if placer is not None:
        return placer.choose_host(vm)
    host = first_fit(store.free_cpu(), store.free_memory_gib(), store.host_up, vm.cpu_cores, vm.memory_gib)
    return host, "no host has room", 0.0


def can_place_or_first_fit(placer: Placer | None, store: AllocationStore, vm: VMRequest) -> bool:
    """Whether ``placer`` (without one: first fit) would take ``vm`` now."""
    return placer.can_place(vm) if placer is not None else store.some_host_fits(vm)


class ControlPlane(Protocol):
    store: AllocationStore

    def place(self, vm: VMRequest) -> Decision:
        """Choose a host for a new VM and allocate it there; value ``None`` if rejected."""
        ...

    def restart_elsewhere(self, vm: VMRequest, failed_host: int) -> Decision:
        """Run a VM whose host crashed on another up host; value ``None`` if none has room yet."""
        ...

    def commit_move(self, vm: VMRequest, to_host: int, mover: str = "controller") -> Decision:
        """Make a finished migration the VM's allocation on ``to_host``; value ``None`` if the
        target cannot take it. ``mover`` (who ran the migration) is the ``VMMoved`` event's source."""
        ...

    def release(self, vm_id: str) -> None:
        """Free the VM's allocation (it stopped, or its host crashed)."""
        ...

    def claim_room(self, vm_id: str, host: int) -> Claim | None:
        """Hold room on ``host`` for a move of running ``vm_id``; ``None`` if it cannot."""
        ...

    def release_claim(self, claim: Claim) -> None:
        """Give a claim's room back (idempotent)."""
        ...


class DirectControlPlane:
    """Decides in-process, instantly, with the placer or first fit."""

    def __init__(self, ctx: SimContext, store: AllocationStore, placer: Placer | None) -> None:
        self._ctx = ctx
        self.store = store
        self._placer = placer

    def _decided(self, host: int | None) -> Decision:
        return self._ctx.env.event().succeed(host)

    def decide_placement(self, vm: VMRequest) -> int | None:
        """Pick a host and allocate the VM there now, recording ``VMPlaced`` or ``VMRejected``."""
        store = self.store
        host, reason, decision_ms = choose_host_or_first_fit(self._placer, store, vm)
        emit = self._ctx.recorder.emit
        if host is None:
            emit(VMRejected, source="placer", vm_id=vm.vm_id, reason=reason)
            return None
        store.allocate(vm, host)
        emit(VMPlaced, source="placer", vm_id=vm.vm_id, host_id=store.host_ids[host], cpu_cores=vm.cpu_cores,
             memory_gib=vm.memory_gib, decision_ms=decision_ms)
        return host

    def decide_restart(self, vm: VMRequest) -> int | None:
        # A placement records VMRejected when nothing fits; a restart must not, so check first.
        fits = can_place_or_first_fit(self._placer, self.store, vm)
        return self.decide_placement(vm) if fits else None

    def decide_move(self, vm: VMRequest, to_host: int, mover: str) -> int | None:
        store = self.store
        from_host = store.host_of(vm.vm_id)  # None: it stopped or failed before this was decided
        if from_host is None or to_host == from_host or not store.fits(vm, to_host):
            return None
        store.move(vm.vm_id, to_host)
        self._ctx.recorder.emit(VMMoved, source=mover, vm_id=vm.vm_id, from_host_id=store.host_ids[from_host],
                                host_id=store.host_ids[to_host])
        return to_host

    def place(self, vm: VMRequest) -> Decision:
        return self._decided(self.decide_placement(vm))

    def restart_elsewhere(self, vm: VMRequest, failed_host: int) -> Decision:
        return self._decided(self.decide_restart(vm))

    def commit_move(self, vm: VMRequest, to_host: int, mover: str = "controller") -> Decision:
        return self._decided(self.decide_move(vm, to_host, mover))

    def release(self, vm_id: str) -> None:
        self.store.release(vm_id)

    def claim_room(self, vm_id: str, host: int) -> Claim | None:
        claim = self.store.claim(vm_id, host)
        if claim is not None:
            self._ctx.recorder.emit(MoveClaimed, source="placer", claim_id=claim.claim_id, vm_id=vm_id,
                                    host_id=self.store.host_ids[host], cpu_cores=claim.vm.cpu_cores,
                                    memory_gib=claim.vm.memory_gib)
        return claim

    def release_claim(self, claim: Claim) -> None:
        if self.store.release_claim(claim):
            self._ctx.recorder.emit(MoveClaimReleased, source="placer", claim_id=claim.claim_id,
                                    vm_id=claim.vm_id, host_id=self.store.host_ids[claim.host])

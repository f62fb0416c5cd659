"""The control plane seam: every placement, restart and migration decision goes through here.

Theory of operation
-------------------
The cluster model (``cluster_model.py``) never changes an allocation itself: it asks a
``ControlPlane`` to place a VM, restart a crashed host's VM elsewhere or migrate a VM, and gets
back a *decision*: a SimPy event that triggers when the decision has been applied, with the
chosen host index (or ``None``) as its value. The model acts on it in a callback, so decisions
may take time without the model changing.

``DirectControlPlane`` decides in-process through the single placement call
``sim.inventory.place_vm`` (whichever scheduler that function runs) and triggers the decision at
once. A Raft-backed implementation proposes the same decision to the managers' replicated log
and triggers it when the entry is committed and applied, so a leader failover shows up as
placement latency (``decision_ms``) and the model does not change.

Contract, whatever the implementation:

- ``place``: when applied, ``VMPlaced`` (allocation made) or ``VMRejected`` has been recorded;
  value = the host index or ``None``;
- ``restart_elsewhere``: when applied, ``VMPlaced`` (a FAILED VM running again) has been
  recorded, value = the host; or nothing recorded and value ``None`` (the VM stays failed; the
  model retries when a host recovers) — never ``VMRejected``, which would end the VM's life;
- ``migrate``: when applied, ``VMMoved`` has been recorded, value = the new host; or ``None``;
- ``release`` frees an allocation at once and records nothing (the model records ``VMStopped``
  or ``VMFailed``, which say why): it is a host-local fact, not a decision.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np
import simpy

from novacron.cluster.events import VMMoved
from sim import inventory
from sim.context import SimContext
from sim.inventory import Inventory


@dataclass(frozen=True, slots=True)
class VMRequest:
    vm_id: str
    cpu_cores: int
    memory_gib: float


Decision = simpy.Event
"""Triggers when a control decision has been applied; its value is a host index or ``None``."""


class ControlPlane(Protocol):
    def place(self, vm: VMRequest) -> Decision:
        """Choose a host for a new VM and allocate it there; value ``None`` if rejected."""
        ...

    def restart_elsewhere(self, vm: VMRequest, failed_host: int) -> Decision:
        """Run a VM whose host crashed on another up host; value ``None`` if none has room yet."""
        ...

    def migrate(self, vm: VMRequest, to_host: int, mover: str = "controller") -> Decision:
        """Move a running VM to ``to_host``; value ``None`` if the target cannot take it.
        ``mover`` (who ran the migration) is the ``VMMoved`` event's source."""
        ...

    def release(self, vm: VMRequest) -> None:
        """Free the VM's allocation (it stopped, or its host crashed)."""
        ...


class DirectControlPlane:
    """Decides in-process, instantly, with the placement call of ``sim.inventory``."""

    def __init__(self, ctx: SimContext, inv: Inventory) -> None:
        self._ctx = ctx
        self._inv = inv

    def _decided(self, host: int | None) -> Decision:
        return self._ctx.env.event().succeed(host)

    def _place_now(self, vm: VMRequest) -> int | None:
        inventory.place_vm(self._ctx, self._inv, vm.vm_id, vm.cpu_cores, vm.memory_gib)
        return self._inv.vm_host.get(vm.vm_id)

    def place(self, vm: VMRequest) -> Decision:
        return self._decided(self._place_now(vm))

    def restart_elsewhere(self, vm: VMRequest, failed_host: int) -> Decision:
        # place_vm records VMRejected when nothing fits; a restart must not, so check first.
        return self._decided(self._place_now(vm) if self._some_host_fits(vm) else None)

    def migrate(self, vm: VMRequest, to_host: int, mover: str = "controller") -> Decision:
        inv = self._inv
        from_host = inv.vm_host.get(vm.vm_id)  # None: it stopped or failed before this was decided
        if from_host is None or to_host == from_host or not self._fits(vm, to_host):
            return self._decided(None)
        self.release(vm)
        self._allocate(vm, to_host)
        self._ctx.recorder.emit(VMMoved, source=mover, vm_id=vm.vm_id,
                                from_host_id=inv.host_ids[from_host], host_id=inv.host_ids[to_host])
        return self._decided(to_host)

    def release(self, vm: VMRequest) -> None:
        inv = self._inv
        host = inv.vm_host.pop(vm.vm_id)
        inv.vm_cpu.pop(vm.vm_id, None)
        inv.cpu_allocated[host] -= vm.cpu_cores
        inv.memory_allocated_gib[host] -= vm.memory_gib

    def _allocate(self, vm: VMRequest, host: int) -> None:
        inv = self._inv
        inv.vm_host[vm.vm_id] = host
        inv.vm_cpu[vm.vm_id] = vm.cpu_cores
        inv.cpu_allocated[host] += vm.cpu_cores
        inv.memory_allocated_gib[host] += vm.memory_gib

    def _fits(self, vm: VMRequest, host: int) -> bool:
        inv = self._inv
        return bool(inv.host_up[host]
                    and inv.cpu_capacity[host] - inv.cpu_allocated[host] >= vm.cpu_cores
                    and inv.memory_capacity_gib[host] - inv.memory_allocated_gib[host] >= vm.memory_gib)

    def _some_host_fits(self, vm: VMRequest) -> bool:
        inv = self._inv
        if inv.can_place is not None:  # the scheduler's filters (headroom...) are stricter than fit
            return inv.can_place(vm.vm_id, vm.cpu_cores, vm.memory_gib)
        return bool(np.any(inv.host_up & (inv.cpu_capacity - inv.cpu_allocated >= vm.cpu_cores)
                           & (inv.memory_capacity_gib - inv.memory_allocated_gib >= vm.memory_gib)))

"""The control plane seam: every placement, restart and migration decision goes through here.

Theory of operation
-------------------
The cluster model (``cluster_model.py``) never changes an allocation itself: it asks a
``ControlPlane`` to place a VM, restart a crashed host's VM elsewhere, migrate a VM or release
its resources. ``DirectControlPlane`` decides in-process and at once, through the single
placement call ``sim.inventory.place_vm`` (whichever scheduler that function runs). A
Raft-backed implementation proposes the same decisions to the manager cluster's log and applies
them when committed, so a manager failover shows up as placement latency; it implements this
same protocol and the model does not change.

Contract, whatever the implementation:

- ``place`` records ``VMPlaced`` or ``VMRejected`` and returns the host index or ``None``;
- ``restart_elsewhere`` records ``VMPlaced`` (a FAILED VM running again) and returns the host,
  or returns ``None`` recording nothing (the VM stays failed; the model retries it when a host
  recovers) — never ``VMRejected``, which would end the VM's life;
- ``migrate`` records ``VMMoved``; ``release`` frees an allocation and records nothing (the model
  records ``VMStopped`` or ``VMFailed``, which say why).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from novacron.cluster.events import VMMoved
from sim import inventory
from sim.context import SimContext
from sim.inventory import Inventory


@dataclass(frozen=True, slots=True)
class VMRequest:
    vm_id: str
    cpu_cores: int
    memory_gib: float


class ControlPlane(Protocol):
    def place(self, vm: VMRequest) -> int | None:
        """Choose a host for a new VM and allocate it there; ``None`` if rejected."""
        ...

    def restart_elsewhere(self, vm: VMRequest, failed_host: int) -> int | None:
        """Run a VM whose host crashed on another up host; ``None`` if none has room yet."""
        ...

    def migrate(self, vm: VMRequest, to_host: int) -> bool:
        """Move a running VM to another host; ``False`` if the target has no room."""
        ...

    def release(self, vm: VMRequest) -> None:
        """Free the VM's allocation (it stopped, or its host crashed)."""
        ...


class DirectControlPlane:
    """Decides in-process, instantly, with the placement call of ``sim.inventory``."""

    def __init__(self, ctx: SimContext, inv: Inventory) -> None:
        self._ctx = ctx
        self._inv = inv

    def place(self, vm: VMRequest) -> int | None:
        inventory.place_vm(self._ctx, self._inv, vm.vm_id, vm.cpu_cores, vm.memory_gib)
        return self._inv.vm_host.get(vm.vm_id)

    def restart_elsewhere(self, vm: VMRequest, failed_host: int) -> int | None:
        if not self._some_host_fits(vm):
            return None
        can_place = self._inv.can_place  # the scheduler's filters (headroom...) are stricter than fit
        if can_place is not None and not can_place(vm.vm_id, vm.cpu_cores, vm.memory_gib):
            return None
        return self.place(vm)

    def migrate(self, vm: VMRequest, to_host: int) -> bool:
        inv = self._inv
        from_host = inv.vm_host[vm.vm_id]
        if to_host == from_host or not self._fits(vm, to_host):
            return False
        self.release(vm)
        self._allocate(vm, to_host)
        self._ctx.recorder.emit(VMMoved, source="controller", vm_id=vm.vm_id,
                                from_host_id=inv.host_ids[from_host], host_id=inv.host_ids[to_host])
        return True

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
        return bool(np.any(inv.host_up & (inv.cpu_capacity - inv.cpu_allocated >= vm.cpu_cores)
                           & (inv.memory_capacity_gib - inv.memory_allocated_gib >= vm.memory_gib)))

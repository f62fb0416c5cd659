"""ClusterState: the fold of a run's events into hosts, VMs and placements.

Theory of operation
-------------------
``project(events)`` starts from an empty state and applies each event with ``apply``. The VM
lifecycle is a transition table; an event that would move a VM illegally (placing a VM twice,
moving a stopped VM) raises, so a corrupt or reordered log is caught on replay. Events that do
not concern the inventory are ignored, so the same fold works on any run's log.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from enum import Enum

from novacron.cluster.events import (
    HostAdded,
    HostFailed,
    HostRecovered,
    VMFailed,
    VMMoved,
    VMPlaced,
    VMRejected,
    VMRequested,
    VMStopped,
)
from novacron.events import Event
from novacron.lifecycle import TransitionTable


class VMStatus(Enum):
    REQUESTED = "requested"
    RUNNING = "running"
    REJECTED = "rejected"
    STOPPED = "stopped"
    FAILED = "failed"


VM_LIFECYCLE: TransitionTable[VMStatus] = TransitionTable("VM", {
    VMStatus.REQUESTED: {VMStatus.RUNNING, VMStatus.REJECTED},
    VMStatus.RUNNING: {VMStatus.RUNNING, VMStatus.STOPPED, VMStatus.FAILED},
    VMStatus.FAILED: {VMStatus.RUNNING, VMStatus.STOPPED},  # deleted by its owner while down
    VMStatus.STOPPED: {VMStatus.RUNNING},
})


@dataclass(slots=True)
class HostState:
    host_id: str
    rack: str
    cpu_cores: int
    memory_gib: float
    up: bool = True
    vms: set[str] = field(default_factory=set)
    cpu_allocated: int = 0
    memory_allocated_gib: float = 0.0


@dataclass(slots=True)
class VMState:
    vm_id: str
    cpu_cores: int
    memory_gib: float
    status: VMStatus = VMStatus.REQUESTED
    host_id: str | None = None


@dataclass(slots=True)
class ClusterState:
    hosts: dict[str, HostState] = field(default_factory=dict)
    vms: dict[str, VMState] = field(default_factory=dict)

    def placements(self) -> dict[str, str]:
        return {vm.vm_id: vm.host_id for vm in self.vms.values()
                if vm.status is VMStatus.RUNNING and vm.host_id is not None}

    def _attach(self, vm: VMState, host_id: str) -> None:
        host = self.hosts[host_id]
        host.vms.add(vm.vm_id)
        host.cpu_allocated += vm.cpu_cores
        host.memory_allocated_gib += vm.memory_gib
        vm.host_id = host_id

    def _detach(self, vm: VMState) -> None:
        if vm.host_id is None:
            return
        host = self.hosts[vm.host_id]
        host.vms.discard(vm.vm_id)
        host.cpu_allocated -= vm.cpu_cores
        host.memory_allocated_gib -= vm.memory_gib
        vm.host_id = None


def _host_added(s: ClusterState, e: HostAdded) -> None:
    s.hosts[e.host_id] = HostState(e.host_id, e.rack, e.cpu_cores, e.memory_gib)


def _vm_requested(s: ClusterState, e: VMRequested) -> None:
    s.vms[e.vm_id] = VMState(e.vm_id, e.cpu_cores, e.memory_gib)


def _move(s: ClusterState, vm_id: str, status: VMStatus, host_id: str | None) -> None:
    vm = s.vms[vm_id]
    vm.status = VM_LIFECYCLE.check(vm.status, status)
    s._detach(vm)
    if host_id is not None:
        s._attach(vm, host_id)


_APPLY: dict[type[Event], Callable[[ClusterState, Event], None]] = {
    HostAdded: _host_added,  # type: ignore[dict-item]
    VMRequested: _vm_requested,  # type: ignore[dict-item]
    VMPlaced: lambda s, e: _move(s, e.vm_id, VMStatus.RUNNING, e.host_id),  # type: ignore[attr-defined]
    VMRejected: lambda s, e: _move(s, e.vm_id, VMStatus.REJECTED, None),  # type: ignore[attr-defined]
    VMStopped: lambda s, e: _move(s, e.vm_id, VMStatus.STOPPED, None),  # type: ignore[attr-defined]
    VMFailed: lambda s, e: _move(s, e.vm_id, VMStatus.FAILED, None),  # type: ignore[attr-defined]
    VMMoved: lambda s, e: _move(s, e.vm_id, VMStatus.RUNNING, e.host_id),  # type: ignore[attr-defined]
    HostFailed: lambda s, e: setattr(s.hosts[e.host_id], "up", False),  # type: ignore[attr-defined]
    HostRecovered: lambda s, e: setattr(s.hosts[e.host_id], "up", True),  # type: ignore[attr-defined]
}

PROJECTED_EVENTS: tuple[type[Event], ...] = tuple(_APPLY)
"""The event types the fold reads (a live projection subscribes to exactly these)."""


def apply(state: ClusterState, ev: Event) -> ClusterState:
    handler = _APPLY.get(type(ev))
    if handler is not None:
        handler(state, ev)
    return state


def project(events: Iterable[Event]) -> ClusterState:
    state = ClusterState()
    for ev in events:
        apply(state, ev)
    return state

"""The allocation store: which host each VM runs on, what every host has allocated, and move claims.

Theory of operation
-------------------
One object holds the run's allocation facts, and only the control plane writes them
(``sim.control_plane``: a decision taken at once, or once committed through the managers' Raft
log): ``allocate`` when a VM is placed or restarted, ``release`` when it stops or its host
crashes, ``move`` when a migration commits, ``claim``/``release_claim`` for a move's hold on its
destination (as OpenStack Nova's move claims: the room is taken while the copy runs, and becomes
the VM's allocation only if the move commits).

Every other view of where VMs are -- the scheduler's host table, the cluster model's VM rows, the
migration service's hypervisor, ``ClusterState`` -- is a projection fed by the events the control
plane records (``VMPlaced``, ``VMMoved``, ``MoveClaimed``...) through the event log's
subscription. Host liveness is the fault model's fact: the store follows ``HostFailed`` and
``HostRecovered`` through the same subscription.

Two room checks: ``fits`` (allocated VMs only) is what a commit re-checks, and ``claimable``
(allocated VMs and every other claim) is what a new claim needs, so claims never overlap.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from novacron.cluster.events import HostAdded, HostFailed, HostRecovered, VMFailed, VMMoved, VMPlaced, VMStopped
from novacron.events import InMemoryEventLog, Recorder, Subscriber

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class VMRequest:
    """What a decision needs to know of a VM: its id and the room it takes."""

    vm_id: str
    cpu_cores: int
    memory_gib: float


ROOM_TOLERANCE = 1e-9
"""Claims may fill a host to its capacity within float rounding."""


@dataclass(frozen=True, slots=True)
class Claim:
    """A move's hold on its destination; ``claim_id`` is unique in the run."""

    claim_id: int
    vm: VMRequest
    host: int

    @property
    def vm_id(self) -> str:
        return self.vm.vm_id


class AllocationStore:
    """Hosts as rows of arrays (capacity, allocation, claims, up) and each VM's host."""

    def __init__(self, host_ids: list[str], cpu_capacity: float, memory_capacity_gib: float) -> None:
        hosts = len(host_ids)
        self.host_ids = host_ids
        self.host_index = {host_id: h for h, host_id in enumerate(host_ids)}
        self.cpu_capacity = np.full(hosts, cpu_capacity)
        self.memory_capacity_gib = np.full(hosts, memory_capacity_gib)
        self.cpu_allocated = np.zeros(hosts)
        self.memory_allocated_gib = np.zeros(hosts)
        self.cpu_claimed = np.zeros(hosts)
        self.memory_claimed_gib = np.zeros(hosts)
        self.host_up = np.ones(hosts, dtype=bool)
        self.vm_host: dict[str, int] = {}
        self.vm_demand: dict[str, VMRequest] = {}
        self.claims: dict[int, Claim] = {}
        self._next_claim = 0

    @classmethod
    def for_cluster(cls, recorder: Recorder, *, hosts: int, cpu_cores: int, cpu_overcommit: float,
                    memory_gib: float, network_gbps: float, disk_iops: float, hosts_per_rack: int) -> AllocationStore:
        """The store of a uniform cluster; records ``HostAdded`` for each host and follows liveness."""
        store = cls([f"host-{i:04d}" for i in range(hosts)], cpu_cores * cpu_overcommit, memory_gib)
        for i, host_id in enumerate(store.host_ids):
            recorder.emit(HostAdded, source="inventory", host_id=host_id, rack=f"rack-{i // hosts_per_rack:03d}",
                          cpu_cores=cpu_cores, memory_gib=memory_gib, network_gbps=network_gbps,
                          disk_iops=disk_iops)
        store.follow_liveness(recorder.log)
        return store

    def follow_liveness(self, log: InMemoryEventLog) -> None:
        log.subscribe(HostFailed, lambda ev: self._set_up(ev.host_id, False))
        log.subscribe(HostRecovered, lambda ev: self._set_up(ev.host_id, True))

    def _set_up(self, host_id: str, up: bool) -> None:
        self.host_up[self.host_index[host_id]] = up

    # --- reads ------------------------------------------------------------------------------------

    def host_of(self, vm_id: str) -> int | None:
        return self.vm_host.get(vm_id)

    def fits(self, vm: VMRequest, host: int) -> bool:
        """The host is up with room for ``vm`` among the allocated VMs."""
        return bool(self.host_up[host]
                    and self.cpu_capacity[host] - self.cpu_allocated[host] >= vm.cpu_cores
                    and self.memory_capacity_gib[host] - self.memory_allocated_gib[host] >= vm.memory_gib)

    def claimable(self, vm: VMRequest, host: int) -> bool:
        """The host is up with room for ``vm`` after the allocated VMs and every claim."""
        free_cpu = self.cpu_capacity[host] - self.cpu_allocated[host] - self.cpu_claimed[host]
        free_memory = self.memory_capacity_gib[host] - self.memory_allocated_gib[host] - self.memory_claimed_gib[host]
        return bool(self.host_up[host] and vm.cpu_cores <= free_cpu + ROOM_TOLERANCE
                    and vm.memory_gib <= free_memory + ROOM_TOLERANCE)

    def some_host_fits(self, vm: VMRequest) -> bool:
        return bool(np.any(self.host_up & (self.cpu_capacity - self.cpu_allocated >= vm.cpu_cores)
                           & (self.memory_capacity_gib - self.memory_allocated_gib >= vm.memory_gib)))

    def free_cpu(self) -> FloatArray:
        return self.cpu_capacity - self.cpu_allocated

    def free_memory_gib(self) -> FloatArray:
        return self.memory_capacity_gib - self.memory_allocated_gib

    # --- writes: the control plane's only ---------------------------------------------------------

    def allocate(self, vm: VMRequest, host: int) -> None:
        self.vm_host[vm.vm_id] = host
        self.vm_demand[vm.vm_id] = vm
        self.cpu_allocated[host] += vm.cpu_cores
        self.memory_allocated_gib[host] += vm.memory_gib

    def release(self, vm_id: str) -> int:
        """Free the VM's allocation; returns the host it was on."""
        host = self.vm_host.pop(vm_id)
        vm = self.vm_demand.pop(vm_id)
        self.cpu_allocated[host] -= vm.cpu_cores
        self.memory_allocated_gib[host] -= vm.memory_gib
        return host

    def move(self, vm_id: str, host: int) -> int:
        """The VM's allocation is now on ``host``; returns the host it left."""
        vm = self.vm_demand[vm_id]
        source = self.release(vm_id)
        self.allocate(vm, host)
        return source

    def claim(self, vm_id: str, host: int) -> Claim | None:
        """Hold room on ``host`` for a move of running ``vm_id``; ``None`` if it cannot."""
        vm = self.vm_demand.get(vm_id)
        if vm is None or self.vm_host[vm_id] == host or not self.claimable(vm, host):
            return None
        claim = Claim(self._next_claim, vm, host)
        self._next_claim += 1
        self.claims[claim.claim_id] = claim
        self.cpu_claimed[host] += vm.cpu_cores
        self.memory_claimed_gib[host] += vm.memory_gib
        return claim

    def release_claim(self, claim: Claim) -> bool:
        """Give the room back; ``False`` if the claim was released before."""
        if self.claims.pop(claim.claim_id, None) is None:
            return False
        self.cpu_claimed[claim.host] = max(self.cpu_claimed[claim.host] - claim.vm.cpu_cores, 0.0)
        self.memory_claimed_gib[claim.host] = max(self.memory_claimed_gib[claim.host] - claim.vm.memory_gib, 0.0)
        return True


def follow_allocations(log: InMemoryEventLog, *, placed: Subscriber[VMPlaced], moved: Subscriber[VMMoved],
                       ended: Subscriber[VMStopped | VMFailed] | None = None) -> None:
    """Subscribe a projection to the control plane's allocation decisions: a VM placed (or
    restarted), moved, and -- if ``ended`` is given -- stopped or failed (its allocation freed)."""
    log.subscribe(VMPlaced, placed)
    log.subscribe(VMMoved, moved)
    if ended is not None:
        log.subscribe(VMStopped, ended)
        log.subscribe(VMFailed, ended)

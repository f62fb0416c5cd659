"""GPUs in a simulated run: GPU VMs placed with the GPU filter and packing scorer.

Theory of operation
-------------------
``GpuPlacer`` wraps the control plane's placer. A VM without a GPU request goes to the wrapped
placer (the scheduler, or first fit). A GPU VM is placed by the core ``Scheduler`` over a host
table of the allocation store's free CPU and memory, with ``HostUp``, ``ResourceFit`` (the scheduler's
headroom) and
``GpuFit`` as filters and ``GpuPack`` (best fit on free slices) as the scorer. The GPU share
follows the control plane's decision: when ``VMPlaced`` is recorded, the share is taken from the
run's ``GpuInventory`` and recorded as ``GpuAllocated`` (a decision applied late, through the Raft
log, onto a host whose GPUs went meanwhile runs without them rather than overcommit one). The share is given
back when the VM stops or fails (``GpuReleased``); a VM restarted elsewhere asks again. A GPU VM
moved by a migration takes its share to the destination if it fits there; if not, it runs
without it (a ``GpuReleased`` with no ``GpuAllocated`` after it): the rebalancer does not read
GPUs yet, so the built-in ``gpu`` scenario runs without it.
"""

from __future__ import annotations

from novacron.cluster.events import GpuAllocated, GpuReleased, VMFailed, VMMoved, VMPlaced, VMStopped
from novacron.scheduler.framework import Scheduler, WeightedScorer
from novacron.scheduler.gpu import MIG_SLICES, GpuFit, GpuGrant, GpuInventory, GpuPack, GpuRequest
from novacron.scheduler.policies import HostUp, ResourceFit
from novacron.scheduler.state import HostTable, PlacementRequest
from sim.allocation import AllocationStore, VMRequest
from sim.context import SimContext
from sim.control_plane import Placer, can_place_or_first_fit


def gpu_inventory(ctx: SimContext) -> GpuInventory | None:
    g, hosts = ctx.scenario.gpus, ctx.scenario.cluster.hosts
    if not g.enabled:
        return None
    counts = [g.gpus_per_host if h < g.gpu_hosts else 0 for h in range(hosts)]
    return GpuInventory([g.model] * hosts, counts, [g.memory_gib] * hosts)


class GpuPlacer:
    """A placer that puts GPU VMs where their GPUs fit, and keeps the GPU inventory."""

    def __init__(self, ctx: SimContext, inventory: GpuInventory, store: AllocationStore,
                 inner: Placer | None) -> None:
        self.ctx, self.inventory, self.store, self.inner = ctx, inventory, store, inner
        self.grants: dict[str, GpuGrant] = {}
        self._rng = ctx.seeds.numpy("scheduler.gpu")
        ctx.log.subscribe(VMStopped, lambda ev: self._release(ev.vm_id))
        ctx.log.subscribe(VMFailed, lambda ev: self._release(ev.vm_id))
        ctx.log.subscribe(VMMoved, self._moved)
        ctx.log.subscribe(VMPlaced, self._placed)

    def _request(self, vm: VMRequest) -> GpuRequest:
        return self.ctx.scenario.gpus.request_of(vm.vm_id)

    def _table(self) -> HostTable:
        s = self.store
        hosts = len(s.host_ids)
        table = HostTable.uniform(hosts, cpu=1.0, memory_gib=1.0, network_gbps=1.0, iops=1.0, numa_nodes=1)
        table.capacity[0], table.capacity[1] = s.cpu_capacity, s.memory_capacity_gib
        table.allocated[0] = s.cpu_allocated + s.cpu_claimed
        table.allocated[1] = s.memory_allocated_gib + s.memory_claimed_gib
        table.up[:] = s.host_up
        return table

    def _choose(self, vm: VMRequest, request: GpuRequest) -> int | None:
        headroom = self.ctx.scenario.scheduler.headroom()  # the scheduler's own, so GPU hosts keep it too
        scheduler = Scheduler([HostUp(), ResourceFit(headroom=headroom), GpuFit(self.inventory, request)],
                              [WeightedScorer(GpuPack(self.inventory, request), 1.0)])
        decision = scheduler.place(self._table(), PlacementRequest(
            vm_id=vm.vm_id, demand=(float(vm.cpu_cores), vm.memory_gib, 0.0, 0.0)), self._rng)
        return decision.host_index

    def choose_host(self, vm: VMRequest) -> tuple[int | None, str, float]:
        request = self._request(vm)
        if not request.needs_gpu:
            if self.inner is not None:
                return self.inner.choose_host(vm)
            return self._choose(vm, request), "no host has room", 0.0
        host = self._choose(vm, request)
        if host is None:
            return None, "gpu_fit: no host has the GPUs", 0.0
        return host, "", 0.0  # the share is taken when the control plane records VMPlaced

    def can_place(self, vm: VMRequest) -> bool:
        request = self._request(vm)
        if not request.needs_gpu:
            return can_place_or_first_fit(self.inner, self.store, vm)
        return self._choose(vm, request) is not None

    def _grant(self, vm_id: str, host: int, request: GpuRequest) -> None:
        self.grants[vm_id] = self.inventory.allocate(host, request)
        self._emit(GpuAllocated, vm_id, host, gpu_count=request.gpus, mig_slices=request.mig_slices)

    def _placed(self, ev: VMPlaced) -> None:
        self._take(ev.vm_id, self.store.host_index[ev.host_id])

    def _take(self, vm_id: str, host: int) -> None:
        """Give the VM its GPU share on ``host`` if it asks for one and it fits there."""
        request = self.ctx.scenario.gpus.request_of(vm_id)
        if request.needs_gpu and bool(self.inventory.fits(request)[host]):
            self._grant(vm_id, host, request)

    def _release(self, vm_id: str) -> None:
        grant = self.grants.pop(vm_id, None)
        if grant is not None:
            self.inventory.release(grant)
            self._emit(GpuReleased, vm_id, grant.host)

    def _moved(self, ev: VMMoved) -> None:
        if ev.vm_id not in self.grants:
            return
        self._release(ev.vm_id)
        self._take(ev.vm_id, self.store.host_index[ev.host_id])

    def _emit(self, cls: type[GpuAllocated] | type[GpuReleased], vm_id: str, host: int, **fields: int) -> None:
        used = int(self.inventory.used[host].sum())
        total = int(self.inventory.present[host].sum()) * MIG_SLICES
        self.ctx.recorder.emit(cls, source="gpu", vm_id=vm_id, host_id=self.store.host_ids[host],
                               host_slices_used=used, host_slices_total=total, **fields)


"""A disaggregated memory pool in a simulated run: memory-affinity placement and the pool's ledger.

Theory of operation
-------------------
``MemoryPoolPlacer`` wraps the control plane's placer (the scheduler, GPUs, resource pools, or
first fit). The wrapped placer proposes a host; with ``affinity`` on, the placer then takes, among
the hosts with room for the VM (``AllocationStore.fits``), the one where the VM's memory would be
most local -- the highest locality index, then the smallest pool share
(``novacron.cluster.memory_pool.most_local_host``), the proposal winning ties; with it off, the
proposal stands. Either way a host whose pool group cannot hold the VM's remote part is not
chosen (without affinity, the first host with room whose pool can is taken instead), a GPU VM
stays where its GPUs are, and a VM no host can take is rejected with the reason ``memory pool: ...``.
Other hosts must keep the scheduler's CPU and memory headroom and pass its filters.

The pool's ledger follows the control plane's decisions through the log: ``VMPlaced`` lays the
VM's memory out (``MemoryPool.allocate``) and records ``MemoryPoolAllocated``; ``VMStopped`` and
``VMFailed`` give it back; ``VMMoved`` lays it out again on the destination. A decision the pool
cannot follow (a move the rebalancer chose without reading the pool) records
``MemoryPoolRefused``. The pool manager serves allocation requests that need slices one at a time
in simulated time, so a request's latency is its wait behind earlier ones plus its service
(``MemoryPoolAllocated.wait_ms``). Every ``sample_interval_s`` a ``MemoryPoolSampled`` records the
live allocations' locality, cross-node share, bandwidth and latency.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Generator

import simpy

from novacron.cluster.events import (
    MemoryPoolAllocated,
    MemoryPoolRefused,
    MemoryPoolReleased,
    MemoryPoolSampled,
    VMFailed,
    VMMoved,
    VMPlaced,
    VMStopped,
)
from novacron.cluster.memory_pool import MemoryPool, most_local_host
from sim.allocation import AllocationStore, VMRequest
from sim.context import SimContext
from sim.control_plane import Placer, choose_host_or_first_fit
from sim.scheduling import SimScheduler

REFUSAL = "memory pool: no host with room has its pool's slices free"


class MemoryPoolPlacer:
    """A placer that keeps VMs' memory local where it can, and the pool's ledger."""

    def __init__(self, ctx: SimContext, pool: MemoryPool, store: AllocationStore, inner: Placer | None,
                 scheduler: SimScheduler | None) -> None:
        self.ctx, self.pool, self.store, self.inner, self.scheduler = ctx, pool, store, inner, scheduler
        self.affinity = ctx.scenario.memory_pool.affinity
        self._manager_free_at_s = 0.0
        ctx.log.subscribe(VMPlaced, lambda ev: self._lay_out(ev.vm_id, ev.host_id, ev.memory_gib))
        ctx.log.subscribe(VMMoved, self._moved)
        ctx.log.subscribe(VMStopped, lambda ev: self._release(ev.vm_id))
        ctx.log.subscribe(VMFailed, lambda ev: self._release(ev.vm_id))
        ctx.env.process(self._samples())

    # --- placement ----------------------------------------------------------------------------

    def _proposal(self, vm: VMRequest) -> tuple[int | None, str, float]:
        return choose_host_or_first_fit(self.inner, self.store, vm)

    def choose_host(self, vm: VMRequest) -> tuple[int | None, str, float]:
        host, reason, decision_ms = self._proposal(vm)
        if host is None:
            return None, reason, decision_ms
        if self._pinned(vm):
            chosen = host if self.pool.plan(vm.vm_id, host, vm.memory_gib) is not None else None
        elif self.affinity:
            chosen = most_local_host(self.pool, sorted({*self._candidates(vm), host}), vm.memory_gib, preferred=host)
        else:  # the proposal, or else the first host with room whose pool can hold the VM's remote part
            chosen = next((h for h in (host, *self._candidates(vm))
                           if self.pool.plan(vm.vm_id, h, vm.memory_gib) is not None), None)
        return (None, REFUSAL, decision_ms) if chosen is None else (chosen, "", decision_ms)

    def _pinned(self, vm: VMRequest) -> bool:
        """A GPU VM stays where the GPU placer put it: its GPUs are there."""
        gpus = self.ctx.scenario.gpus
        return gpus.enabled and gpus.request_of(vm.vm_id).needs_gpu

    def _candidates(self, vm: VMRequest) -> list[int]:
        """Hosts with room for ``vm`` that keep the scheduler's CPU and memory headroom and pass its
        filters (anti-affinity, NUMA fit...)."""
        s = self.store
        cpu_headroom, memory_headroom, _, _ = self.ctx.scenario.scheduler.headroom()
        room = (s.host_up & (s.cpu_allocated + s.cpu_claimed + vm.cpu_cores <= (1 - cpu_headroom) * s.cpu_capacity)
                & (s.memory_allocated_gib + s.memory_claimed_gib + vm.memory_gib
                   <= (1 - memory_headroom) * s.memory_capacity_gib))
        if self.scheduler is not None:
            room &= self.scheduler.feasible_rows(vm)
        return [int(h) for h in room.nonzero()[0]]

    def can_place(self, vm: VMRequest) -> bool:
        if self.inner is not None and not self.inner.can_place(vm):
            return False
        fitting = [h for h in range(len(self.store.host_ids)) if self.store.fits(vm, h)]
        return most_local_host(self.pool, fitting, vm.memory_gib, preferred=None) is not None

    # --- the ledger ---------------------------------------------------------------------------

    def _lay_out(self, vm_id: str, host_id: str, memory_gib: float) -> None:
        host = self.store.host_index[host_id]
        allocation = self.pool.allocate(vm_id, host, memory_gib)
        emit = self.ctx.recorder.emit
        if allocation is None:
            emit(MemoryPoolRefused, source="memory-pool", vm_id=vm_id, host_id=host_id, memory_gib=memory_gib)
            return
        now_s = float(self.ctx.env.now)
        wait_ms = 0.0
        if allocation.manager_ms > 0:  # the pool manager serves one request at a time
            wait_ms = max(self._manager_free_at_s - now_s, 0.0) * 1000.0
            self._manager_free_at_s = now_s + (wait_ms + allocation.manager_ms) / 1000.0
        group = self.pool.group_of(host)
        slice_gib = self.pool.fabric.slice_gib
        emit(MemoryPoolAllocated, source="memory-pool", vm_id=vm_id, host_id=host_id, home_node=allocation.home_node,
             local_gib=allocation.node_gib[allocation.home_node],
             numa_gib=sum(allocation.node_gib) - allocation.node_gib[allocation.home_node],
             pool_gib=allocation.pool_gib, locality_index=allocation.locality_index,
             cross_node_share=allocation.cross_node_share, latency_ns=allocation.latency_ns,
             bandwidth_gb_s=allocation.bandwidth_gb_s,
             allocation_ms=allocation.host_ms + wait_ms + allocation.manager_ms, wait_ms=wait_ms,
             pool_used_gib=float(self.pool.group_used_slices[group]) * slice_gib,
             pool_capacity_gib=float(self.pool.group_capacity_slices[group]) * slice_gib)

    def _release(self, vm_id: str) -> None:
        allocation = self.pool.release(vm_id)
        if allocation is not None:
            self.ctx.recorder.emit(MemoryPoolReleased, source="memory-pool", vm_id=vm_id,
                                   host_id=self.store.host_ids[allocation.host], pool_gib=allocation.pool_gib)

    def _moved(self, ev: VMMoved) -> None:
        allocation = self.pool.allocations.get(ev.vm_id)
        memory_gib = allocation.memory_gib if allocation is not None else self.store.vm_demand[ev.vm_id].memory_gib
        self._release(ev.vm_id)
        self._lay_out(ev.vm_id, ev.host_id, memory_gib)

    def _samples(self) -> Generator[simpy.Event, None, None]:
        interval_s = self.ctx.scenario.memory_pool.sample_interval_s
        while True:
            yield self.ctx.env.timeout(interval_s)
            snap = self.pool.snapshot()
            if snap.vms:  # the event records the snapshot as it is
                self.ctx.recorder.emit(MemoryPoolSampled, source="memory-pool", **dataclasses.asdict(snap))

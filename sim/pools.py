"""Hierarchical resource pools in a simulated run: admission on the placement path, CPU under contention.

Theory of operation
-------------------
``PoolAdmission`` wraps the control plane's placer (the scheduler, or first fit): before a host
is chosen, the VM's leaf pool must admit its memory (``novacron.cluster.pools.admit_memory``:
limits on the pool's path, reservations of the other pools kept); a VM that fails is rejected
with the pool named as the reason. The memory each leaf uses is read from the allocation store
(its ``vm_demand``), the one owner of that fact, at each decision (linear in running VMs: pools
are for clusters of hundreds of VMs, not the 50,000-VM scale runs).

``PoolContention`` replaces the host contention policy at each demand sample: each host's cores
go through the pool tree (``divide_cpu``), and one ``PoolCpuSampled`` per pool records its
demand, what it was served and what its reservation guaranteed, so the run's metrics can show
that no reservation was ever short.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from novacron.cluster.events import PoolCpuSampled
from novacron.cluster.pools import PoolTree, admit_memory, divide_cpu, pool_usage
from novacron.scenario import Scenario
from sim.allocation import AllocationStore, VMRequest
from sim.context import SimContext
from sim.control_plane import Placer, can_place_or_first_fit, choose_host_or_first_fit

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]


def pool_tree(scenario: Scenario) -> PoolTree | None:
    c = scenario.cluster
    if not scenario.pools.enabled:
        return None
    return scenario.pools.tree(cluster_cores=float(c.hosts * c.host_cpu_cores),
                               cluster_memory_gib=c.hosts * c.host_memory_gib)


class PoolAdmission:
    """A placer that admits a VM into its pool before the wrapped placer picks its host."""

    def __init__(self, tree: PoolTree, store: AllocationStore, inner: Placer | None) -> None:
        self.tree, self.store, self.inner = tree, store, inner
        self._leaf_of: dict[str, str] = {}

    def leaf_of(self, vm_id: str) -> str:
        leaf = self._leaf_of.get(vm_id)
        if leaf is None:
            leaf = self._leaf_of[vm_id] = self.tree.pool_of(vm_id)
        return leaf

    def refusal(self, vm: VMRequest) -> str | None:
        used: dict[str, float] = {}
        for vm_id, placed in self.store.vm_demand.items():
            leaf = self.leaf_of(vm_id)
            used[leaf] = used.get(leaf, 0.0) + placed.memory_gib
        cluster_memory_gib = float(self.store.memory_capacity_gib.sum())
        return admit_memory(self.tree, self.leaf_of(vm.vm_id), vm.memory_gib, used, cluster_memory_gib)

    def choose_host(self, vm: VMRequest) -> tuple[int | None, str, float]:
        refused = self.refusal(vm)
        if refused is not None:
            return None, refused, 0.0
        return choose_host_or_first_fit(self.inner, self.store, vm)

    def can_place(self, vm: VMRequest) -> bool:
        if self.refusal(vm) is not None:
            return False
        return can_place_or_first_fit(self.inner, self.store, vm)


class PoolContention:
    """Each host's CPU through the pool tree, and one ``PoolCpuSampled`` per pool per sample."""

    def __init__(self, ctx: SimContext, tree: PoolTree) -> None:
        self.ctx, self.tree = ctx, tree
        self._leaf_index = {leaf: k for k, leaf in enumerate(tree.leaves)}
        self._row_of: dict[str, int] = {}

    def _row(self, vm_id: str) -> int:
        row = self._row_of.get(vm_id)
        if row is None:
            row = self._row_of[vm_id] = self._leaf_index[self.tree.pool_of(vm_id)]
        return row

    def serve(self, wanted: FloatArray, vm_hosts: IntArray, vm_ids: list[str], weights: FloatArray,
              capacity_cores: FloatArray) -> FloatArray:
        leaves = np.array([self._row(v) for v in vm_ids], dtype=np.int64)
        served = divide_cpu(self.tree, wanted, vm_hosts, leaves, weights, capacity_cores)
        usage = pool_usage(self.tree, wanted, served, vm_hosts, leaves, capacity_cores)
        for name, (demand, served_cores, guaranteed) in usage.items():
            self.ctx.recorder.emit(PoolCpuSampled, source="contention", pool=name, demand_cores=demand,
                                   served_cores=served_cores, guaranteed_cores=guaranteed,
                                   limit_cores=self.tree.pools[name].cpu_limit_cores)
        return served

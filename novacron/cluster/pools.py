"""Hierarchical resource pools: reservations, limits and shares, as vSphere resource pools.

Theory of operation
-------------------
Pools form a tree under the cluster (the root). Each pool has, for CPU (cores) and memory (GiB),
a *reservation* (guaranteed whenever the pool asks for at least that much), a *limit* (never
exceeded; 0 = none) and CPU *shares* (its weight against its siblings for what is left over).
A VM belongs to one leaf pool (``PoolTree.pool_of``: the scenario's ``vm_pools`` pattern, chosen
by a stable hash of the VM id).

*Admission* (``admit_memory``: what the placement path checks before the scheduler picks a host).
Memory is reserved at placement in this model, so a VM's memory is its reservation. A VM of pool
``P`` is admitted only if, after it, every pool on the path from ``P`` to the root stays within its
memory limit, and at the root and at every pool on that path the children's claims fit in it:
``sum over children c of max(reservation_c, used_c) <= capacity`` (the cluster's memory at the
root, the pool's limit below). A pool using less than its reservation keeps the difference:
nobody else is admitted into it. This is vSphere's admission control with expandable reservations
(a pool past its reservation draws on its parent's unreserved capacity). It is a cluster-level
guarantee; a host-level one (fragmentation) is the scheduler's ordinary resource fit.

*Contention* (``divide_cpu``: what an overloaded host serves). Top down, each pool's CPU on a host
is divided among its children: first each child gets ``min(demand, reservation)`` (its demand
capped by its limit), then what is left is water-filled by shares among the children that want
more, never past their capped demand (``novacron.cluster.contention.share_cpu`` does the
water-filling, vectorised over hosts). A leaf's CPU is shared among its VMs by vCPUs, as the
``shares`` policy does. A pool's reservation and limit count on each host in proportion to the
host's share of the cluster's cores (DRS's entitlement spread evenly over a balanced cluster):
so the guarantee is per host, ``served(P, h) >= min(demand(P, h), reservation(P) x cores(h) /
cores(cluster))``, which ``tests/test_pools.py`` checks with Hypothesis. When reservations are
admissible (children's reservations within their parent's, the top level's within the cluster),
the reserved parts always fit: ``sum_c min(d_c, r_c) <= min(d_P, r_P) <= served(P)``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from novacron.cluster.contention import share_cpu

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
ROOT = ""
EPS = 1e-9


@dataclass(frozen=True, slots=True, kw_only=True)
class Pool:
    name: str
    parent: str = ROOT
    cpu_reservation_cores: float = 0.0
    cpu_limit_cores: float = 0.0
    """0 = no limit"""
    cpu_shares: float = 1000.0
    memory_reservation_gib: float = 0.0
    memory_limit_gib: float = 0.0
    """0 = no limit"""


class PoolError(ValueError):
    """A pool tree that cannot hold its promises; one line naming the pool and the figure."""


class PoolTree:
    """The pools of a cluster, checked: a tree, limits above reservations, reservations admissible."""

    def __init__(self, pools: tuple[Pool, ...], vm_pools: tuple[str, ...], *, cluster_cores: float,
                 cluster_memory_gib: float) -> None:
        self.pools = {p.name: p for p in pools}
        self.children: dict[str, list[str]] = {ROOT: []}
        for p in pools:
            self.children.setdefault(p.name, [])
        for p in pools:
            if p.parent not in self.children:
                raise PoolError(f"pool {p.name!r}: parent {p.parent!r} is not a pool; allowed: '' or a pool name")
            self.children[p.parent].append(p.name)
        self.order = self._top_down()
        self.leaves = tuple(name for name in self.order if not self.children[name])
        self.vm_pools = vm_pools or self.leaves
        self._check(cluster_cores, cluster_memory_gib)

    def _top_down(self) -> list[str]:
        order, frontier = [], [ROOT]
        while frontier:
            node = frontier.pop(0)
            order.extend(self.children[node])
            frontier.extend(self.children[node])
        if len(order) != len(self.pools):
            cyclic = sorted(set(self.pools) - set(order))
            raise PoolError(f"pool {cyclic[0]!r}: its parents form a cycle; allowed: a tree under ''")
        return order

    def _check(self, cluster_cores: float, cluster_memory_gib: float) -> None:
        for name in self.vm_pools:
            if name not in self.pools or self.children[name]:
                raise PoolError(f"vm_pools: {name!r} is not a leaf pool; allowed: {', '.join(self.leaves)}")
        for node in (ROOT, *self.order):
            kids = [self.pools[c] for c in self.children[node]]
            if node == ROOT:
                cpu_room, memory_room, what = cluster_cores, cluster_memory_gib, "the cluster"
            else:
                p = self.pools[node]
                cpu_room, memory_room, what = p.cpu_reservation_cores, p.memory_reservation_gib, f"pool {node!r}"
                for kind, reserved, limit in (("cpu", p.cpu_reservation_cores, p.cpu_limit_cores),
                                              ("memory", p.memory_reservation_gib, p.memory_limit_gib)):
                    if limit > 0 and reserved > limit:
                        raise PoolError(f"pool {node!r}: {kind} reservation {reserved:g} is above its limit "
                                        f"{limit:g}; allowed: reservation <= limit")
            for kind, room, total in (("cpu", cpu_room, sum(k.cpu_reservation_cores for k in kids)),
                                      ("memory", memory_room, sum(k.memory_reservation_gib for k in kids))):
                if total > room + EPS:
                    raise PoolError(f"the {kind} reservations of {what}'s children add up to {total:g}, more "
                                    f"than its {room:g}; allowed: at most {room:g}")

    def pool_of(self, vm_id: str) -> str:
        """The VM's leaf pool: the ``vm_pools`` pattern at a stable hash of its id."""
        digest = int.from_bytes(hashlib.blake2b(vm_id.encode(), digest_size=8).digest(), "little")
        return self.vm_pools[digest % len(self.vm_pools)]

    def path(self, pool: str) -> list[str]:
        """The pool and its ancestors, bottom up (the root not included)."""
        path = []
        while pool != ROOT:
            path.append(pool)
            pool = self.pools[pool].parent
        return path

    def subtree_totals(self, leaf_values: Mapping[str, float]) -> dict[str, float]:
        """Each pool's total over the leaves under it (and the root's, under '')."""
        totals = {name: 0.0 for name in (ROOT, *self.order)}
        for leaf, value in leaf_values.items():
            for pool in (*self.path(leaf), ROOT):
                totals[pool] += value
        return totals


def admit_memory(tree: PoolTree, leaf: str, memory_gib: float, used_gib: Mapping[str, float],
                 cluster_memory_gib: float) -> str | None:
    """``None`` if a VM of ``memory_gib`` may join ``leaf`` given each leaf's memory in use; else why not."""
    after = dict(used_gib)
    after[leaf] = after.get(leaf, 0.0) + memory_gib
    totals = tree.subtree_totals(after)
    path = tree.path(leaf)
    for pool in path:
        limit = tree.pools[pool].memory_limit_gib
        if limit > 0 and totals[pool] > limit + EPS:
            return f"pool {pool!r} memory limit {limit:g} GiB"
    for node in (*path, ROOT):
        room = cluster_memory_gib if node == ROOT else tree.pools[node].memory_limit_gib
        if room <= 0:
            continue  # a pool without a limit expands into its parent, checked next
        claimed = sum(max(tree.pools[c].memory_reservation_gib, totals[c]) for c in tree.children[node])
        if claimed > room + EPS:
            return f"memory reserved for other pools under {node or 'the cluster'!r}"
    return None


def divide_cpu(tree: PoolTree, demand_cores: FloatArray, vm_host: IntArray, vm_leaf: IntArray,
               weights: FloatArray, capacity_cores: FloatArray) -> FloatArray:
    """Each VM's served CPU on its host, through the pool tree (see the module docstring).

    ``vm_leaf`` indexes ``tree.leaves``; ``capacity_cores`` is per host.
    """
    fraction = host_fractions(capacity_cores)
    index = {name: k for k, name in enumerate((ROOT, *tree.order))}
    want, leaf_rows = pool_wants(tree, demand_cores, vm_host, vm_leaf, fraction)
    given = np.zeros_like(want)
    given[0] = np.minimum(capacity_cores, want[0])
    for node in (ROOT, *tree.order):
        kids = [index[c] for c in tree.children[node]]
        if kids:
            given[kids] = _split(given[index[node]], want[kids], [tree.pools[c] for c in tree.children[node]],
                                 fraction)
    served = np.zeros_like(demand_cores)
    for k in np.unique(leaf_rows):
        mine = leaf_rows == k
        served[mine] = share_cpu(demand_cores[mine], vm_host[mine], given[k], policy="shares", weights=weights[mine])
    return served


def host_fractions(capacity_cores: FloatArray) -> FloatArray:
    """Each host's share of the cluster's cores: the share of every reservation and limit it carries."""
    fraction: FloatArray = capacity_cores / max(float(capacity_cores.sum()), EPS)
    return fraction


def pool_wants(tree: PoolTree, demand_cores: FloatArray, vm_host: IntArray, vm_leaf: IntArray,
               fraction: FloatArray) -> tuple[FloatArray, IntArray]:
    """What each pool wants on each host (rows: the root, then ``tree.order``): its subtree's demand
    within every limit in it; and each VM's row."""
    hosts = fraction.size
    index = {name: k for k, name in enumerate((ROOT, *tree.order))}
    leaf_rows: IntArray = np.array([index[leaf] for leaf in tree.leaves], dtype=np.int64)[vm_leaf]
    want = np.zeros((len(index), hosts))
    for name in reversed(tree.order):  # bottom up: a pool wants what its subtree wants, within its limit
        k = index[name]
        if not tree.children[name]:
            mine = leaf_rows == k
            want[k] = np.bincount(vm_host[mine], weights=demand_cores[mine], minlength=hosts)
        limit = tree.pools[name].cpu_limit_cores
        if limit > 0:
            want[k] = np.minimum(want[k], limit * fraction)
        want[index[tree.pools[name].parent]] += want[k]
    return want, leaf_rows


def pool_usage(tree: PoolTree, demand_cores: FloatArray, served_cores: FloatArray, vm_host: IntArray,
               vm_leaf: IntArray, capacity_cores: FloatArray) -> dict[str, tuple[float, float, float]]:
    """Per pool, summed over hosts: (demand, served, guaranteed = sum_h min(want, reservation share))."""
    fraction = host_fractions(capacity_cores)
    want, leaf_rows = pool_wants(tree, demand_cores, vm_host, vm_leaf, fraction)
    hosts = capacity_cores.size
    usage: dict[str, tuple[float, float, float]] = {}
    for k, name in enumerate(tree.order, start=1):
        under = np.isin(leaf_rows, [1 + tree.order.index(leaf) for leaf in tree.leaves if name in tree.path(leaf)])
        reserved = tree.pools[name].cpu_reservation_cores * fraction
        served = np.bincount(vm_host[under], weights=served_cores[under], minlength=hosts)
        usage[name] = (float(demand_cores[under].sum()), float(served.sum()),
                       float(np.minimum(want[k], reserved).sum()))
    return usage


def _split(amount: FloatArray, want: FloatArray, pools: list[Pool], fraction: FloatArray) -> FloatArray:
    """A parent's CPU per host among its children: reservations first, the rest by shares."""
    reserved = np.array([p.cpu_reservation_cores for p in pools])[:, None] * fraction[None, :]
    first = np.minimum(want, reserved)
    rest = np.maximum(amount - first.sum(axis=0), 0.0)
    extra = (want - first).ravel()
    host = np.tile(np.arange(amount.size), len(pools))
    shares = np.repeat(np.array([p.cpu_shares for p in pools]), amount.size)
    more = share_cpu(extra, host, rest, policy="shares", weights=shares).reshape(want.shape)
    result: FloatArray = first + more
    return result

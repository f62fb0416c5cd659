"""A disaggregated memory pool: NUMA- and pool-aware allocation, and what each allocation costs.

Theory of operation
-------------------
A VM's memory can live in three tiers, seen from the socket its vCPUs run on (its *home* node):

- the home NUMA node's DRAM;
- another NUMA node of the same host (one hop over the socket interconnect);
- the pool: CXL-attached memory shared by a group of ``hosts_per_pool`` hosts (a multi-headed
  memory device, or a CXL switch for larger groups), reached over the host's CXL link. This is the
  design of Pond (Li et al., "Pond: CXL-Based Memory Pooling Systems for Cloud Platforms",
  ASPLOS 2023), which hands pool memory to hosts in 1 GiB slices.

Where each tier's latency and bandwidth come from (``MemoryFabric``; every figure can be set):

- DRAM bandwidth per NUMA node: channels x DDR5-4800's 4800 MT/s x 8 bytes = 38.4 GB/s per
  channel (JEDEC JESD79-5); 8 channels per socket by default.
- Socket interconnect: 3 Intel UPI 2.0 links of 16 GT/s, 2 bytes per transfer each way
  (about 32 GB/s a link; Sapphire Rapids has 3-4). Local DRAM about 100 ns and 60 ns more across
  sockets: orders of magnitude of two-socket servers measured with Intel MLC, not one paper's
  figure -- set your own.
- CXL link: PCIe 5.0 x16, 32 GT/s x 16 lanes / 8 x 128/130 (encoding) = 63 GB/s each way (the
  PCI-SIG 5.0 base specification, which CXL 2.0 runs over). Pond measured pool memory at 70-90 ns
  over NUMA-local DRAM for pools of 8-16 sockets (a multi-headed device, no switch) and 180 ns or
  more for rack-scale pools behind a switch: the model takes 80 ns up to ``direct_pool_max_sockets``
  sockets and ``switched_pool_extra_ns`` beyond.

Allocation (``MemoryPool.allocate``): the home node is the host's node with the most free DRAM; the
VM's memory fills the home node, then the host's other nodes, then the pool (rounded up to whole
slices). A VM touches a ``hot_fraction`` of its memory for ``hot_access_share`` of its accesses
(Pond found about half of VM memory untouched). The ``pool_aware`` policy puts the hot part first,
so the pool holds the coldest memory; ``uniform`` does not know which part is hot (accesses spread
evenly over wherever the memory landed), as a capacity-only allocator.

What each allocation costs:

- access shares per tier follow from the layout; a VM's *locality index* is its home node's
  share, its *cross-node ratio* the pool's (off-host) share;
- mean access latency = sum of share x tier latency; effective bandwidth = 1 / sum of share /
  tier bandwidth (streaming its access mix, each tier at its link's rate; VMs on a host do not
  contend in this model);
- allocation latency = ``local_map_ms_per_gib`` per GiB on the host, plus, when pool slices are
  needed, a round trip to the pool manager and ``slice_map_ms`` per slice (programming the
  device's decoder and onlining the slice); the manager serves one request at a time, so a burst
  queues (the runtime adds the wait). These three are assumptions of the model (no published
  per-slice figure), stated as such.

Nothing here aims at a target: the metrics follow from the fabric, the sizes and the placement,
and a pool too small, a policy that ignores hot memory or a burst of large VMs fails them
(``tests/test_memory_pool.py``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

DDR5_4800_CHANNEL_GB_S = 4800e6 * 8 / 1e9
"""One DDR5-4800 channel: 4800 MT/s x 8 bytes (JEDEC JESD79-5) = 38.4 GB/s."""
PCIE5_ENCODING = 128 / 130
POLICIES = ("pool_aware", "uniform")
EPS = 1e-9


def pcie_link_gb_s(gt_s: float, lanes: int) -> float:
    """A PCIe (and so CXL) link's bandwidth each way: GT/s x lanes / 8 bits, less 128b/130b encoding."""
    return gt_s * lanes / 8 * PCIE5_ENCODING


@dataclass(frozen=True, slots=True, kw_only=True)
class MemoryFabric:
    """Latency and bandwidth of each tier, and the allocation costs (see the module docstring)."""

    local_latency_ns: float = 100.0
    numa_extra_ns: float = 60.0
    pool_extra_ns: float = 80.0
    local_bandwidth_gb_s: float = 8 * DDR5_4800_CHANNEL_GB_S
    numa_bandwidth_gb_s: float = 3 * 32.0
    pool_bandwidth_gb_s: float = pcie_link_gb_s(32.0, 16)
    local_map_ms_per_gib: float = 0.05
    manager_rtt_ms: float = 0.1
    slice_map_ms: float = 0.2
    slice_gib: float = 1.0

    def latencies_ns(self) -> tuple[float, float, float]:
        local = self.local_latency_ns
        return local, local + self.numa_extra_ns, local + self.pool_extra_ns

    def bandwidths_gb_s(self) -> tuple[float, float, float]:
        return self.local_bandwidth_gb_s, self.numa_bandwidth_gb_s, self.pool_bandwidth_gb_s


@dataclass(frozen=True, slots=True, kw_only=True)
class Allocation:
    """Where one VM's memory went and what its accesses cost."""

    vm_id: str
    host: int
    home_node: int
    node_gib: tuple[float, ...]
    """GiB on each NUMA node of the host (the home node included)"""
    slices: int
    pool_gib: float
    """GiB reserved in the pool: ``slices`` whole slices"""
    memory_gib: float
    shares: tuple[float, float, float]
    """share of the VM's accesses served by its home node, the host's other nodes, the pool"""
    latency_ns: float
    bandwidth_gb_s: float
    host_ms: float
    """allocation time on the host (mapping its local memory)"""
    manager_ms: float
    """the pool manager's service time for this request (0 without pool slices)"""

    @property
    def locality_index(self) -> float:
        return self.shares[0]

    @property
    def cross_node_share(self) -> float:
        return self.shares[2]


@dataclass(frozen=True, slots=True, kw_only=True)
class PoolSnapshot:
    """The live allocations at one instant, each VM weighted by its memory."""

    vms: int
    locality_index: float
    cross_node_share: float
    bandwidth_gb_s: float
    latency_ns: float
    local_used_gib: float
    pool_used_gib: float
    pool_capacity_gib: float
    group_excess_max_gib: float
    """most GiB any pool group holds beyond its capacity (never > 0)"""


def _pour(free_gib: list[float], amount_gib: float) -> list[float]:
    """``amount_gib`` poured into bins in order, each up to its free room; the last bin takes the rest."""
    taken = []
    left = amount_gib
    for k, free in enumerate(free_gib):
        take = left if k == len(free_gib) - 1 else min(left, max(free, 0.0))
        taken.append(take)
        left -= take
    return taken


@dataclass(frozen=True, slots=True, kw_only=True)
class AccessModel:
    policy: str = "pool_aware"
    hot_fraction: float = 0.5
    hot_access_share: float = 0.95

    def layout(self, free_gib: list[float], memory_gib: float) -> tuple[list[float], list[float]]:
        """(GiB in each bin, share of accesses to each bin); bins in fill order, the pool last."""
        if self.policy == "uniform":
            placed = _pour(free_gib, memory_gib)
            return placed, [gib / memory_gib for gib in placed]
        hot_gib = self.hot_fraction * memory_gib
        hot = _pour(free_gib, hot_gib)
        cold = _pour([f - h for f, h in zip(free_gib, hot, strict=True)], memory_gib - hot_gib)
        cold_gib = memory_gib - hot_gib
        hot_share = self.hot_access_share if cold_gib > EPS else 1.0
        shares = [hot_share * h / hot_gib + ((1.0 - hot_share) * c / cold_gib if cold_gib > EPS else 0.0)
                  for h, c in zip(hot, cold, strict=True)]
        return [h + c for h, c in zip(hot, cold, strict=True)], shares


class MemoryPool:
    """Each host's DRAM per NUMA node and each group's pool, in GiB and slices; the live allocations."""

    def __init__(self, *, hosts: int, numa_nodes: int, local_gib_per_host: float, hosts_per_pool: int,
                 pool_gib_per_group: float, fabric: MemoryFabric, access: AccessModel) -> None:
        self.fabric, self.access = fabric, access
        self.hosts_per_pool = hosts_per_pool
        self.node_capacity_gib = local_gib_per_host / numa_nodes
        self.node_used_gib = np.zeros((hosts, numa_nodes))
        groups = math.ceil(hosts / hosts_per_pool)
        self.group_capacity_slices = np.full(groups, int(pool_gib_per_group // fabric.slice_gib + EPS), dtype=np.int64)
        self.group_used_slices = np.zeros(groups, dtype=np.int64)
        self.allocations: dict[str, Allocation] = {}

    def group_of(self, host: int) -> int:
        return host // self.hosts_per_pool

    @property
    def pool_capacity_gib(self) -> float:
        return float(self.group_capacity_slices.sum()) * self.fabric.slice_gib

    def plan(self, vm_id: str, host: int, memory_gib: float) -> Allocation | None:
        """Where ``memory_gib`` would go on ``host`` now (no change); ``None`` if its pool lacks the slices."""
        free = self.node_capacity_gib - self.node_used_gib[host]
        nodes = sorted(range(len(free)), key=lambda n: (-free[n], n))  # home = most free, then the rest
        placed, shares = self.access.layout([float(free[n]) for n in nodes] + [math.inf], memory_gib)
        slices = math.ceil(placed[-1] / self.fabric.slice_gib - EPS) if placed[-1] > EPS else 0
        group = self.group_of(host)
        if self.group_used_slices[group] + slices > self.group_capacity_slices[group]:
            return None
        node_gib = [0.0] * len(free)
        for n, gib in zip(nodes, placed[:-1], strict=True):
            node_gib[n] = gib
        raw = (shares[0], sum(shares[1:-1]), shares[-1])
        total = sum(raw)
        home, numa, remote = (min(max(x / total, 0.0), 1.0) for x in raw)  # rounding stays within [0, 1]
        tiers = (home, numa, remote)
        f = self.fabric
        latency = sum(s * lat for s, lat in zip(tiers, f.latencies_ns(), strict=True))
        inverse = sum(s / bw for s, bw in zip(tiers, f.bandwidths_gb_s(), strict=True))
        return Allocation(vm_id=vm_id, host=host, home_node=nodes[0], node_gib=tuple(node_gib), slices=slices,
                          pool_gib=slices * f.slice_gib, memory_gib=memory_gib, shares=tiers, latency_ns=latency,
                          bandwidth_gb_s=1.0 / inverse, host_ms=f.local_map_ms_per_gib * (memory_gib - placed[-1]),
                          manager_ms=f.manager_rtt_ms + slices * f.slice_map_ms if slices else 0.0)

    def allocate(self, vm_id: str, host: int, memory_gib: float) -> Allocation | None:
        if vm_id in self.allocations:
            raise ValueError(f"VM {vm_id!r} already has memory in the pool")
        allocation = self.plan(vm_id, host, memory_gib)
        if allocation is not None:
            self.node_used_gib[host] += allocation.node_gib
            self.group_used_slices[self.group_of(host)] += allocation.slices
            self.allocations[vm_id] = allocation
        return allocation

    def release(self, vm_id: str) -> Allocation | None:
        """Give the VM's memory back; ``None`` if it had none."""
        allocation = self.allocations.pop(vm_id, None)
        if allocation is not None:
            used = self.node_used_gib[allocation.host]
            np.maximum(used - allocation.node_gib, 0.0, out=used)  # float rounding never goes below empty
            self.group_used_slices[self.group_of(allocation.host)] -= allocation.slices
        return allocation

    def snapshot(self) -> PoolSnapshot:
        live = list(self.allocations.values())
        weights = np.array([a.memory_gib for a in live])
        total = float(weights.sum())

        def mean(values: list[float]) -> float:
            return float(np.dot(weights, values) / total) if total > 0 else math.nan

        excess = (self.group_used_slices - self.group_capacity_slices) * self.fabric.slice_gib
        return PoolSnapshot(
            vms=len(live), locality_index=mean([a.locality_index for a in live]),
            cross_node_share=mean([a.cross_node_share for a in live]),
            bandwidth_gb_s=mean([a.bandwidth_gb_s for a in live]), latency_ns=mean([a.latency_ns for a in live]),
            local_used_gib=float(self.node_used_gib.sum()),
            pool_used_gib=float(self.group_used_slices.sum()) * self.fabric.slice_gib,
            pool_capacity_gib=self.pool_capacity_gib, group_excess_max_gib=float(max(excess.max(initial=0), 0)))


def most_local_host(pool: MemoryPool, candidates: list[int], memory_gib: float, preferred: int | None) -> int | None:
    """Memory affinity: of ``candidates``, the host where a VM of ``memory_gib`` would have the
    highest locality index (then the smallest pool share); ``preferred`` (the placer's own choice)
    wins ties, then the lowest index. ``None`` if no candidate's pool can hold its remote part."""
    best: tuple[float, float, int] | None = None
    chosen = None
    for host in candidates:
        plan = pool.plan("", host, memory_gib)
        if plan is None:
            continue
        key = (-round(plan.locality_index, 9), round(plan.cross_node_share, 9), 0 if host == preferred else 1)
        if best is None or key < best:
            best, chosen = key, host
    return chosen

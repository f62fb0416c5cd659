"""Catalogue metrics of the memory pool, from ``MemoryPoolAllocated`` / ``MemoryPoolSampled`` / refusals."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from novacron.cluster.events import MemoryPoolAllocated, MemoryPoolRefused, MemoryPoolSampled, VMRejected
from novacron.events import Event
from novacron.streaming import InMemoryColumn, Metrics

MEMORY_POOL_REFUSAL_PREFIX = "memory pool:"

MEMORY_POOL_METRICS: tuple[tuple[str, str, str], ...] = (
    ("memory_pool.capacity_tib", "TiB", "pool memory over every pool group"),
    ("memory_pool.allocations", "", "VM memory layouts (placements, restarts and moves)"),
    ("memory_pool.allocation_mean_ms", "ms", "mean allocation latency: host mapping, pool manager wait and service"),
    ("memory_pool.allocation_p99_ms", "ms", "p99 allocation latency"),
    ("memory_pool.locality_index", "", "share of VMs' memory accesses served by their home NUMA node "
                                       "(memory-weighted, mean over samples)"),
    ("memory_pool.cross_node_pct", "%", "share of VMs' memory accesses served off their host by the pool "
                                        "(memory-weighted, mean over samples)"),
    ("memory_pool.bandwidth_gb_s", "GB/s", "effective memory bandwidth of VMs' access mix over the tiers "
                                           "(memory-weighted, mean over samples)"),
    ("memory_pool.access_latency_ns", "ns", "mean memory access latency of VMs' access mix (mean over samples)"),
    ("memory_pool.peak_used_pct", "%", "peak share of the pool in use"),
    ("memory_pool.capacity_excess_max_gib", "GiB", "most a pool group ever held beyond its capacity (never > 0)"),
    ("memory_pool.refused", "", "VMs turned away or laid out without the pool because its slices ran out"),
)


class MemoryPoolFold:
    def __init__(self) -> None:
        self.allocation_ms = InMemoryColumn()
        self.samples = 0
        self.sums = {"locality": 0.0, "cross": 0.0, "bandwidth": 0.0, "latency": 0.0}
        self.capacity_gib = self.peak_pct = self.excess_gib = 0.0
        self.refused = 0

    def handlers(self) -> Mapping[type[Event], Callable[[Any], None]]:
        return {MemoryPoolAllocated: self._allocated, MemoryPoolSampled: self._sampled,
                MemoryPoolRefused: self._refused, VMRejected: self._rejected}

    def _allocated(self, ev: MemoryPoolAllocated) -> None:
        self.allocation_ms.append(ev.allocation_ms)
        self.excess_gib = max(self.excess_gib, ev.pool_used_gib - ev.pool_capacity_gib)

    def _sampled(self, ev: MemoryPoolSampled) -> None:
        self.samples += 1
        for key, value in (("locality", ev.locality_index), ("cross", ev.cross_node_share),
                           ("bandwidth", ev.bandwidth_gb_s), ("latency", ev.latency_ns)):
            self.sums[key] += value
        self.capacity_gib = ev.pool_capacity_gib
        self.peak_pct = max(self.peak_pct, 100.0 * ev.pool_used_gib / max(ev.pool_capacity_gib, 1e-9))
        self.excess_gib = max(self.excess_gib, ev.group_excess_max_gib)

    def _refused(self, _: MemoryPoolRefused) -> None:
        self.refused += 1

    def _rejected(self, ev: VMRejected) -> None:
        if ev.reason.startswith(MEMORY_POOL_REFUSAL_PREFIX):
            self.refused += 1

    def result(self) -> Metrics:
        allocations = len(self.allocation_ms)
        if not allocations and not self.samples:
            return {}
        metrics: Metrics = {"memory_pool.allocations": float(allocations), "memory_pool.refused": float(self.refused),
                            "memory_pool.capacity_excess_max_gib": self.excess_gib}
        if allocations:
            metrics["memory_pool.allocation_mean_ms"] = float(self.allocation_ms.values().mean())
            metrics["memory_pool.allocation_p99_ms"] = self.allocation_ms.percentile(99)
        if self.samples:
            n = self.samples
            metrics.update({"memory_pool.capacity_tib": self.capacity_gib / 1024.0,
                            "memory_pool.locality_index": self.sums["locality"] / n,
                            "memory_pool.cross_node_pct": 100.0 * self.sums["cross"] / n,
                            "memory_pool.bandwidth_gb_s": self.sums["bandwidth"] / n,
                            "memory_pool.access_latency_ns": self.sums["latency"] / n,
                            "memory_pool.peak_used_pct": self.peak_pct})
        return metrics

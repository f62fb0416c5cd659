"""Catalogue metrics of resource pools, from their ``PoolCpuSampled`` and the pool rejections."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from novacron.cluster.events import PoolCpuSampled, VMRejected
from novacron.events import Event
from novacron.streaming import Metrics

POOL_REFUSAL_PREFIXES = ("pool ", "memory reserved for other pools")
"""How ``novacron.cluster.pools.admit_memory`` words a refusal (the rejection's reason)."""

POOL_METRICS: tuple[tuple[str, str, str], ...] = (
    ("pools.samples", "", "pool CPU samples (one per pool per demand sample)"),
    ("pools.reservation_shortfall_max_cores", "cores",
     "largest CPU a pool was short of its guarantee (min of demand and reservation, per host) at a sample"),
    ("pools.limit_excess_max_cores", "cores", "largest CPU a pool was served beyond its limit at a sample"),
    ("pools.contended_samples", "", "pool samples where the pool was served less than it asked"),
    ("pools.vms_rejected", "", "VM requests a pool refused (memory limit, or memory reserved for others)"),
)


class PoolFold:
    def __init__(self) -> None:
        self.samples = self.contended = self.rejected = 0
        self.shortfall = self.excess = 0.0

    def handlers(self) -> Mapping[type[Event], Callable[[Any], None]]:
        return {PoolCpuSampled: self._sampled, VMRejected: self._rejected}

    def _sampled(self, ev: PoolCpuSampled) -> None:
        self.samples += 1
        self.shortfall = max(self.shortfall, ev.guaranteed_cores - ev.served_cores)
        if ev.limit_cores > 0:
            self.excess = max(self.excess, ev.served_cores - ev.limit_cores)
        if ev.served_cores < ev.demand_cores - 1e-9:
            self.contended += 1

    def _rejected(self, ev: VMRejected) -> None:
        if ev.reason.startswith(POOL_REFUSAL_PREFIXES):
            self.rejected += 1

    def result(self) -> Metrics:
        if not self.samples:
            return {}
        return {"pools.samples": float(self.samples), "pools.reservation_shortfall_max_cores": self.shortfall,
                "pools.limit_excess_max_cores": self.excess, "pools.contended_samples": float(self.contended),
                "pools.vms_rejected": float(self.rejected)}

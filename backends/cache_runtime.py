"""The real cache: L1 in memory, L2 on Redis, L3 on disk, on the monotonic clock.

``build_real_cache`` is the composition the real runtime uses; the caller owns the loop and
calls ``tick()`` every few seconds (the cleanup cycle and statistics interval are checked there),
and ``close()`` at the end. Latencies are measured around every tier call with the monotonic
clock, so ``CacheStatsSampled`` carries real mean and p99 latencies per tier.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from backends.clock import MonotonicClock
from backends.disk_tier import DiskTier
from backends.redis_tier import RedisTier
from novacron.cache.hierarchy import CacheHierarchy, HierarchyOptions, WriteMode
from novacron.cache.memory import CLEANUP_INTERVAL_S, L1_CAPACITY_ITEMS, L1_TTL_S, MemoryTier
from novacron.ports import EventSink


@dataclass
class RealCache:
    hierarchy: CacheHierarchy
    l1: MemoryTier
    l2: RedisTier
    l3: DiskTier

    def close(self) -> None:
        self.hierarchy.flush()
        self.l2.close()


def build_real_cache(*, redis_url: str, l3_dir: str | Path, events: EventSink | None = None,
                     l1_capacity_items: int = L1_CAPACITY_ITEMS, l1_ttl_s: float = L1_TTL_S,
                     cleanup_interval_s: float = CLEANUP_INTERVAL_S,
                     l2_ttl_s: float = 3600.0, l3_capacity_bytes: int = 10 * 2**30, l3_ttl_s: float | None = None,
                     policy: str = "lru", write_mode: WriteMode = "through",
                     clock: MonotonicClock | None = None) -> RealCache:
    clock = clock or MonotonicClock()
    l1 = MemoryTier("l1", clock=clock, capacity_items=l1_capacity_items, default_ttl_s=l1_ttl_s, policy=policy)
    l2 = RedisTier("l2", url=redis_url, default_ttl_s=l2_ttl_s)
    l3 = DiskTier(l3_dir, "l3", capacity_bytes=l3_capacity_bytes, default_ttl_s=l3_ttl_s)
    options = HierarchyOptions(write_mode=write_mode, cleanup_interval_s=cleanup_interval_s, measure_latency=True)
    hierarchy = CacheHierarchy([l1, l2, l3], clock=clock, events=events, options=options, source="cache")
    return RealCache(hierarchy, l1, l2, l3)

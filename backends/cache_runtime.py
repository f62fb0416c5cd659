"""The real cache: L1 in memory, L2 on Redis, an optional SSD tier, L3 on disk, on the monotonic clock.

``build_real_cache`` is the composition the real runtime uses; the caller owns the loop and
calls ``tick()`` every few seconds (the cleanup cycle and statistics interval are checked there),
and ``close()`` at the end. Latencies are measured around every tier call with the monotonic
clock, so ``CacheStatsSampled`` carries real mean and p99 latencies per tier.

``build_real_cache_from_config`` reads the scenario's ``[cache]`` section: sizes, TTLs, policy,
write mode, and where L2 lives (``l2_mode`` single/sentinel/cluster, ``l2_addresses``,
``l2_sentinel_service``, ``l2_wait_replicas``, ``l2_wait_timeout_ms``: see ``backends.redis_tier``
for what an acknowledged L2 write guarantees in each mode).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from backends.clock import MonotonicClock
from backends.disk_tier import DiskTier
from backends.redis_tier import RedisTier, RedisTopology
from novacron.cache.config import CacheConfig
from novacron.cache.hierarchy import CacheHierarchy, HierarchyOptions, WriteMode
from novacron.cache.memory import CLEANUP_INTERVAL_S, L1_CAPACITY_ITEMS, L1_TTL_S, MemoryTier
from novacron.ports import CacheTier, EventSink


@dataclass
class RealCache:
    hierarchy: CacheHierarchy
    l1: MemoryTier
    l2: RedisTier
    l3: DiskTier
    ssd: DiskTier | None = None
    """The optional SSD/NVMe tier between L2 and L3 (a ``DiskTier`` on the SSD's directory)."""

    def close(self) -> None:
        self.hierarchy.flush()
        self.l2.close()


def l2_tier_from_config(config: CacheConfig, *, name: str = "l2", prefix: str = "novacron:") -> RedisTier:
    """The L2 tier the ``[cache]`` section describes (nothing is contacted yet)."""
    topology = RedisTopology(mode=config.l2_mode, addresses=config.l2_addresses,
                             service_name=config.l2_sentinel_service)
    return RedisTier(name, topology=topology, prefix=prefix, default_ttl_s=config.l2_ttl_s,
                     wait_replicas=config.l2_wait_replicas, wait_timeout_ms=config.l2_wait_timeout_ms)


def build_real_cache_from_config(config: CacheConfig, *, l3_dir: str | Path, events: EventSink | None = None,
                                 clock: MonotonicClock | None = None, l2_prefix: str = "novacron:",
                                 ssd_dir: str | Path | None = None) -> RealCache:
    """``ssd_dir`` holds the SSD tier when ``config.ssd_capacity_gib`` > 0 (required then)."""
    if config.ssd_capacity_gib > 0 and ssd_dir is None:
        raise ValueError(f"cache.ssd_capacity_gib = {config.ssd_capacity_gib} needs ssd_dir; allowed: a directory "
                         "on the SSD, or ssd_capacity_gib = 0")
    return build_real_cache(l2=l2_tier_from_config(config, prefix=l2_prefix), l3_dir=l3_dir, events=events,
                            l1_capacity_items=config.l1_capacity_items, l1_ttl_s=config.l1_ttl_s,
                            cleanup_interval_s=config.cleanup_interval_s,
                            l3_capacity_bytes=int(config.l3_capacity_gib * 2**30), l3_ttl_s=config.l3_ttl_s,
                            policy=config.policy, write_mode=config.write_mode, clock=clock,
                            ssd_dir=ssd_dir if config.ssd_capacity_gib > 0 else None,
                            ssd_capacity_bytes=int(config.ssd_capacity_gib * 2**30), ssd_ttl_s=config.ssd_ttl_s)


def build_real_cache(*, redis_url: str | None = None, l2: RedisTier | None = None, l3_dir: str | Path,
                     events: EventSink | None = None,
                     l1_capacity_items: int = L1_CAPACITY_ITEMS, l1_ttl_s: float = L1_TTL_S,
                     cleanup_interval_s: float = CLEANUP_INTERVAL_S,
                     l2_ttl_s: float = 3600.0, l3_capacity_bytes: int = 10 * 2**30, l3_ttl_s: float | None = None,
                     policy: str = "lru", write_mode: WriteMode = "through",
                     clock: MonotonicClock | None = None, stats_interval_s: float = 60.0,
                     ssd_dir: str | Path | None = None, ssd_capacity_bytes: int = 0,
                     ssd_ttl_s: float | None = None) -> RealCache:
    clock = clock or MonotonicClock()
    l1 = MemoryTier("l1", clock=clock, capacity_items=l1_capacity_items, default_ttl_s=l1_ttl_s, policy=policy)
    if l2 is None:
        if redis_url is None:
            raise ValueError("build_real_cache needs redis_url or l2")
        l2 = RedisTier("l2", url=redis_url, default_ttl_s=l2_ttl_s)
    l3 = DiskTier(l3_dir, "l3", capacity_bytes=l3_capacity_bytes, default_ttl_s=l3_ttl_s)
    # zstd level 1 on the SSD tier: its point is latency, the disk below keeps the denser copy
    ssd = (DiskTier(ssd_dir, "ssd", capacity_bytes=ssd_capacity_bytes, default_ttl_s=ssd_ttl_s, level=1)
           if ssd_dir is not None else None)
    options = HierarchyOptions(write_mode=write_mode, cleanup_interval_s=cleanup_interval_s, measure_latency=True,
                               stats_interval_s=stats_interval_s)
    tiers: list[CacheTier] = [l1, l2, *([ssd] if ssd is not None else []), l3]
    hierarchy = CacheHierarchy(tiers, clock=clock, events=events, options=options, source="cache")
    return RealCache(hierarchy, l1, l2, l3, ssd)

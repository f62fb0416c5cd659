"""The simulated cache: the core hierarchy over tier models with latency and throughput limits.

Theory of operation
-------------------
The hierarchy under test is the real one from ``novacron.cache``; only the tiers' physics are
modelled. Each tier is a ``MemoryTier`` (so capacities, TTLs and eviction are exact) wrapped by a
``TierModel`` that can be taken down (it then raises ``TierUnavailable``, as Redis does) and that
knows the tier's latency: log-normal with the configured median and shape, stretched by an
M/M/1 queueing factor 1 / (1 - rho) where rho is the tier's load over its throughput cap in
the current batch (rho capped at 0.95; beyond the cap the tier is saturated).

Requests are simulated in batches of ``tick_s`` seconds so millions of them stay cheap: a Poisson
count per batch, Zipf keys drawn vectorised (plus a fraction of never-seen keys), each request
run through the hierarchy (read-through: a full miss fetches from the origin and writes the value
through), and the batch's latencies drawn vectorised per tier from the count of requests that
reached it. All values share one bytes object of ``object_bytes`` so large objects cost no memory.
The rate may follow a daily cycle (busy first half, ``quiet_rate_fraction`` of it in the second),
and ``sim.cache_tiering`` may migrate entries between tiers while it is quiet.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Generator, Mapping, Sequence

import numpy as np
import numpy.typing as npt
import simpy

from novacron.cache.adaptive import AdaptiveSizing
from novacron.cache.config import CacheConfig
from novacron.cache.hierarchy import CacheHierarchy, HierarchyOptions
from novacron.cache.memory import MemoryTier
from novacron.cache.stats import BUCKETS_PER_DOUBLING
from novacron.cache.traces import ZipfSampler
from novacron.ports import CacheEntry, TierUnavailable
from sim.cache_tiering import TierMigrator
from sim.context import SimContext

MAX_RHO = 0.95


class TierModel:
    """A ``CacheTier``: a ``MemoryTier`` plus availability, latency and a throughput cap."""

    def __init__(self, inner: MemoryTier, *, latency_ms: float, ops_per_s_max: float | None) -> None:
        self.inner = inner
        self.name = inner.name
        self.latency_ms = latency_ms
        self.ops_per_s_max = ops_per_s_max
        self.up = True

    @property
    def capacity(self) -> int:
        return self.inner.capacity

    def resize(self, capacity: int) -> list[CacheEntry]:
        return self.inner.resize(capacity)

    def _check(self) -> None:
        if not self.up:
            raise TierUnavailable(f"{self.name} is down (simulated outage)")

    def get(self, key: str) -> bytes | None:
        self._check()
        return self.inner.get(key)

    def set(self, key: str, value: bytes, ttl_s: float | None = None,
            size_bytes: int | None = None) -> list[CacheEntry]:
        self._check()
        return self.inner.set(key, value, ttl_s, size_bytes)

    def delete(self, key: str) -> bool:
        self._check()
        return self.inner.delete(key)

    def contains(self, key: str) -> bool:
        self._check()
        return self.inner.contains(key)

    def get_many(self, keys: Sequence[str]) -> dict[str, bytes]:
        self._check()
        return self.inner.get_many(keys)

    def set_many(self, items: Mapping[str, bytes], ttl_s: float | None = None) -> list[CacheEntry]:
        self._check()
        return self.inner.set_many(items, ttl_s)

    def delete_many(self, keys: Sequence[str]) -> int:
        self._check()
        return self.inner.delete_many(keys)

    def purge_expired(self) -> int:
        self._check()
        return self.inner.purge_expired()

    def clear(self) -> int:
        self._check()
        return self.inner.clear()

    def draw_latencies_ms(self, rng: np.random.Generator, count: int, tick_s: float,
                          sigma: float) -> npt.NDArray[np.float64]:
        rho = 0.0 if self.ops_per_s_max is None else min(MAX_RHO, count / (self.ops_per_s_max * tick_s))
        median_ms = self.latency_ms / (1.0 - rho)
        return median_ms * rng.lognormal(0.0, sigma, size=count)


def build_tiers(ctx: SimContext, cfg: CacheConfig) -> list[TierModel]:
    clock = ctx.clock
    l1 = MemoryTier("l1", clock=clock, capacity_items=cfg.l1_capacity_items, default_ttl_s=cfg.l1_ttl_s,
                    policy=cfg.policy, tlru_half_life_s=cfg.l1_ttl_s)
    l2 = MemoryTier("l2", clock=clock, capacity_items=cfg.l2_capacity_items, default_ttl_s=cfg.l2_ttl_s,
                    policy=cfg.policy, tlru_half_life_s=cfg.l2_ttl_s)
    l3 = MemoryTier("l3", clock=clock, capacity_bytes=int(cfg.l3_capacity_gib * 2**30), default_ttl_s=cfg.l3_ttl_s,
                    policy=cfg.policy, tlru_half_life_s=cfg.l3_ttl_s)
    tiers = [TierModel(l1, latency_ms=cfg.l1_latency_ms, ops_per_s_max=None),
             TierModel(l2, latency_ms=cfg.l2_latency_ms, ops_per_s_max=cfg.l2_ops_per_s_max),
             TierModel(l3, latency_ms=cfg.l3_latency_ms, ops_per_s_max=cfg.l3_ops_per_s_max)]
    if cfg.ssd_capacity_gib > 0:  # issue 18: the NVMe tier between Redis and disk
        ssd = MemoryTier("ssd", clock=clock, capacity_bytes=int(cfg.ssd_capacity_gib * 2**30),
                         default_ttl_s=cfg.ssd_ttl_s, policy=cfg.policy, tlru_half_life_s=cfg.ssd_ttl_s)
        tiers.insert(2, TierModel(ssd, latency_ms=cfg.ssd_latency_ms, ops_per_s_max=cfg.ssd_ops_per_s_max))
    return tiers


def _histogram(latencies_ms: npt.NDArray[np.float64]) -> Counter[int]:
    buckets = np.floor(np.log2(np.maximum(latencies_ms, 1e-6) * 1000.0) * BUCKETS_PER_DOUBLING).astype(np.int64)
    values, counts = np.unique(buckets, return_counts=True)
    return Counter(dict(zip(values.tolist(), counts.tolist(), strict=True)))


class CacheWorkload:
    """Drives the hierarchy with the scenario's request stream and records modelled latencies."""

    def __init__(self, ctx: SimContext, cfg: CacheConfig, hierarchy: CacheHierarchy, tiers: list[TierModel]) -> None:
        self.ctx, self.cfg, self.hierarchy, self.tiers = ctx, cfg, hierarchy, tiers
        self.rng = ctx.seeds.numpy("cache.workload")
        self.latency_rng = ctx.seeds.numpy("cache.latency")
        self.key_names = [f"k{i}" for i in range(cfg.keys)]
        self.popularity = self.rng.permutation(cfg.keys)
        self.sampler = ZipfSampler(cfg.keys, cfg.zipf_alpha)
        self.value = bytes(cfg.object_bytes)
        self.new_keys = 0
        self.migrator: TierMigrator | None = None

    def rate_per_s(self, mid_batch_s: float) -> float:
        cfg = self.cfg
        if cfg.quiet_rate_fraction == 1.0:
            return cfg.requests_per_s
        quiet_half = mid_batch_s % cfg.daily_period_s >= cfg.daily_period_s / 2
        return cfg.requests_per_s * (cfg.quiet_rate_fraction if quiet_half else 1.0)

    def warm_start(self) -> None:
        """Start in steady state: L3 holds every key, L2 and L1 the most popular ones that fit,
        each with a remaining TTL drawn uniformly (entries of a running cache have all ages, so
        they must not all expire at the same instant)."""
        by_popularity = [self.key_names[i] for i in self.popularity.tolist()]
        for tier in reversed(self.tiers):
            inner = tier.inner
            fits = min(len(by_popularity), inner.capacity // (self.cfg.object_bytes if inner.bounded_by_bytes else 1))
            ttl = inner.default_ttl_s
            remaining = self.rng.uniform(0.0, ttl, size=fits).tolist() if ttl is not None else [None] * fits
            for name, ttl_s in zip(reversed(by_popularity[:fits]), remaining, strict=True):
                inner.set(name, self.value, ttl_s)

    def batch_keys(self, count: int) -> list[str]:
        ranks = self.sampler.draw(self.rng, count)
        fresh = self.rng.random(count) < self.cfg.new_key_fraction
        names = self.key_names
        keys = [names[i] for i in self.popularity[ranks].tolist()]
        for position in np.flatnonzero(fresh).tolist():
            keys[position] = f"new{self.new_keys}"
            self.new_keys += 1
        return keys

    def run_batch(self, keys: list[str]) -> None:
        cache, value = self.hierarchy, self.value
        served = [0] * (len(self.tiers) + 1)
        for key in keys:
            if cache.get(key) is None:
                cache.set(key, value)
                served[-1] += 1
            else:
                served[cache.last_hit_tier or 0] += 1
        self.record_latencies(served)

    def record_latencies(self, served: list[int]) -> None:
        """Tier i is reached by every request served at i or below; a full miss also pays the origin."""
        cfg, stats = self.cfg, self.hierarchy.stats
        total = sum(served)
        if total == 0:
            return
        # Order requests by depth, deepest first: the ones reaching tier i are the first ``reached``.
        overall = np.zeros(total)
        reached = total
        for index, tier in enumerate(self.tiers):
            if tier.up:
                drawn = tier.draw_latencies_ms(self.latency_rng, reached, cfg.tick_s, cfg.latency_sigma)
                stats.record_latencies(index, float(drawn.sum()), reached, _histogram(drawn))
                overall[:reached] += drawn
            reached -= served[index]
        overall[:served[-1]] += cfg.origin_latency_ms * self.latency_rng.lognormal(0.0, cfg.latency_sigma,
                                                                                 size=served[-1])
        stats.record_latencies(stats.overall, float(overall.sum()), total, _histogram(overall))

    def process(self) -> Generator[simpy.Event, None, None]:
        cfg, env = self.cfg, self.ctx.env
        # The last batch must end before the run does, or its statistics would never be emitted.
        end_s = self.ctx.scenario.duration_s - 1e-6
        if cfg.active_s is not None:
            end_s = min(end_s, cfg.active_s)
        while env.now + cfg.tick_s <= end_s:
            yield env.timeout(cfg.tick_s)
            count = int(self.rng.poisson(self.rate_per_s(env.now - cfg.tick_s / 2) * cfg.tick_s))
            keys = self.batch_keys(count) if count else []
            if keys:
                self.run_batch(keys)
            if self.migrator is not None:
                self.migrator.after_batch(keys, float(env.now))
            self.hierarchy.tick()
        self.hierarchy.emit_stats()


def l2_outage(ctx: SimContext, cfg: CacheConfig, l2: TierModel) -> Generator[simpy.Event, None, None]:
    assert cfg.l2_outage_start_s is not None
    yield ctx.env.timeout(cfg.l2_outage_start_s)
    l2.up = False
    yield ctx.env.timeout(cfg.l2_outage_s)
    l2.up = True


def start(ctx: SimContext) -> CacheHierarchy | None:
    cfg = ctx.scenario.cache
    if not cfg.enabled:
        return None
    tiers = build_tiers(ctx, cfg)
    adaptive = (AdaptiveSizing(min_capacity=max(1, cfg.l1_capacity_items // 2), max_capacity=cfg.l1_capacity_items * 2)
                if cfg.adaptive_l1 else None)
    options = HierarchyOptions(write_mode=cfg.write_mode, cleanup_interval_s=cfg.cleanup_interval_s,
                               stats_interval_s=cfg.stats_interval_s, adaptive_l1=adaptive)
    hierarchy = CacheHierarchy(tiers, clock=ctx.clock, events=ctx.recorder, options=options, source="cache")
    workload = CacheWorkload(ctx, cfg, hierarchy, tiers)
    if cfg.warm_start:
        workload.warm_start()
    if cfg.tier_migration:
        workload.migrator = TierMigrator(cfg, tiers, workload.value, ctx.recorder)
    ctx.env.process(workload.process())
    if cfg.l2_outage_start_s is not None:
        ctx.env.process(l2_outage(ctx, cfg, tiers[1]))
    ctx.config_metrics.update({
        "cache.l1.capacity_items": float(cfg.l1_capacity_items),
        "cache.l1.ttl_s": cfg.l1_ttl_s,
        "cache.l1.cleanup_interval_s": cfg.cleanup_interval_s,
    })
    return hierarchy

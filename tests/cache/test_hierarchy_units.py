"""The hierarchy's behaviours one at a time: promotion, demotion, write-back, cleanup, events."""

from __future__ import annotations

from novacron.cache.clock import ManualClock
from novacron.cache.events import CacheStatsSampled
from novacron.cache.hierarchy import CacheHierarchy, HierarchyOptions
from novacron.cache.memory import MemoryTier
from novacron.events import InMemoryEventLog, Recorder


def build(write_mode: str = "through", l1_items: int = 2, l1_ttl_s: float | None = None,
          **options: object) -> tuple[CacheHierarchy, list[MemoryTier], ManualClock, InMemoryEventLog]:
    clock = ManualClock(0.0)
    log = InMemoryEventLog()
    tiers = [MemoryTier("l1", clock=clock, capacity_items=l1_items, default_ttl_s=l1_ttl_s),
             MemoryTier("l2", clock=clock, capacity_items=4),
             MemoryTier("l3", clock=clock, capacity_items=100)]
    cache = CacheHierarchy(tiers, clock=clock, events=Recorder(log, clock.now_s),
                           options=HierarchyOptions(write_mode=write_mode, **options))  # type: ignore[arg-type]
    return cache, tiers, clock, log


def test_a_hit_below_is_promoted_to_every_tier_above() -> None:
    cache, (l1, l2, l3), _, _ = build()
    l3.set("k", b"v")
    assert cache.get("k") == b"v"
    assert l1.get("k") == b"v" and l2.get("k") == b"v"
    assert cache.last_hit_tier == 2
    assert (cache.stats.misses[0], cache.stats.misses[1], cache.stats.hits[2]) == (1, 1, 1)
    assert cache.stats.promotions[2] == 1
    assert cache.get("k") == b"v" and cache.last_hit_tier == 0


def test_l2_evictees_are_demoted_to_l3() -> None:
    cache, (_l1, l2, l3), _, _ = build(l1_items=1)
    for i in range(4):
        l2.set(f"k{i}", b"v")
    l3.set("deep", b"d")
    assert cache.get("deep") == b"d"  # promotes into L2 (full: evicts k0 into L3) and L1
    assert l3.get("k0") == b"v" and not l2.contains("k0")
    assert cache.stats.demotions[1] == 1


def test_write_back_defers_lower_tiers_until_eviction_or_flush() -> None:
    cache, (_l1, l2, l3), _, _ = build("back")
    cache.set("a", b"1")
    cache.set("b", b"2")
    assert not l2.contains("a") and not l3.contains("a")
    cache.set("c", b"3")  # L1 holds 2: evicts dirty "a", which is written through L2 and L3
    assert l2.get("a") == b"1" and l3.get("a") == b"1"
    assert cache.dirty == {"b", "c"}
    assert cache.flush() == 2
    assert l3.get("b") == b"2" and l3.get("c") == b"3" and not cache.dirty


def test_write_back_invalidates_stale_copies_below() -> None:
    cache, (l1, l2, l3), _, _ = build("back")
    l2.set("k", b"old")
    l3.set("k", b"old")
    cache.set("k", b"new")
    l1.delete("k")  # as if L1 lost it before writing back
    assert cache.get("k") is None, "never the stale value"


def test_cleanup_cycle_purges_expired_entries_and_counts_them() -> None:
    cache, (l1, _, _), clock, log = build(l1_ttl_s=5.0, cleanup_interval_s=30.0, stats_interval_s=60.0)
    cache.set("k", b"v")
    clock.advance(29.0)
    cache.tick()
    assert len(l1) == 1, "expired but not yet purged: the cycle runs every 30 s"
    clock.advance(1.0)
    cache.tick()
    assert len(l1) == 0 and cache.stats.expirations[0] == 1
    clock.advance(30.0)
    cache.tick()
    l1_row = next(e for e in log.of_type(CacheStatsSampled) if e.cache_tier == "l1")
    assert l1_row.cache_expirations == 1 and l1_row.interval_s == 60.0


def test_stats_events_are_per_interval_and_overall_adds_up() -> None:
    cache, _, clock, log = build(stats_interval_s=10.0)
    cache.set("a", b"1")
    cache.get("a")
    cache.get("missing")
    clock.advance(10.0)
    cache.tick()
    cache.get("a")
    clock.advance(10.0)
    cache.tick()
    rows = [(e.t_s, e.cache_tier, e.cache_hits, e.cache_misses) for e in log.of_type(CacheStatsSampled)]
    assert (10.0, "overall", 1, 1) in rows and (20.0, "overall", 1, 0) in rows
    assert (10.0, "l3", 0, 1) in rows
    assert not [r for r in rows if r[0] == 20.0 and r[1] == "l3"], "idle tiers emit nothing"


def test_get_many_reads_each_tier_once_and_promotes() -> None:
    cache, (l1, l2, l3), _, _ = build(l1_items=10)
    l1.set("a", b"1")
    l2.set("b", b"2")
    l3.set("c", b"3")
    assert cache.get_many(["a", "b", "c", "d", "a"]) == {"a": b"1", "b": b"2", "c": b"3"}
    assert cache.stats.hits[:3] == [1, 1, 1] and cache.stats.misses[-1] == 1
    assert l1.get("c") == b"3" and l2.get("c") == b"3"


def test_l1_defaults_are_the_analysis_settings() -> None:
    from novacron.cache.memory import default_l1

    clock = ManualClock(0.0)
    l1 = default_l1(clock)
    assert (l1.capacity, l1.default_ttl_s, HierarchyOptions().cleanup_interval_s) == (10_000, 300.0, 30.0)
    l1.set("k", b"v")
    clock.advance(299.0)
    assert l1.get("k") == b"v"
    clock.advance(1.0)
    assert l1.get("k") is None


def test_a_failing_tier_is_skipped_by_get_and_get_many_alike() -> None:
    from novacron.ports import TierUnavailable

    cache, (l1, l2, l3), _, _ = build(breaker_failure_threshold=1, breaker_reset_timeout_s=5.0)
    l3.set("k", b"v")

    def down(*_args: object) -> None:
        raise TierUnavailable("l2 is down")

    l2.get = l2.get_many = down  # type: ignore[method-assign,assignment]
    assert cache.get("k") == b"v"  # L2 fails once: the breaker opens
    l1.delete("k")
    assert cache.get_many(["k"]) == {"k": b"v"}
    assert cache.get("k") == b"v"
    assert cache.stats.failures[1] == 1
    assert cache.stats.misses[1] == 1, "get_many while the breaker is open: skipped, not a miss"
    assert cache.stats.skipped[1] == 3, "get_many's read and both promotions' writes"

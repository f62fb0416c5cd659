"""Writes and deletes a tier missed (breaker open, or it raised) never come back as stale reads:
directed cases for L2 and L3, overwrite and delete, write-through and write-back, and the
bounded tracking's fallback (clear the tier)."""

from __future__ import annotations

import pytest

from novacron.cache.clock import ManualClock
from novacron.cache.events import CacheTierCleared, CacheTierTrackingOverflowed
from novacron.cache.hierarchy import CacheHierarchy, HierarchyOptions
from novacron.cache.memory import MemoryTier
from novacron.events import InMemoryEventLog, Recorder
from tests.cache.flaky import FlakyTier

RESET_S = 5.0


def build(write_mode: str = "through", l1_items: int = 1, l2_items: int = 4,
          **options: object) -> tuple[CacheHierarchy, list[FlakyTier], ManualClock, InMemoryEventLog]:
    clock = ManualClock(0.0)
    log = InMemoryEventLog()
    tiers = [FlakyTier(MemoryTier("l1", clock=clock, capacity_items=l1_items)),
             FlakyTier(MemoryTier("l2", clock=clock, capacity_items=l2_items)),
             FlakyTier(MemoryTier("l3", clock=clock, capacity_items=100))]
    cache = CacheHierarchy(tiers, clock=clock, events=Recorder(log, clock.now_s),
                           options=HierarchyOptions(write_mode=write_mode, breaker_failure_threshold=1,  # type: ignore[arg-type]
                                                    breaker_reset_timeout_s=RESET_S, **options))  # type: ignore[arg-type]
    return cache, tiers, clock, log


def come_back(tier: FlakyTier, clock: ManualClock) -> None:
    tier.mode = "up"
    clock.advance(RESET_S + 1.0)


@pytest.mark.parametrize("mode", ["down", "unacked"])
def test_overwrite_l2_missed_is_not_served_stale(mode: str) -> None:
    cache, (l1, l2, l3), clock, _ = build()
    cache.set("k", b"v1")
    l2.mode = mode  # type: ignore[assignment]
    cache.set("k", b"v2")  # L2 raises (down: keeps v1); its breaker opens
    come_back(l2, clock)
    l1.inner.delete("k")
    l3.inner.delete("k")  # only L2's copy is left: v1 (down) or v2 (unacked: applied, not acknowledged)
    assert cache.get("k") is None, "L2's copy is not trusted, whichever it is"
    assert not l2.inner.contains("k"), "the unsynced copy was deleted from L2 on the way"
    assert not cache.unsynced[1]


def test_overwrite_skipped_by_an_open_breaker_is_not_served_stale() -> None:
    cache, (l1, l2, _l3), clock, _ = build()
    cache.set("k", b"v1")
    l2.mode = "down"
    cache.get("absent")  # L2 fails once: its breaker opens
    l2.mode = "up"  # back, but the breaker skips it until the reset timeout
    cache.set("k", b"v2")
    assert l2.inner.get("k") == b"v1" and cache.stats.skipped[1] > 0
    clock.advance(RESET_S + 1.0)
    l1.inner.delete("k")  # L1 loses k without demoting it (it expired)
    assert cache.get("k") == b"v2", "from L3, not L2's older v1"
    assert l2.inner.get("k") == b"v2", "and promoted over L2's older copy"


def test_overwrite_l3_missed_is_not_served_stale() -> None:
    cache, (l1, l2, l3), clock, _ = build()
    cache.set("k", b"v1")
    l3.mode = "down"
    cache.set("k", b"v2")
    come_back(l3, clock)
    l1.inner.delete("k")
    l2.inner.delete("k")
    assert cache.get("k") is None
    assert cache.get_many(["k"]) == {}


@pytest.mark.parametrize("index", [1, 2])
def test_delete_a_tier_missed_does_not_resurrect_the_key(index: int) -> None:
    cache, tiers, clock, _ = build()
    cache.set("k", b"v1")
    tiers[index].mode = "down"
    cache.delete("k")
    come_back(tiers[index], clock)
    assert tiers[index].inner.get("k") == b"v1"
    assert not cache.contains("k")
    assert cache.get("k") is None and cache.get_many(["k"]) == {}


def test_write_back_invalidation_l2_missed_is_not_served_stale() -> None:
    cache, (l1, l2, _l3), clock, _ = build("back", l1_items=4)
    cache.set("k", b"old")
    cache.flush()  # old is in every tier
    l2.mode = "down"
    cache.set("k", b"new")  # dirty in L1; the invalidation of L2's old copy fails
    come_back(l2, clock)
    l1.inner.delete("k")  # as if L1 lost it before writing back
    assert cache.get("k") is None, "never the stale value"


def test_write_back_eviction_l2_missed_is_not_served_stale() -> None:
    cache, (l1, l2, _l3), clock, _ = build("back", l1_items=1)
    cache.set("k", b"v1")
    cache.set("a", b"1")  # evicts dirty k=v1: written through L2 and L3
    cache.set("k", b"v2")  # invalidates k below, evicts a
    l2.mode = "down"
    cache.set("b", b"2")  # evicts dirty k=v2: L3 takes it, L2 does not
    come_back(l2, clock)
    l2.inner.set("k", b"v1")  # the worst case: L2 still holds the older value
    l1.inner.delete("b")
    assert cache.get("k") == b"v2"


def test_an_unsynced_evictee_is_dropped_not_demoted() -> None:
    """L2 evicts the older copy of a key it missed the overwrite of: that copy must not
    overwrite L3's current one."""
    cache, (_l1, l2, l3), clock, _ = build(l2_items=1)
    cache.set("k", b"v1")
    l2.mode = "down"
    cache.set("k", b"v2")
    come_back(l2, clock)
    l3.inner.set("x", b"x")
    assert cache.get("x") == b"x"  # promotion into L2 evicts k=v1 there
    assert l3.inner.get("k") == b"v2"


def test_reconcile_catches_a_recovered_tier_up() -> None:
    cache, (_l1, l2, _l3), clock, _ = build(cleanup_interval_s=1.0)
    cache.set_many({"a": b"1", "b": b"2"})
    l2.mode = "down"
    cache.set_many({"a": b"10", "b": b"20"})
    assert cache.unsynced[1] == {"a", "b"}
    cache.tick()
    assert cache.unsynced[1] == {"a", "b"}, "not while it is down"
    come_back(l2, clock)
    cache.tick()
    assert not cache.unsynced[1] and not l2.inner.contains("a") and not l2.inner.contains("b")


def test_overflowing_the_bound_clears_the_tier_before_it_is_used_again() -> None:
    cache, (l1, l2, l3), clock, log = build(max_unsynced_keys=2, l2_items=10)
    cache.set_many({"a": b"1", "b": b"2", "c": b"3"})
    l2.mode = "down"
    cache.set_many({"a": b"10", "b": b"20", "c": b"30"})
    assert cache.untracked[1] and not cache.unsynced[1]
    assert log.of_type(CacheTierTrackingOverflowed)[0].unsynced_keys == 3
    come_back(l2, clock)
    l3.inner.clear()
    assert cache.get("a") is None and cache.get("b") is None, "L2 was cleared, not read"
    assert [e.entries_removed for e in log.of_type(CacheTierCleared)] == [3]
    assert not cache.untracked[1]
    cache.set("d", b"4")
    l1.inner.clear()
    assert cache.get("d") == b"4" and cache.last_hit_tier == 1, "L2 serves again"


def test_a_tier_that_cannot_be_cleared_is_not_used_after_overflow() -> None:
    clock = ManualClock(0.0)
    l1 = MemoryTier("l1", clock=clock, capacity_items=1)

    class Unclearable(FlakyTier):
        clear = None  # type: ignore[assignment]

    l2 = Unclearable(MemoryTier("l2", clock=clock, capacity_items=10))
    cache = CacheHierarchy([l1, l2], clock=clock, options=HierarchyOptions(
        breaker_failure_threshold=1, breaker_reset_timeout_s=RESET_S, max_unsynced_keys=1))
    cache.set_many({"a": b"1", "b": b"2"})
    l2.mode = "down"
    cache.set_many({"a": b"10", "b": b"20"})
    come_back(l2, clock)
    l1.clear()
    assert cache.get("a") is None and cache.get("b") is None
    assert cache.stats.skipped[1] >= 2

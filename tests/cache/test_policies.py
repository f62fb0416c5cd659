"""Eviction policies, Belady's MIN, breaker, adaptive sizing and statistics, one behaviour each."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from novacron.cache.adaptive import AdaptiveSizing
from novacron.cache.belady import belady_hits
from novacron.cache.breaker import BreakerState, CircuitBreaker
from novacron.cache.clock import ManualClock
from novacron.cache.memory import MemoryTier
from novacron.cache.policies import POLICY_NAMES, LruPolicy, S3FifoPolicy, TlruPolicy, replay_hits
from novacron.cache.stats import CacheStats
from novacron.lifecycle import IllegalTransition


def test_lru_evicts_least_recently_used() -> None:
    lru = LruPolicy()
    for k in "abc":
        lru.inserted(k, 1, 0.0)
    lru.accessed("a", 1.0)
    assert lru.victim() == "b"
    assert lru.victim() == "c"


def test_tlru_prefers_to_keep_frequent_keys_of_equal_age() -> None:
    tlru = TlruPolicy(half_life_s=10.0)
    tlru.inserted("rare", 1, 0.0)
    tlru.inserted("hot", 1, 0.0)
    for _ in range(7):
        tlru.accessed("hot", 0.0)
    assert tlru.score("hot", 5.0) > tlru.score("rare", 5.0)
    assert tlru.victim() == "rare"


def test_tlru_score_halves_every_half_life() -> None:
    tlru = TlruPolicy(half_life_s=10.0)
    tlru.inserted("k", 1, 0.0)
    assert tlru.score("k", 10.0) == pytest.approx(tlru.score("k", 0.0) / 2)


def test_tlru_recency_beats_frequency_after_enough_half_lives() -> None:
    tlru = TlruPolicy(half_life_s=10.0)
    tlru.inserted("old_hot", 1, 0.0)
    for _ in range(20):
        tlru.accessed("old_hot", 0.0)
    tlru.inserted("new", 1, 30.0)  # w(8) = 4 = 2**2 < 2**3 from three half-lives
    assert tlru.victim() == "old_hot"


def test_s3fifo_one_hit_wonders_leave_through_the_small_fifo() -> None:
    s3 = S3FifoPolicy(capacity=10)
    hot = list(range(5))
    for k in hot:
        s3.inserted(k, 1, 0.0)
    for k in hot:
        s3.accessed(k, 0.0)
        s3.accessed(k, 0.0)
    evicted = []
    for k in range(100, 130):
        while len(s3) >= 10:
            evicted.append(s3.victim())
        s3.inserted(k, 1, 0.0)
    assert not set(hot) & set(evicted), "keys hit twice move to main and survive a scan"


def test_s3fifo_ghost_hit_goes_to_main() -> None:
    s3 = S3FifoPolicy(capacity=10)
    for k in range(11):
        while len(s3) >= 10:
            s3.victim()
        s3.inserted(k, 1, 0.0)
    assert 0 in s3._ghost
    while len(s3) >= 10:
        s3.victim()
    s3.inserted(0, 1, 0.0)
    assert 0 in s3._main and 0 not in s3._ghost


@given(keys=st.lists(st.integers(0, 30), min_size=1, max_size=300), capacity=st.integers(1, 12),
       policy_name=st.sampled_from(POLICY_NAMES))
def test_no_policy_beats_belady(keys: list[int], capacity: int, policy_name: str) -> None:
    assert replay_hits(policy_name, keys, capacity, half_life_s=50.0) <= belady_hits(keys, capacity)


@given(keys=st.lists(st.integers(0, 20), min_size=1, max_size=200), capacity=st.integers(1, 8))
def test_belady_matches_brute_force_furthest_in_future(keys: list[int], capacity: int) -> None:
    cached: list[int] = []
    hits = 0
    for i, key in enumerate(keys):
        if key in cached:
            hits += 1
            continue
        if len(cached) >= capacity:
            def next_use(k: int, i: int = i) -> int:
                rest = keys[i + 1:]
                return rest.index(k) if k in rest else len(keys)
            victim = max([*cached, key], key=next_use)
            if victim == key:
                continue
            cached.remove(victim)
        cached.append(key)
    assert belady_hits(keys, capacity) == hits


def test_belady_with_room_for_everything_misses_only_first_requests() -> None:
    keys = [random.Random(1).randrange(50) for _ in range(1000)]
    assert belady_hits(keys, 50) == len(keys) - len(set(keys))


def test_breaker_opens_after_threshold_and_recovers_after_trial() -> None:
    b = CircuitBreaker(failure_threshold=2, reset_timeout_s=5.0)
    assert b.allows(0.0)
    assert not b.record_failure(0.0)
    assert b.record_failure(0.1)
    assert b.state is BreakerState.OPEN
    assert not b.allows(1.0)
    assert b.allows(5.2) and b.state is BreakerState.HALF_OPEN
    b.record_failure(5.2)
    assert b.state is BreakerState.OPEN and not b.allows(6.0)
    assert b.allows(10.3)
    assert b.record_success(10.3) == pytest.approx(10.2)
    assert b.state is BreakerState.CLOSED


def test_breaker_lifecycle_rejects_illegal_moves() -> None:
    b = CircuitBreaker()
    with pytest.raises(IllegalTransition):
        b._move(BreakerState.HALF_OPEN)


def test_adaptive_sizing_grows_below_target_and_shrinks_above() -> None:
    sizing = AdaptiveSizing(min_capacity=100, max_capacity=1000, target_hit_rate_pct=85.0)
    capacity, rate = sizing.decide(hits=500, misses=500, capacity=500)
    assert capacity == 550 and rate == pytest.approx(50.0)
    capacity, _ = sizing.decide(hits=500 + 990, misses=500 + 10, capacity=550)
    assert capacity == 495
    assert sizing.decide(hits=1490, misses=510, capacity=495)[0] == 495, "no requests: no change"


def test_memory_tier_resize_evicts_down_and_returns_evictees() -> None:
    tier = MemoryTier("l1", clock=ManualClock(), capacity_items=10)
    for i in range(10):
        tier.set(f"k{i}", b"v")
    evicted = tier.resize(4)
    assert len(tier) == 4 and [e.key for e in evicted] == [f"k{i}" for i in range(6)]


def test_memory_tier_does_not_demote_expired_entries() -> None:
    clock = ManualClock()
    tier = MemoryTier("l1", clock=clock, capacity_items=2, default_ttl_s=1.0)
    tier.set("a", b"1")
    clock.advance(2.0)
    tier.set("b", b"2")
    assert tier.set("c", b"3") == []
    assert tier.expirations == 1


def test_stats_sample_reports_only_the_interval() -> None:
    stats = CacheStats(["l1"])
    stats.hits[0] += 3
    stats.record_latency(0, 0.5)
    first = stats.sample()[0]
    stats.misses[0] += 1
    second = stats.sample()[0]
    assert (first.hits, first.misses, second.hits, second.misses) == (3, 0, 0, 1)
    assert first.latency_p99_ms is not None and 0.5 <= first.latency_p99_ms < 0.55
    assert second.latency_mean_ms is None
    assert stats.totals()[0].hits == 3


@given(ops=st.lists(st.tuples(st.integers(0, 9), st.floats(0, 5)), min_size=1, max_size=80),
       half_life_s=st.sampled_from([0.5, 3.0, 50.0]))
def test_tlru_victim_is_the_key_with_the_lowest_score(ops: list[tuple[int, float]], half_life_s: float) -> None:
    tlru = TlruPolicy(half_life_s=half_life_s)
    now_s = 0.0
    held: set[int] = set()
    for key, step_s in ops:
        now_s += step_s
        if key in held:
            tlru.accessed(key, now_s)
        else:
            tlru.inserted(key, 1, now_s)
            held.add(key)
    while held:
        scores = {k: tlru.score(k, now_s) for k in held}
        victim = tlru.victim()
        assert scores[victim] == pytest.approx(min(scores.values()), rel=1e-9)
        held.remove(victim)  # type: ignore[arg-type]

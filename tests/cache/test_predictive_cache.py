"""The predictive policy and W-TinyLFU (issue 20, item 6b), raced in one harness against S3-FIFO."""

from __future__ import annotations

import numpy as np
import pytest

from novacron.cache.clock import ManualClock
from novacron.cache.memory import MemoryTier
from novacron.cache.policies import replay_hits
from novacron.cache.predictive import PredictivePolicy, ReuseHazardModel, age_bucket
from novacron.cache.race import RaceResult, race
from novacron.cache.tinylfu import COUNTER_CAP, FrequencySketch, WTinyLfuPolicy, stable_hash
from novacron.cache.traces import scan_trace, zipf_trace


def test_every_policy_of_a_race_is_scored_by_the_same_replay_harness() -> None:
    keys = [r.key for r in zipf_trace(np.random.default_rng(3), n_objects=2000, alpha=0.9, n_requests=20_000)]
    results = {r.policy: r for r in race(keys, 50, ("s3fifo", "wtinylfu", "predictive"))}
    for name, result in results.items():
        assert result.hits == replay_hits(name, keys, 50)
        assert result.baseline_hits == results["s3fifo"].hits
        assert result.hits <= result.belady_hits
    assert results["s3fifo"].gap_closed_pct == 0.0


def test_gap_closed_is_the_share_of_the_baseline_to_belady_gap() -> None:
    assert RaceResult("p", 100, 40, 30, 50).gap_closed_pct == pytest.approx(50.0)
    assert RaceResult("p", 100, 20, 30, 50).gap_closed_pct == pytest.approx(-50.0)
    assert RaceResult("p", 100, 30, 30, 30).gap_closed_pct is None


def test_predictive_and_tinylfu_keep_a_hot_set_through_scans_that_lru_loses() -> None:
    """Directed: one-hit scan keys must not flush frequently used keys (admission)."""
    keys = [r.key for r in scan_trace(np.random.default_rng(5), n_objects=500, alpha=1.0, n_requests=30_000,
                                      scan_length=300, scan_every=1500)]
    lru = replay_hits("lru", keys, 100)
    assert replay_hits("predictive", keys, 100) > 1.1 * lru
    assert replay_hits("wtinylfu", keys, 100) > 1.1 * lru


def test_the_predictive_policy_is_deterministic_and_learns_a_higher_hazard_for_frequent_keys() -> None:
    keys = [r.key for r in zipf_trace(np.random.default_rng(11), n_objects=1000, alpha=1.0, n_requests=20_000)]
    assert replay_hits("predictive", keys, 40) == replay_hits("predictive", keys, 40)
    policy = PredictivePolicy(40)
    cached: set[int] = set()
    for t, key in enumerate(keys):
        if key in cached:
            policy.accessed(key, float(t))
            continue
        while len(cached) >= 40:
            cached.remove(policy.victim())  # type: ignore[arg-type]
        cached.add(key)
        policy.inserted(key, 1, float(t))
    policy.model.refresh()
    young = age_bucket(16)
    assert policy.model.hazard[7][young] > 5 * policy.model.hazard[1][young]


def test_the_hazard_table_is_kaplan_meier_over_reuses_and_censored_keys() -> None:
    model = ReuseHazardModel()
    for _ in range(3):
        model.observe_reuse(2, 1)  # age bucket 1
    model.observe_censored(2, 1)
    model.refresh()
    # 3 reused of 4 at risk in bucket 1 (width 2), with the prior
    assert model.hazard[2][1] == pytest.approx((3 + 0.01) / (4 + 1.0) / 2)
    model.decay()
    model.refresh()
    assert model.hazard[2][1] == pytest.approx((1.5 + 0.01) / (2 + 1.0) / 2)


def test_tinylfu_admits_the_more_frequent_of_candidate_and_victim() -> None:
    policy = WTinyLfuPolicy(capacity=10)  # window 1, main 9
    for key in range(10):
        policy.inserted(key, 1, 0.0)  # window [9], probation [0..8]
    for _ in range(4):
        policy.sketch.increment(0)
    # room for key 10: key 9 leaves the window and duels probation's LRU key 0, which is more frequent
    assert policy.victim() == 9
    policy.inserted(10, 1, 0.0)
    for _ in range(5):  # 6 requests against key 0's 5 (a tie would evict the candidate)
        policy.sketch.increment(10)
    # room for key 11: key 10, now more frequent than key 0, is admitted and key 0 is evicted
    assert policy.victim() == 0
    assert 10 in policy._probation


def test_the_sketch_halves_its_counters_after_its_sample() -> None:
    sketch = FrequencySketch(capacity=4)  # sample 40 increments
    for _ in range(20):
        sketch.increment("hot")
    assert sketch.estimate("hot") == COUNTER_CAP
    for i in range(20):
        sketch.increment(("cold", i))
    assert sketch.estimate("hot") <= COUNTER_CAP // 2 + 1


def test_stable_hash_does_not_depend_on_the_process_hash_seed() -> None:
    assert stable_hash(42) == 42
    assert stable_hash("vm-image/0") == int.from_bytes(
        __import__("hashlib").blake2b(b"'vm-image/0'", digest_size=8).digest(), "little")


@pytest.mark.parametrize("policy", ["wtinylfu", "predictive"])
def test_the_new_policies_work_in_a_memory_tier(policy: str) -> None:
    tier = MemoryTier("l1", clock=ManualClock(0.0), capacity_items=10, policy=policy)
    for i in range(50):
        tier.set(f"k{i % 15}", b"x")
        tier.get("k0")
    assert len(tier) <= 10 and tier.get("k0") is not None

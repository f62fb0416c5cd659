"""Predictive preloading (issue 20, item 6b): the learned sequential prefetcher and its replay harness."""

from __future__ import annotations

from collections.abc import Hashable, Sequence

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from novacron.cache.policies import make_policy, replay_hits
from novacron.cache.prefetch import PrefetchReplay, SequentialPrefetcher, replay_with_prefetch
from novacron.cache.race import race
from novacron.cache.traces import scan_trace, zipf_trace

POLICIES = ("lru", "s3fifo", "wtinylfu", "predictive")
LONE_REQUESTS = 400


class _Scripted:
    """A prefetcher that names whatever the test drew, one list per demand request."""

    name = "scripted"

    def __init__(self, script: Sequence[Sequence[int]]) -> None:
        self._script, self._step = script, 0

    def observe(self, key: Hashable) -> Sequence[Hashable]:
        self._step += 1
        return self._script[(self._step - 1) % len(self._script)]

    def feedback(self, key: Hashable, *, used: bool) -> None:
        pass


class _Counting:
    """Wraps a policy and checks, at every insertion, that the cache holds at most ``capacity``."""

    def __init__(self, name: str, capacity: int) -> None:
        self._inner, self.capacity, self.name, self.resident = make_policy(name, capacity), capacity, name, 0

    def inserted(self, key: Hashable, size: int, now_s: float) -> None:
        self.resident += 1
        assert self.resident <= self.capacity, f"{self.name}: {self.resident} keys in {self.capacity} slots"
        self._inner.inserted(key, size, now_s)

    def accessed(self, key: Hashable, now_s: float) -> None:
        self._inner.accessed(key, now_s)

    def removed(self, key: Hashable) -> None:
        self._inner.removed(key)

    def victim(self) -> Hashable:
        self.resident -= 1
        return self._inner.victim()

    def resize(self, capacity: int) -> None:
        self._inner.resize(capacity)


@given(keys=st.lists(st.integers(0, 30), min_size=1, max_size=200),
       script=st.lists(st.lists(st.integers(0, 40), max_size=3), min_size=1, max_size=20),
       capacity=st.integers(1, 8), policy=st.sampled_from(POLICIES), budget=st.integers(0, 3))
def test_preloading_never_exceeds_capacity_nor_changes_what_a_demand_request_returns(
        keys: list[int], script: list[list[int]], capacity: int, policy: str, budget: int) -> None:
    seen: list[tuple[Hashable, object, bool]] = []
    counting = _Counting(policy, capacity)
    replay = replay_with_prefetch(counting, keys, capacity, _Scripted(script), fetch=lambda k: ("origin", k),
                                  budget_per_request=budget, max_pending_fraction=1.0,
                                  on_demand=lambda k, v, hit: seen.append((k, v, hit)))
    assert [(k, v) for k, v, _ in seen] == [(k, ("origin", k)) for k in keys]
    assert replay.hits == sum(hit for _, _, hit in seen)
    assert replay.prefetches_used <= replay.prefetches <= budget * len(keys)
    # without a prefetcher the harness is the race's demand-paging replay, hit for hit
    assert replay_with_prefetch(make_policy(policy, capacity), keys, capacity, None).hits == \
        replay_hits(policy, keys, capacity)


def _scans_with_lone_keys(scans: int, scan_length: int = 100) -> list[int]:
    """Scans of fresh consecutive keys (10_000, 20_000, ...), each followed by lone keys (multiples
    of 10, whose successors never follow), so that only runs of two or more keys pay off."""
    keys: list[int] = []
    for scan in range(1, scans + 1):
        keys += range(10_000 * scan, 10_000 * scan + scan_length)
        keys += [10 * i for i in range(LONE_REQUESTS)]
    return keys


def _misses_in_last_scan(prefetcher: SequentialPrefetcher, scans: int = 6, scan_length: int = 100) -> int:
    keys = _scans_with_lone_keys(scans, scan_length)
    hits: list[bool] = []
    replay_with_prefetch(make_policy("predictive", 50), keys, 50, prefetcher,
                         on_demand=lambda k, v, hit: hits.append(hit))
    start = (scans - 1) * (scan_length + LONE_REQUESTS)
    return scan_length - sum(hits[start:start + scan_length])


class _WrongSuccessor(SequentialPrefetcher):
    """Planted bug: preloads ``k - 1`` where the learned table predicts ``k + 1`` (a successor off
    by two; ``k + 2`` would still catch a scan, one request early)."""

    def observe(self, key: Hashable) -> Sequence[Hashable]:
        return [k - 2 for k in super().observe(key) if isinstance(k, int)]


class _NoRuns(SequentialPrefetcher):
    """Planted bug: forgets run lengths, so every request falls in class 1, which never pays off."""

    def _run_length(self, key: int) -> int:
        super()._run_length(key)
        return 1


def test_a_learned_scan_is_preloaded_so_only_its_first_two_keys_miss() -> None:
    # key 1 of a scan (run 1) shares its class with the lone keys, whose successors never come;
    # key 2 is a run of 2, a class that learned scans continue: every later key is preloaded
    assert _misses_in_last_scan(SequentialPrefetcher(500)) == 2


@pytest.mark.parametrize("planted", [_WrongSuccessor, _NoRuns])
def test_the_scan_check_fails_on_a_planted_prefetcher_bug(planted: type[SequentialPrefetcher]) -> None:
    assert _misses_in_last_scan(planted(500)) > 50


def test_the_prefetcher_learns_to_stay_quiet_on_shuffled_zipf_traffic() -> None:
    """Regression: counting a shadow prediction only when it resolved let the quick 'right'
    outcomes run ahead of the 'wrong' ones (known only at the deadline), and the first horizon
    of a Zipf trace issued preloads that were almost never used."""
    keys = [r.key for r in zipf_trace(np.random.default_rng(12345), n_objects=20_000, alpha=0.8,
                                      n_requests=30_000)]
    replay = replay_with_prefetch(make_policy("s3fifo", 1000), keys, 1000, SequentialPrefetcher(2000))
    assert replay.prefetches == 0


def test_preloads_that_go_to_waste_stop_a_class_until_the_halving_forgets_them() -> None:
    prefetcher = SequentialPrefetcher(10, min_accuracy=0.9, min_use_rate=0.35)
    prefetcher.right[1] = prefetcher.total[1] = 100.0  # runs of 2 are always continued...
    wasted = 0
    while prefetcher.observe(4) == () and prefetcher.observe(5) == (6,):
        prefetcher.feedback(6, used=False)  # ...but the cache never keeps the preload long enough
        wasted += 1
        assert wasted < 10
    assert wasted == 4  # the prior of 2 used preloads of 2: 2 / (2 + 4) < 0.35
    for _ in range(3):  # the halving pulls the class back to its trusting prior: it tries again
        prefetcher.issued = [v * 0.5 for v in prefetcher.issued]
        prefetcher.used = [v * 0.5 for v in prefetcher.used]
    assert prefetcher.observe(4) == () and prefetcher.observe(5) == (6,)


def test_replays_and_races_with_preloading_are_deterministic_and_can_pass_belady() -> None:
    keys = [r.key for r in scan_trace(np.random.default_rng(7), n_objects=2000, alpha=0.9, n_requests=20_000,
                                      scan_length=100, scan_every=400)]
    first = race(keys, 40, ("s3fifo", "predictive", "predictive+prefetch"))
    assert first == race(keys, 40, ("s3fifo", "predictive", "predictive+prefetch"))
    by_name = {r.policy: r for r in first}
    direct = replay_with_prefetch(make_policy("predictive", 40), keys, 40, SequentialPrefetcher(80))
    assert direct == replay_with_prefetch(make_policy("predictive", 40), keys, 40, SequentialPrefetcher(80))
    preloading = by_name["predictive+prefetch"]
    assert (preloading.hits, preloading.prefetches, preloading.prefetches_used) == \
        (direct.hits, direct.prefetches, direct.prefetches_used)
    assert by_name["predictive"].hits <= preloading.belady_hits  # demand paging: MIN is its ceiling
    assert preloading.hits > preloading.belady_hits  # a preloader is not bound by demand-paging MIN
    assert preloading.gap_closed_pct is not None and preloading.gap_closed_pct > 100.0


def test_bad_settings_are_one_clear_error() -> None:
    with pytest.raises(ValueError, match="horizon_requests >= 1"):
        SequentialPrefetcher(0)
    with pytest.raises(ValueError, match="budget_per_request >= 0"):
        replay_with_prefetch(make_policy("lru", 4), [1], 4, None, budget_per_request=-1)
    assert PrefetchReplay(hits=1, prefetches=0, prefetches_used=0).prefetch_accuracy_pct is None

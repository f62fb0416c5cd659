"""Model-based test of the hierarchy against a dict: what it returns is always the latest value
set (never a stale or deleted one), also while tiers fail and come back (``tests.cache.flaky``:
down, or applying writes without acknowledging them), and within the shortest TTL, with an L3
big enough for every key, a key set while every tier was healthy (and none failed since) returns
exactly that value. Runs with write-through and write-back, every policy, and a bound on the
keys the hierarchy tracks per tier small enough to overflow (then it clears the tier)."""

from __future__ import annotations

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from novacron.cache.breaker import BreakerState
from novacron.cache.clock import ManualClock
from novacron.cache.hierarchy import CacheHierarchy, HierarchyOptions
from novacron.cache.memory import MemoryTier
from novacron.events import InMemoryEventLog, Recorder
from tests.cache.flaky import FlakyTier

KEY_NAMES = [f"k{i}" for i in range(8)]
KEYS = st.one_of(st.sampled_from(KEY_NAMES[:2]), st.sampled_from(KEY_NAMES))
"""two hot keys, as in any skewed workload: overwrites of one key, in and out of outages, are common"""
VALUES = st.binary(min_size=0, max_size=6)
L1_TTL_S, L2_TTL_S, L3_TTL_S = 5.0, 10.0, 20.0


class HierarchyMachine(RuleBasedStateMachine):
    @initialize(write_mode=st.sampled_from(["through", "back"]), policy=st.sampled_from(["lru", "tlru", "s3fifo"]),
                l1_items=st.integers(1, 4), l2_items=st.integers(1, 6), max_unsynced_keys=st.sampled_from([1, 3, 100]))
    def build(self, write_mode: str, policy: str, l1_items: int, l2_items: int, max_unsynced_keys: int = 100) -> None:
        self.clock = ManualClock(0.0)
        log = InMemoryEventLog()
        self.flaky = [FlakyTier(MemoryTier("l1", clock=self.clock, capacity_items=l1_items, default_ttl_s=L1_TTL_S,
                                           policy=policy)),
                      FlakyTier(MemoryTier("l2", clock=self.clock, capacity_items=l2_items, default_ttl_s=L2_TTL_S,
                                           policy=policy)),
                      FlakyTier(self.make_l3(policy))]
        options = HierarchyOptions(write_mode=write_mode, cleanup_interval_s=1.0, stats_interval_s=2.0,  # type: ignore[arg-type]
                                   max_unsynced_keys=max_unsynced_keys)
        self.cache = CacheHierarchy(self.flaky, clock=self.clock, events=Recorder(log, self.clock.now_s),
                                    options=options)
        self.reference: dict[str, tuple[bytes, float]] = {}
        self.requests = 0
        self.last_unhealthy_s = -1.0
        """the last time a tier was failing or its breaker not closed: keys set since must not be lost"""

    def make_l3(self, policy: str) -> object:
        return MemoryTier("l3", clock=self.clock, capacity_items=16, default_ttl_s=L3_TTL_S, policy=policy)

    def _check(self, key: str, got: bytes | None) -> None:
        expected = self.reference.get(key)
        if expected is None:
            assert got is None, f"{key} was deleted or never set, yet the cache returned {got!r}"
            return
        value, set_at_s = expected
        if got is not None:
            assert got == value, f"{key}: stale value {got!r}, latest is {value!r}"
        elif self.clock.now_s() - set_at_s < L1_TTL_S - 1e-6 and set_at_s > self.last_unhealthy_s:
            # The margin: 3.2 + 5.0 - 3.2 is 4.999999999999999 in floating point, while the tier
            # expires the entry at exactly set time + TTL; at the boundary expiry is legitimate.
            raise AssertionError(f"{key} set {self.clock.now_s() - set_at_s:g} s ago was lost")

    @rule(key=KEYS, value=VALUES)
    def set(self, key: str, value: bytes) -> None:
        self.cache.set(key, value)
        self.reference[key] = (value, self.clock.now_s())

    @rule(items=st.dictionaries(KEYS, VALUES, min_size=1, max_size=4))
    def set_many(self, items: dict[str, bytes]) -> None:
        self.cache.set_many(items)
        for key, value in items.items():
            self.reference[key] = (value, self.clock.now_s())

    @rule(key=KEYS)
    def get(self, key: str) -> None:
        self.requests += 1
        self._check(key, self.cache.get(key))

    @rule(key=KEYS)
    def contains(self, key: str) -> None:
        if self.cache.contains(key):
            assert key in self.reference, f"{key} was deleted or never set, yet the cache contains it"

    @rule(keys=st.lists(KEYS, min_size=1, max_size=5))
    def get_many(self, keys: list[str]) -> None:
        self.requests += len(set(keys))
        got = self.cache.get_many(keys)
        for key in keys:
            self._check(key, got.get(key))

    @rule(key=KEYS)
    def delete(self, key: str) -> None:
        self.cache.delete(key)
        self.reference.pop(key, None)
        self.requests += 1
        assert self.cache.get(key) is None

    @rule(seconds=st.sampled_from([0.1, 0.5, 1.0, 3.0, 7.0]))
    def let_time_pass(self, seconds: float) -> None:
        self.clock.advance(seconds)
        self.cache.tick()

    @precondition(lambda self: self.cache.options.write_mode == "back")
    @rule()
    def flush(self) -> None:
        self.cache.flush()
        assert not self.cache.dirty

    @rule()
    def l1_loses_everything(self) -> None:
        """L1 forgets every entry behind the hierarchy's back (evicted, expired, a restart): reads
        fall through to L2 and L3, where copies older than the latest would show. Write-back
        values only L1 held are lost with it, which is allowed."""
        self.flaky[0].inner.clear()
        self.last_unhealthy_s = self.clock.now_s()

    @rule(index=st.integers(0, 2), mode=st.sampled_from(["down", "unacked"]))
    def tier_fails(self, index: int, mode: str) -> None:
        self.flaky[index].mode = mode  # type: ignore[assignment]

    @rule(index=st.integers(0, 2))
    def tier_recovers(self, index: int) -> None:
        self.flaky[index].mode = "up"

    @invariant()
    def note_health(self) -> None:
        healthy = all(t.mode == "up" for t in self.flaky) and all(
            b.state is BreakerState.CLOSED for b in self.cache.breakers)
        if not healthy:
            self.last_unhealthy_s = self.clock.now_s()

    @invariant()
    def stats_add_up(self) -> None:
        stats = self.cache.stats
        assert stats.hits[-1] == sum(stats.hits[:-1])
        assert stats.hits[-1] + stats.misses[-1] == self.requests

    @invariant()
    def tiers_within_capacity(self) -> None:
        for flaky in self.flaky:
            tier = flaky.inner
            if isinstance(tier, MemoryTier):
                assert len(tier) <= tier.capacity


TestHierarchyAgainstDict = HierarchyMachine.TestCase


class HierarchyWithDiskL3Machine(HierarchyMachine):
    """The same model with the real disk tier as L3 (files in a temporary directory)."""

    @initialize(write_mode=st.sampled_from(["through", "back"]), policy=st.sampled_from(["lru", "s3fifo"]),
                l1_items=st.integers(1, 3), l2_items=st.integers(1, 4), max_unsynced_keys=st.sampled_from([1, 100]))
    def build(self, write_mode: str, policy: str, l1_items: int, l2_items: int, max_unsynced_keys: int = 100) -> None:
        super().build(write_mode, policy, l1_items, l2_items, max_unsynced_keys)

    def make_l3(self, policy: str) -> object:
        import tempfile

        from backends.disk_tier import DiskTier

        self.tmp = tempfile.TemporaryDirectory(prefix="novacron-l3-")
        return DiskTier(self.tmp.name, capacity_bytes=1 << 20, default_ttl_s=L3_TTL_S, clock=self.clock)

    def teardown(self) -> None:
        self.tmp.cleanup()


TestHierarchyWithDiskL3AgainstDict = HierarchyWithDiskL3Machine.TestCase
# File I/O makes each step slower; fewer examples (inheriting the loaded profile's other settings).
TestHierarchyWithDiskL3AgainstDict.settings = settings(max_examples=40)

"""The sharded store as the cache hierarchy's L3: the tier contract, and L3 surviving a dead node."""

from __future__ import annotations

import shutil
from pathlib import Path

from backends.sharded_store import ShardedStore
from backends.sharded_tier import ShardedTier
from novacron.cache.clock import ManualClock
from novacron.cache.hierarchy import CacheHierarchy
from novacron.cache.memory import MemoryTier
from novacron.ports import CacheTier
from novacron.storage.codecs import ReedSolomon
from novacron.storage.domains import PlacementRule, topology
from tests.cache.test_tier_contract import TierContract

NODES = topology(1, 1, 6, 1)


def sharded_tier(root: Path, clock: ManualClock) -> ShardedTier:
    store = ShardedStore(root, NODES, ReedSolomon(4, 2), rule=PlacementRule(count=6, level="rack"))
    return ShardedTier(store, clock=clock)


class TestShardedTierContract(TierContract):
    def make_tier(self) -> CacheTier:
        return sharded_tier(self.tmp_path / "l3", self.clock)


def test_hierarchy_reads_through_to_a_sharded_l3_with_nodes_dead(tmp_path: Path) -> None:
    clock = ManualClock(0.0)
    l1 = MemoryTier("l1", clock=clock, capacity_items=10)
    l3 = sharded_tier(tmp_path, clock)
    hierarchy = CacheHierarchy([l1, l3], clock=clock)
    values = {f"vm/{i}": bytes([i]) * (100 + i) for i in range(40)}
    for key, value in values.items():
        hierarchy.set(key, value)
    for node in NODES[:2]:  # m = 2 nodes gone: every entry keeps 4 of its 6 shards
        shutil.rmtree(tmp_path / node.name)
    assert all(hierarchy.get(key) == value for key, value in values.items())
    assert hierarchy.stats.hits[1] >= len(values) - 10  # L1 holds 10: the rest came from L3
    assert hierarchy.stats.failures[1] == 0

"""The SSD/NVMe tier between memory and disk: in the simulated hierarchy and with real tiers."""

from __future__ import annotations

from pathlib import Path

import pytest

from backends.disk_tier import DiskTier
from backends.sharded_store import ShardedStore
from backends.sharded_tier import ShardedTier
from novacron.cache.clock import ManualClock
from novacron.cache.hierarchy import CacheHierarchy
from novacron.cache.memory import MemoryTier
from novacron.config import ConfigError
from novacron.metrics import compute_metrics
from novacron.scenario import loads_scenario
from novacron.storage.codecs import ReedSolomon
from novacron.storage.domains import PlacementRule, topology
from sim.run import simulate
from tests.one_line_errors import one_line_error

CACHE = """duration_s = 300.0
[workload]
vms = 2
[cache]
keys = 20000
l2_capacity_items = 4000
requests_per_s = 300.0
active_s = 300.0
"""


def cache_metrics(extra: str) -> dict[str, float]:
    return compute_metrics(simulate(loads_scenario(CACHE + extra, origin="ssd"), 9).log)


def test_an_ssd_tier_serves_l2_misses_faster_than_disk() -> None:
    without = cache_metrics("")
    with_ssd = cache_metrics("ssd_capacity_gib = 1.5\n")  # 24,000 objects of 64 KiB: every key fits
    assert "cache.ssd.hit_rate_pct" not in without
    assert with_ssd["cache.ssd.hit_rate_pct"] > 90.0
    assert with_ssd["cache.l3.requests"] < 0.2 * without["cache.l3.requests"]
    assert with_ssd["cache.overall.latency_mean_ms"] < without["cache.overall.latency_mean_ms"]
    assert with_ssd["cache.overall.hit_rate_pct"] == pytest.approx(without["cache.overall.hit_rate_pct"], abs=0.5)


def test_an_ssd_tier_too_small_for_one_object_is_refused() -> None:
    message = one_line_error(ConfigError, lambda: loads_scenario("[cache]\nssd_capacity_gib = 0.00001\n", origin="x"))
    assert "cache.ssd_capacity_gib" in message


def test_real_tiers_memory_ssd_and_sharded_disk(tmp_path: Path) -> None:
    """The real counterpart: L1 in memory, an SSD DiskTier (its own directory and capacity), and
    the erasure-coded sharded store as the last tier; SSD evictions are demoted to it."""
    clock = ManualClock(0.0)
    l1 = MemoryTier("l1", clock=clock, capacity_items=4)
    ssd = DiskTier(tmp_path / "ssd", "ssd", capacity_bytes=2_000, clock=clock, level=1)
    store = ShardedStore(tmp_path / "pool", topology(1, 1, 6, 1), ReedSolomon(4, 2),
                         rule=PlacementRule(count=6, level="rack"))
    hierarchy = CacheHierarchy([l1, ssd, ShardedTier(store, clock=clock)], clock=clock)
    values = {f"k{i}": bytes([i]) * 900 + bytes(range(100)) for i in range(30)}
    for key, value in values.items():
        hierarchy.set(key, value)
    assert all(hierarchy.get(key) == value for key, value in values.items())
    assert ssd.used_bytes <= 2_000
    assert store.keys() == set(values)


def test_the_real_cache_composition_puts_the_ssd_tier_between_l2_and_l3(tmp_path: Path) -> None:
    from backends.cache_runtime import build_real_cache, build_real_cache_from_config
    from novacron.cache.config import CacheConfig

    l2 = MemoryTier("l2", clock=ManualClock(0.0), capacity_items=100)  # stands in for Redis here
    real = build_real_cache(l2=l2, l3_dir=tmp_path / "l3", ssd_dir=tmp_path / "ssd",  # type: ignore[arg-type]
                            ssd_capacity_bytes=1 << 20)
    assert [tier.name for tier in real.hierarchy.tiers] == ["l1", "l2", "ssd", "l3"]
    real.hierarchy.set("k", b"value")
    assert real.ssd is not None and real.ssd.get("k") == b"value"
    with pytest.raises(ValueError, match="needs ssd_dir"):
        build_real_cache_from_config(CacheConfig(ssd_capacity_gib=1.0), l3_dir=tmp_path / "l3b")

"""Faults of real backends: Redis killed mid-test, and an L3 file corrupted on disk."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest

from backends.disk_tier import DiskTier
from novacron.cache.clock import ManualClock
from novacron.cache.events import CacheStatsSampled, CacheTierFailed, CacheTierRecovered
from novacron.cache.hierarchy import CacheHierarchy, HierarchyOptions
from novacron.cache.memory import MemoryTier
from novacron.events import InMemoryEventLog, Recorder


def _hierarchy(tiers: list[Any], clock: ManualClock, log: InMemoryEventLog) -> CacheHierarchy:
    options = HierarchyOptions(breaker_failure_threshold=2, breaker_reset_timeout_s=5.0, stats_interval_s=10.0)
    return CacheHierarchy(tiers, clock=clock, events=Recorder(log, clock.now_s), options=options)


@pytest.mark.redis
def test_redis_killed_then_restarted(private_redis_server: Any, tmp_path: Path) -> None:
    from backends.redis_tier import RedisTier

    clock = ManualClock(0.0)
    log = InMemoryEventLog()
    l1 = MemoryTier("l1", clock=clock, capacity_items=10, default_ttl_s=300.0)
    l2 = RedisTier(url=private_redis_server.url, prefix=f"kill-{uuid.uuid4().hex}:", socket_timeout_s=0.2,
                   connect_timeout_s=0.2)
    l3 = DiskTier(tmp_path / "l3", capacity_bytes=1 << 20, clock=clock)
    cache = _hierarchy([l1, l2, l3], clock, log)
    values = {f"key-{i}": f"value-{i}".encode() for i in range(40)}
    cache.set_many(values)
    assert l2.get_many(list(values)) == values

    private_redis_server.stop()
    # Every key is still served (L1 holds the last 10, L3 all of them); nothing raises.
    for key, value in values.items():
        assert cache.get(key) == value
    cache.set("written-while-down", b"w")
    assert cache.get("written-while-down") == b"w"
    l2_failures = cache.stats.failures[1]
    assert l2_failures >= 2, "Redis failures are counted"
    assert cache.stats.skipped[1] > 0, "the open breaker stops calling Redis"
    assert [e.cache_tier for e in log.of_type(CacheTierFailed)] == ["l2"]
    assert cache.stats.hits[2] > 0, "L3 serves what L1 lost"

    private_redis_server.start()
    clock.advance(6.0)  # past the breaker's reset timeout: the next call is a trial
    cache.set("after-restart", b"r")
    assert l2.get("after-restart") == b"r", "L2 is written again once Redis is back"
    assert [e.cache_tier for e in log.of_type(CacheTierRecovered)] == ["l2"]
    assert log.of_type(CacheTierRecovered)[0].outage_s == pytest.approx(6.0)
    clock.advance(10.0)
    cache.tick()
    l2_sample = [e for e in log.of_type(CacheStatsSampled) if e.cache_tier == "l2"][-1]
    assert l2_sample.cache_failures == l2_failures
    l2.close()


def test_corrupted_l3_file_is_a_counted_miss_and_is_removed(tmp_path: Path) -> None:
    clock = ManualClock(0.0)
    log = InMemoryEventLog()
    l1 = MemoryTier("l1", clock=clock, capacity_items=2)
    l3 = DiskTier(tmp_path / "l3", capacity_bytes=1 << 20, clock=clock)
    cache = _hierarchy([l1, l3], clock, log)
    cache.set("victim", b"precious data " * 20)
    l1.delete("victim")
    path = l3.path_of("victim")
    blob = bytearray(path.read_bytes())
    blob[len(blob) // 2] ^= 0xFF
    path.write_bytes(bytes(blob))

    assert cache.get("victim") is None
    assert l3.corrupt_entries == 1
    assert cache.stats.misses[1] == 1 and cache.stats.misses[-1] == 1
    assert not path.exists(), "a corrupt entry is removed"
    assert cache.get("victim") is None
    assert l3.corrupt_entries == 1, "removed, so not read (or counted) again"


def test_truncated_l3_file_found_at_startup_is_dropped(tmp_path: Path) -> None:
    clock = ManualClock(0.0)
    first = DiskTier(tmp_path / "l3", capacity_bytes=1 << 20, clock=clock)
    first.set("a", b"alpha")
    first.set("b", b"beta")
    path = first.path_of("b")
    path.write_bytes(path.read_bytes()[:10])
    second = DiskTier(tmp_path / "l3", capacity_bytes=1 << 20, clock=clock)
    assert second.get("a") == b"alpha"
    assert second.get("b") is None
    assert second.corrupt_entries == 1
    assert len(second) == 1


def test_disk_tier_keeps_its_size_bound(tmp_path: Path) -> None:
    import numpy as np

    rng = np.random.default_rng(3)
    tier = DiskTier(tmp_path / "l3", capacity_bytes=64 * 1024, clock=ManualClock(0.0))
    for i in range(100):
        tier.set(f"k{i}", rng.bytes(4096))  # incompressible
    assert tier.used_bytes <= 64 * 1024
    on_disk = sum(p.stat().st_size for p in (tmp_path / "l3").glob("*/*"))
    assert on_disk == tier.used_bytes
    assert tier.evictions > 0
    assert tier.get("k99") is not None and tier.get("k0") is None, "LRU keeps the newest"


@pytest.mark.redis
def test_real_cache_measures_latency_per_tier(redis_server: Any, tmp_path: Path) -> None:
    from backends.cache_runtime import build_real_cache

    log = InMemoryEventLog()
    real = build_real_cache(redis_url=redis_server.url, l3_dir=tmp_path / "l3", l1_capacity_items=5)
    real.hierarchy.events = Recorder(log, real.hierarchy.clock.now_s)
    real.l2.prefix = f"rt-{uuid.uuid4().hex}:"
    real.hierarchy.set_many({f"k{i}": b"x" * 100 for i in range(20)})
    for i in [*range(15, 20), *range(15)]:  # the last five written are in L1
        assert real.hierarchy.get(f"k{i}") == b"x" * 100
    real.hierarchy.emit_stats()
    by_tier = {e.cache_tier: e for e in log.of_type(CacheStatsSampled)}
    assert by_tier["l2"].cache_hits == 15 and by_tier["l1"].cache_hits == 5
    assert by_tier["l2"].cache_latency_mean_ms is not None and by_tier["l2"].cache_latency_mean_ms > 0
    real.l2.clear()
    real.close()


def test_disk_tier_reopens_with_its_entries_and_their_order(tmp_path: Path) -> None:
    import os

    clock = ManualClock(0.0)
    first = DiskTier(tmp_path / "l3", capacity_bytes=1 << 20, clock=clock)
    for i in range(5):
        first.set(f"k{i}", f"value {i}".encode(), ttl_s=100.0 if i == 4 else None)
        os.utime(first.path_of(f"k{i}"), ns=(i * 10**9, i * 10**9))
    for verify in (False, True):
        again = DiskTier(tmp_path / "l3", capacity_bytes=1 << 20, clock=clock, verify_on_start=verify)
        assert len(again) == 5 and again.used_bytes == first.used_bytes
        assert again.get("k3") == b"value 3"
    again.capacity_bytes = again.used_bytes  # the next write must evict the oldest file: k0
    again.set("new", b"n")
    assert again.get("k0") is None and again.get("k1") == b"value 1"
    clock.advance(101.0)
    assert again.get("k4") is None, "expiry times survive a restart"

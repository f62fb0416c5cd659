"""One contract for every ``CacheTier``: the memory L1, a real Redis L2 and the disk L3.

Each implementation subclasses ``TierContract`` and says how to build a tier and how to let time
pass (a manual clock for L1 and L3; real time for Redis, whose server enforces TTLs itself).
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import pytest

from backends.disk_tier import DiskTier
from novacron.cache.clock import ManualClock
from novacron.cache.memory import MemoryTier
from novacron.ports import CacheTier

SHORT_TTL_S = 0.2


class TierContract:
    clock: ManualClock

    def make_tier(self) -> CacheTier:
        raise NotImplementedError

    def let_time_pass(self, seconds: float) -> None:
        self.clock.advance(seconds)

    @pytest.fixture
    def tier(self, tmp_path: Path, request: Any) -> CacheTier:
        self.clock = ManualClock(1000.0)
        self.tmp_path = tmp_path
        return self.make_tier()

    def test_missing_key_is_none(self, tier: CacheTier) -> None:
        assert tier.get("absent") is None
        assert not tier.contains("absent")

    def test_set_then_get_returns_the_value(self, tier: CacheTier) -> None:
        tier.set("k", b"value")
        assert tier.get("k") == b"value"
        assert tier.contains("k")

    def test_binary_and_empty_values_round_trip(self, tier: CacheTier) -> None:
        every_byte = bytes(range(256)) * 4
        tier.set("bin", every_byte)
        tier.set("empty", b"")
        assert tier.get("bin") == every_byte
        assert tier.get("empty") == b""

    def test_large_value_round_trips(self, tier: CacheTier) -> None:
        big = bytes(range(251)) * 4000  # ~1 MB, not very compressible
        tier.set("big", big)
        assert tier.get("big") == big

    def test_overwrite_returns_latest(self, tier: CacheTier) -> None:
        tier.set("k", b"one")
        tier.set("k", b"two")
        assert tier.get("k") == b"two"

    def test_delete(self, tier: CacheTier) -> None:
        tier.set("k", b"v")
        assert tier.delete("k") is True
        assert tier.get("k") is None
        assert not tier.contains("k")
        assert tier.delete("k") is False

    def test_ttl_expires_entries(self, tier: CacheTier) -> None:
        tier.set("short", b"v", ttl_s=SHORT_TTL_S)
        tier.set("long", b"w", ttl_s=3600)
        assert tier.get("short") == b"v"
        self.let_time_pass(SHORT_TTL_S * 2)
        assert tier.get("short") is None
        assert not tier.contains("short")
        assert tier.get("long") == b"w"

    def test_purge_expired_drops_expired_entries(self, tier: CacheTier) -> None:
        for i in range(5):
            tier.set(f"e{i}", b"x", ttl_s=SHORT_TTL_S)
        tier.set("keep", b"y", ttl_s=3600)
        self.let_time_pass(SHORT_TTL_S * 2)
        assert tier.purge_expired() >= 0
        assert all(tier.get(f"e{i}") is None for i in range(5))
        assert tier.get("keep") == b"y"

    def test_batches(self, tier: CacheTier) -> None:
        items = {f"b{i}": f"value-{i}".encode() for i in range(50)}
        tier.set_many(items)
        got = tier.get_many([*items, "missing-1", "missing-2"])
        assert got == items
        assert tier.get_many([]) == {}

    def test_delete_many(self, tier: CacheTier) -> None:
        tier.set_many({"a": b"1", "b": b"2", "c": b"3"})
        assert tier.delete_many(["a", "c", "missing"]) == 2
        assert tier.get_many(["a", "b", "c"]) == {"b": b"2"}
        assert tier.delete_many([]) == 0

    def test_set_many_with_ttl(self, tier: CacheTier) -> None:
        tier.set_many({"a": b"1", "b": b"2"}, ttl_s=SHORT_TTL_S)
        self.let_time_pass(SHORT_TTL_S * 2)
        assert tier.get_many(["a", "b"]) == {}


class TestMemoryTierContract(TierContract):
    def make_tier(self) -> CacheTier:
        return MemoryTier("l1", clock=self.clock, capacity_items=1000, default_ttl_s=300.0)


class TestMemoryTierBytesS3FifoContract(TierContract):
    def make_tier(self) -> CacheTier:
        return MemoryTier("l1", clock=self.clock, capacity_bytes=64 << 20, policy="s3fifo")


class TestDiskTierContract(TierContract):
    def make_tier(self) -> CacheTier:
        return DiskTier(self.tmp_path / "l3", capacity_bytes=64 << 20, clock=self.clock)


class RedisContract(TierContract):
    """The contract on a real Redis deployment; each subclass says how to reach it."""

    def connect(self, request: Any, prefix: str) -> Any:
        raise NotImplementedError

    @pytest.fixture
    def tier(self, tmp_path: Path, request: Any) -> Any:
        redis_tier = self.connect(request, f"test-{uuid.uuid4().hex}:")
        yield redis_tier
        redis_tier.clear()
        redis_tier.close()

    def let_time_pass(self, seconds: float) -> None:
        time.sleep(seconds)  # Redis expires keys on its own clock


@pytest.mark.redis
class TestRedisTierContract(RedisContract):
    def connect(self, request: Any, prefix: str) -> Any:
        from backends.redis_tier import RedisTier

        return RedisTier(url=request.getfixturevalue("redis_server").url, prefix=prefix)


@pytest.mark.redis
class TestRedisSentinelTierContract(RedisContract):
    """Through the sentinels to the primary, every write confirmed by a replica (WAIT 1)."""

    def connect(self, request: Any, prefix: str) -> Any:
        from backends.redis_tier import RedisTier, RedisTopology

        group = request.getfixturevalue("redis_sentinel_group")
        topology = RedisTopology(mode="sentinel", addresses=group.sentinel_addresses, service_name=group.service_name)
        return RedisTier(topology=topology, prefix=prefix, wait_replicas=1)


@pytest.mark.redis
class TestRedisClusterTierContract(RedisContract):
    """Across three primaries, every write confirmed by its shard's replica (WAIT 1 per node)."""

    wait_replicas = 1

    def connect(self, request: Any, prefix: str) -> Any:
        from backends.redis_tier import RedisTier, RedisTopology

        group = request.getfixturevalue("redis_cluster_group")
        topology = RedisTopology(mode="cluster", addresses=group.addresses[:2])
        return RedisTier(topology=topology, prefix=prefix, wait_replicas=self.wait_replicas)


class TestRedisClusterNoWaitTierContract(TestRedisClusterTierContract):
    """Without WAIT the writes go through RedisCluster's own pipeline (another code path)."""

    wait_replicas = 0

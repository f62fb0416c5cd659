"""Fixtures for the cache tests: real Redis processes on private ports, stopped afterwards (also
when the test fails or a start fails half-way). The processes are in ``tests/cache/redis_procs.py``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.cache.redis_procs import RedisClusterGroup, RedisSentinelGroup, RedisServer, running, state_dir


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    with running(RedisServer(state_dir())) as server:
        yield server


@pytest.fixture
def private_redis_server() -> Iterator[RedisServer]:
    """A server of the test's own, for tests that kill and restart it."""
    with running(RedisServer(state_dir())) as server:
        yield server


@pytest.fixture(scope="session")
def redis_sentinel_group() -> Iterator[RedisSentinelGroup]:
    """Primary, two replicas, three sentinels, shared by the tests that kill nothing."""
    with running(RedisSentinelGroup(state_dir())) as group:
        yield group


@pytest.fixture(scope="session")
def redis_cluster_group() -> Iterator[RedisClusterGroup]:
    """Three primaries with a replica each, shared by the tests that kill nothing."""
    with running(RedisClusterGroup(state_dir())) as group:
        yield group


@pytest.fixture
def private_sentinel_group() -> Iterator[RedisSentinelGroup]:
    """A Sentinel group of the test's own, for tests that kill its primary."""
    with running(RedisSentinelGroup(state_dir())) as group:
        yield group


@pytest.fixture
def private_cluster_group() -> Iterator[RedisClusterGroup]:
    """A Redis Cluster of the test's own, for tests that kill a primary. Two replicas per
    primary: after one takes over, the other follows it, so that shard can still have writes
    confirmed by a replica (with one, not until the dead primary returned as a replica)."""
    with running(RedisClusterGroup(state_dir(), replicas_per_primary=2)) as group:
        yield group

"""Fixtures for the cache tests: real Redis processes on private ports, stopped afterwards (also
when the test fails or a start fails half-way). The processes are in ``tests/cache/redis_procs.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import pytest

from tests.cache.redis_procs import P, RedisClusterGroup, RedisSentinelGroup, RedisServer, running, state_dir


def _started(make: Callable[[Path], P]) -> Iterator[P]:
    """Processes made in the shared state folder, started, and stopped when the fixture ends."""
    with running(make(state_dir())) as processes:
        yield processes


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    """One server, shared by the tests that kill nothing."""
    yield from _started(RedisServer)


@pytest.fixture
def private_redis_server() -> Iterator[RedisServer]:
    """A server of the test's own, for tests that kill and restart it."""
    yield from _started(RedisServer)


@pytest.fixture(scope="session")
def redis_sentinel_group() -> Iterator[RedisSentinelGroup]:
    """Primary, two replicas, three sentinels, shared by the tests that kill nothing."""
    yield from _started(RedisSentinelGroup)


@pytest.fixture(scope="session")
def redis_cluster_group() -> Iterator[RedisClusterGroup]:
    """Three primaries with a replica each, shared by the tests that kill nothing."""
    yield from _started(RedisClusterGroup)


@pytest.fixture
def private_sentinel_group() -> Iterator[RedisSentinelGroup]:
    """A Sentinel group of the test's own, for tests that kill its primary."""
    yield from _started(RedisSentinelGroup)


@pytest.fixture
def private_cluster_group() -> Iterator[RedisClusterGroup]:
    """A Redis Cluster of the test's own, for tests that kill a primary. Two replicas per
    primary: after one takes over, the other follows it, so that shard can still have writes
    confirmed by a replica (with one, not until the dead primary returned as a replica)."""
    yield from _started(partial(RedisClusterGroup, replicas_per_primary=2))

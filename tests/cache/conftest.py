"""Fixtures for the cache tests: real Redis processes on private ports, stopped afterwards.

The processes themselves are in ``tests/cache/redis_procs.py``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.cache.redis_procs import RedisClusterGroup, RedisSentinelGroup, RedisServer, state_dir


@pytest.fixture(scope="session")
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer(state_dir())
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def private_redis_server() -> Iterator[RedisServer]:
    """A server of the test's own, for tests that kill and restart it."""
    server = RedisServer(state_dir())
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def redis_sentinel_group() -> Iterator[RedisSentinelGroup]:
    """Primary, two replicas, three sentinels, shared by the tests that kill nothing."""
    group = RedisSentinelGroup(state_dir())
    try:
        group.start()
        yield group
    finally:
        group.stop()


@pytest.fixture(scope="session")
def redis_cluster_group() -> Iterator[RedisClusterGroup]:
    """Three primaries with a replica each, shared by the tests that kill nothing."""
    group = RedisClusterGroup(state_dir())
    try:
        group.start()
        yield group
    finally:
        group.stop()


@pytest.fixture
def private_sentinel_group() -> Iterator[RedisSentinelGroup]:
    """A Sentinel group of the test's own, for tests that kill its primary."""
    group = RedisSentinelGroup(state_dir())
    try:
        group.start()
        yield group
    finally:
        group.stop()


@pytest.fixture
def private_cluster_group() -> Iterator[RedisClusterGroup]:
    """A Redis Cluster of the test's own, for tests that kill a primary."""
    group = RedisClusterGroup(state_dir())
    try:
        group.start()
        yield group
    finally:
        group.stop()

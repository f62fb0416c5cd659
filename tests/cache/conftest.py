"""Fixtures for the cache tests: real Redis processes on private ports, stopped afterwards (also
when the test fails or a start fails half-way). The processes are in ``tests/cache/redis_procs.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path
from typing import Any, Literal

import pytest

from tests.cache.redis_procs import P, RedisClusterGroup, RedisSentinelGroup, RedisServer, running, state_dir


def _processes_fixture(make: Callable[[Path], P], *, scope: Literal["session", "function"]) -> Any:
    """A fixture that makes processes in the shared state folder, starts them, and stops them
    when its scope ends."""
    def fixture() -> Iterator[P]:
        with running(make(state_dir())) as processes:
            yield processes

    return pytest.fixture(scope=scope)(fixture)


# Shared by the tests that kill nothing: started once per session.
redis_server = _processes_fixture(RedisServer, scope="session")
redis_sentinel_group = _processes_fixture(RedisSentinelGroup, scope="session")  # a primary, 2 replicas, 3 sentinels
redis_cluster_group = _processes_fixture(RedisClusterGroup, scope="session")  # 3 primaries with a replica each

# A test's own, for tests that kill, stop or restart a process.
private_redis_server = _processes_fixture(RedisServer, scope="function")
private_sentinel_group = _processes_fixture(RedisSentinelGroup, scope="function")
# Two replicas per primary: after one takes over, the other follows it, so that shard can still have
# writes confirmed by a replica (with one, not until the dead primary returned as a replica).
private_cluster_group = _processes_fixture(partial(RedisClusterGroup, replicas_per_primary=2), scope="function")

"""L2 on highly available Redis: Sentinel and Cluster failover under traffic, and the config.

The failover tests run real processes (``tests/cache/redis_procs.py``): a write-through cache
(L1 memory, L2 Redis with ``l2_wait_replicas = 1``, L3 disk) built from a ``[cache]`` section
takes traffic (each step writes a new key and reads back an earlier one), the primary is killed
with SIGKILL, and the traffic goes on until the Redis side has failed over and L2 acknowledges
writes again. They check that no exception reaches the caller and every read returns the value
written, that the failover finished within the configured bound, and that every write L2
acknowledged (before, during and after the failover) is on the new primary. Each write is to a
new key; overwrites L2 misses are the hierarchy's business (``novacron.cache.hierarchy``: it
never serves such a key from L2), tested below against a stopped server.
"""

from __future__ import annotations

import random
import time
import tomllib
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from novacron.cache.config import CacheConfig
from novacron.cache.events import CacheTierFailed, CacheTierRecovered
from novacron.config import ConfigError, parse_section
from novacron.events import InMemoryEventLog, Recorder
from novacron.ports import CacheEntry, TierUnavailable
from tests.cache.redis_procs import RedisClusterGroup, RedisSentinelGroup
from tests.one_line_errors import one_line_error

STEP_PAUSE_S = 0.004
"""between traffic steps: a few hundred operations a second, enough to straddle the failover"""


def _config(text: str) -> CacheConfig:
    return parse_section(CacheConfig, tomllib.loads(text)["cache"], origin="test.toml", prefix="cache.")


class AckRecordingTier:
    """Wraps the L2 tier and records every write it acknowledged (returned without raising)."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name = inner.name
        self.acked: dict[str, bytes] = {}
        self.acked_at_s: dict[str, float] = {}

    def set(self, key: str, value: bytes, ttl_s: float | None = None,
            size_bytes: int | None = None) -> list[CacheEntry]:
        evicted = self.inner.set(key, value, ttl_s, size_bytes)
        self._record({key: value})
        return list(evicted)

    def set_many(self, items: Mapping[str, bytes], ttl_s: float | None = None) -> list[CacheEntry]:
        evicted = self.inner.set_many(items, ttl_s)
        self._record(items)
        return list(evicted)

    def _record(self, items: Mapping[str, bytes]) -> None:
        self.acked.update(items)
        now_s = time.monotonic()
        self.acked_at_s.update(dict.fromkeys(items, now_s))

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


@dataclass
class Traffic:
    """Write-through traffic on a real cache: each step writes a new key and reads an old one."""

    cache: Any
    rng: random.Random = field(default_factory=lambda: random.Random(7))
    written: dict[str, bytes] = field(default_factory=dict)
    slowest_step_s: float = 0.0
    """the longest write-and-read (printed, not asserted: wall-clock on a shared machine)"""

    def step(self) -> None:
        started_s = time.monotonic()
        key = f"k{len(self.written)}"
        value = f"value of {key} ".encode() * 8
        self.cache.set(key, value)
        self.written[key] = value
        probe = self.rng.choice(list(self.written))
        got = self.cache.get(probe)
        assert got == self.written[probe], f"read of {probe} returned {got!r}"
        self.slowest_step_s = max(self.slowest_step_s, time.monotonic() - started_s)
        time.sleep(STEP_PAUSE_S)

    def run_until(self, done: Callable[[], bool], timeout_s: float, what: str, *,
                  last_change_s: Callable[[], float] = lambda: 0.0) -> float:
        """Step until ``done()``; return the seconds it took; fail ``timeout_s`` after the start or
        after ``last_change_s()`` (a later topology change: the deployment failed over again)."""
        started_s = time.monotonic()
        while not done():
            waited_s = time.monotonic() - max(started_s, last_change_s())
            assert waited_s < timeout_s, f"{what} not within {timeout_s:g} s"
            self.step()
        return time.monotonic() - started_s


@dataclass
class Failover:
    """How one deployment fails over: what to kill, when it has failed over, and which writes
    prove that L2 acknowledges writes on the new primary again."""

    kind: str
    kill: Callable[[], Any]
    failed_over: Callable[[], bool]
    bound_s: float
    on_new_primary: Callable[[str], bool] = lambda key: True
    """called once ``failed_over()``: whether a (cache) key now lives on the new primary"""
    last_change_s: Callable[[], float] = lambda: 0.0
    """when (``time.monotonic()``) the primary last changed after the first failover: a loaded
    machine can make Sentinel fail a healthy new primary over again, and then the writes wait for
    that failover to settle (and the primary it left behind to be turned into a replica)"""
    describe: Callable[[], str] = lambda: ""
    """what the deployment did, for the failure message"""


def _l2_config(mode: str, addresses: tuple[str, ...], extra: str = "") -> CacheConfig:
    return _config(f"""[cache]
        l1_capacity_items = 20
        l2_mode = "{mode}"
        l2_addresses = {list(addresses)}
        l2_wait_replicas = 1
        l2_wait_timeout_ms = 200
        {extra}
        """)


def _kill_primary_under_traffic(config: CacheConfig, tmp_path: Path, prepare: Callable[[str], Failover], *,
                                breaker_opens: bool) -> None:
    """Write-through traffic, SIGKILL of a primary, traffic until the deployment has failed over
    and L2 acknowledges writes again, then the checks of the module docstring."""
    from backends.cache_runtime import build_real_cache_from_config, l2_tier_from_config

    prefix = f"ha-{uuid.uuid4().hex}:"
    real = build_real_cache_from_config(config, l3_dir=tmp_path / "l3", l2_prefix=prefix)
    log = InMemoryEventLog()
    real.hierarchy.events = Recorder(log, real.hierarchy.clock.now_s)
    recorder = AckRecordingTier(real.l2)
    real.hierarchy.tiers[1] = recorder
    traffic = Traffic(real.hierarchy)
    for _ in range(100):
        traffic.step()
    assert len(recorder.acked) == 100, "every write acknowledged while the deployment is healthy"

    failover = prepare(prefix)
    failover.kill()
    killed_s = time.monotonic()
    failover_s = traffic.run_until(failover.failed_over, failover.bound_s, f"{failover.kind} failover")
    on_new_primary = failover.on_new_primary
    reconnect_s = failover_s + traffic.run_until(
        lambda: any(t > killed_s and on_new_primary(k) for k, t in recorder.acked_at_s.items()), 15.0,
        f"an L2 write acknowledged by the new primary{failover.describe()}", last_change_s=failover.last_change_s)
    for _ in range(50):
        traffic.step()
    print(f"{failover.kind}: failover {failover_s:.2f} s (bound {failover.bound_s:g} s), the new primary "
          f"acknowledges writes {reconnect_s:.2f} s after the kill; {len(traffic.written)} writes, "
          f"{len(recorder.acked)} acknowledged by L2; slowest write+read {1000 * traffic.slowest_step_s:.0f} ms")

    fresh_l2 = l2_tier_from_config(config, prefix=prefix)
    on_l2 = fresh_l2.get_many(list(recorder.acked))
    lost = sorted(k for k, v in recorder.acked.items() if on_l2.get(k) != v)
    assert not lost, f"{len(lost)} of {len(recorder.acked)} acknowledged L2 writes lost: {lost[:5]}"
    for key, value in traffic.written.items():
        assert real.hierarchy.get(key) == value
    assert real.hierarchy.stats.failures[1] > 0, "L2 failures were counted (and served by L1/L3)"
    if breaker_opens:  # in a cluster the other shards' successes may keep it closed
        assert [e.cache_tier for e in log.of_type(CacheTierFailed)][:1] == ["l2"], "the breaker opened on L2"
        assert [e.cache_tier for e in log.of_type(CacheTierRecovered)][:1] == ["l2"], "and closed again"
    fresh_l2.clear()
    fresh_l2.close()
    real.close()


class PrimaryWatch:
    """The primary's port as the sentinels report it, asked at most every ``every_s`` while the
    traffic runs, with the time of each change."""

    def __init__(self, group: RedisSentinelGroup, every_s: float = 0.5) -> None:
        self.group = group
        self.every_s = every_s
        self.ports = [group.primary_port()]
        self.changed_at_s = [time.monotonic()]
        self._asked_s = self.changed_at_s[0]

    def poll(self) -> int:
        now_s = time.monotonic()
        if now_s - self._asked_s >= self.every_s:
            self._asked_s = now_s
            port = self.group.primary_port()
            if port != self.ports[-1]:
                self.ports.append(port)
                self.changed_at_s.append(now_s)
        return self.ports[-1]

    def last_change_s(self) -> float:
        self.poll()
        return self.changed_at_s[-1] if len(self.ports) > 2 else 0.0

    def describe(self) -> str:
        started_s = self.changed_at_s[0]
        return " (primary ports " + ", ".join(f"{port} at +{at_s - started_s:.1f} s"
                                              for port, at_s in zip(self.ports, self.changed_at_s, strict=True)) + ")"


@pytest.mark.redis
def test_sentinel_failover_under_traffic_loses_no_acknowledged_write(private_sentinel_group: RedisSentinelGroup,
                                                                     tmp_path: Path) -> None:
    group = private_sentinel_group
    config = _l2_config("sentinel", group.sentinel_addresses, f'l2_sentinel_service = "{group.service_name}"')

    def prepare(prefix: str) -> Failover:
        watch = PrimaryWatch(group)
        # A failover whose first attempt succeeds ends within failover-timeout of the primary
        # being declared down (down-after-milliseconds).
        return Failover(kind="sentinel", kill=group.server_on(watch.ports[0]).stop,
                        failed_over=lambda: watch.poll() != watch.ports[0],
                        bound_s=(group.down_after_ms + group.failover_timeout_ms) / 1000,
                        last_change_s=watch.last_change_s, describe=watch.describe)

    _kill_primary_under_traffic(config, tmp_path, prepare, breaker_opens=True)


@pytest.mark.redis
def test_cluster_failover_under_traffic_loses_no_acknowledged_write(private_cluster_group: RedisClusterGroup,
                                                                    tmp_path: Path) -> None:
    from redis.crc import key_slot

    group = private_cluster_group
    config = _l2_config("cluster", group.addresses)

    def prepare(prefix: str) -> Failover:
        victim = group.primary_of(prefix + "k0")
        taken_over: list[tuple[int, int]] = []

        def failed_over() -> bool:
            owner = group.primary_of(prefix + "k0")
            taken_over[:] = [(first, last) for first, last, port in group.slot_ranges() if port == owner.port]
            return owner is not victim

        def on_new_primary(key: str) -> bool:
            slot = key_slot((prefix + key).encode())
            return any(first <= slot <= last for first, last in taken_over)

        return Failover(kind="cluster", kill=victim.stop, failed_over=failed_over, bound_s=group.failover_bound_s,
                        on_new_primary=on_new_primary)

    _kill_primary_under_traffic(config, tmp_path, prepare, breaker_opens=False)


def _sentinel_tier(group: RedisSentinelGroup, **options: Any) -> Any:
    from backends.redis_tier import RedisTier, RedisTopology

    topology = RedisTopology(mode="sentinel", addresses=group.sentinel_addresses, service_name=group.service_name)
    return RedisTier(topology=topology, prefix=f"test-{uuid.uuid4().hex}:", **options)


def _write_is_acknowledged_then_close(tier: Any) -> None:
    """Once as many replicas as the tier waits for confirm, the write goes through again."""
    tier.set("k", b"w")
    assert tier.get("k") == b"w"
    tier.clear()
    tier.close()


@pytest.mark.redis
def test_sentinel_write_that_too_few_replicas_confirm_is_not_acknowledged(
        redis_sentinel_group: RedisSentinelGroup) -> None:
    tier = _sentinel_tier(redis_sentinel_group, wait_replicas=3, wait_timeout_ms=50)
    with pytest.raises(TierUnavailable, match="not acknowledged: WAIT 3 50 confirmed 2"):
        tier.set("k", b"v")
    with pytest.raises(TierUnavailable, match="confirmed 2"):
        tier.set_many({"a": b"1", "b": b"2"})
    tier.wait_replicas = 2
    _write_is_acknowledged_then_close(tier)


@pytest.mark.redis
def test_sentinel_write_no_replica_confirms_is_not_acknowledged(redis_sentinel_group: RedisSentinelGroup) -> None:
    """Replicas stopped (SIGSTOP): the primary applies the write but no replica confirms it, so
    with WAIT it is not acknowledged (without WAIT it would be, and a failover now would lose it).
    The WAIT is longer than the socket timeout: the reply must still be read, not time out."""
    group = redis_sentinel_group
    tier = _sentinel_tier(group, wait_replicas=1, wait_timeout_ms=400, socket_timeout_s=0.25)
    tier.set("warm", b"connection open")
    replicas = [s for s in group.servers if s.port != group.primary_port()]
    for replica in replicas:
        replica.pause()
    try:
        with pytest.raises(TierUnavailable, match="not acknowledged: WAIT 1 400 confirmed 0 replica"):
            tier.set("k", b"v")
    finally:
        for replica in replicas:
            replica.resume()
    _write_is_acknowledged_then_close(tier)


@pytest.mark.redis
def test_cluster_waits_on_the_connection_that_wrote(redis_cluster_group: RedisClusterGroup) -> None:
    """A batch spread over every shard is confirmed by each shard's replica; asking for two
    replicas (each shard has one) fails. RedisCluster's own WAIT would go to every primary on
    other connections and add up their counts (3 here), so two would wrongly pass."""
    from backends.redis_tier import RedisTier, RedisTopology

    topology = RedisTopology(mode="cluster", addresses=redis_cluster_group.addresses[:1])
    tier = RedisTier(topology=topology, prefix=f"wait-{uuid.uuid4().hex}:", wait_replicas=1, wait_timeout_ms=50)
    items = {f"k{i}": f"v{i}".encode() for i in range(30)}
    tier.set_many(items)
    assert len(tier._write_groups([tier._k(k) for k in items])) == 3, "the batch spans the three primaries"
    assert tier.get_many(list(items)) == items
    tier.wait_replicas = 2
    with pytest.raises(TierUnavailable, match="confirmed 1"):
        tier.set_many(items)
    tier.wait_replicas = 1
    assert tier.delete_many(list(items)) == 30
    tier.close()


def test_l2_mode_and_addresses_are_parsed() -> None:
    config = _config("""[cache]
        l2_mode = "sentinel"
        l2_addresses = ["127.0.0.1:26379", "10.0.0.2:26379"]
        l2_sentinel_service = "cache"
        l2_wait_replicas = 1
        """)
    assert (config.l2_mode, config.l2_addresses, config.l2_sentinel_service) == (
        "sentinel", ("127.0.0.1:26379", "10.0.0.2:26379"), "cache")
    assert (config.l2_wait_replicas, config.l2_wait_timeout_ms) == (1, 100)
    assert _config("[cache]\n").l2_mode == "single"


@pytest.mark.parametrize(("body", "message"), [
    ('l2_mode = "replicated"', "test.toml: cache.l2_mode = 'replicated' is not allowed; allowed: one of 'single'"),
    ('l2_addresses = ["a:1", "b:2"]', "has 2 addresses; allowed with l2_mode = 'single': exactly one"),
    ('l2_mode = "cluster"\nl2_addresses = ["localhost"]', "'localhost' is not an address; allowed: 'host:port'"),
    ('l2_mode = "cluster"\nl2_addresses = ["h:70000"]', "'h:70000' is not an address"),
    ("l2_addresses = []", "cache.l2_addresses = [] is empty"),
    ("l2_wait_replicas = -1", "cache.l2_wait_replicas = -1 is out of range"),
])
def test_bad_l2_settings_are_one_line_errors(body: str, message: str) -> None:
    assert message in one_line_error(ConfigError, lambda: _config(f"[cache]\n{body}\n"))


@pytest.mark.parametrize("mode", ["single", "sentinel", "cluster"])
def test_tier_built_while_redis_is_down_comes_up_and_reports_unavailable(mode: str) -> None:
    """Nothing is contacted at construction (RedisCluster's constructor would be), and every call
    on an unreachable deployment is a ``TierUnavailable``, which the hierarchy turns into a miss."""
    pytest.importorskip("redis")
    from backends.redis_tier import RedisTier, RedisTopology

    nobody = ("127.0.0.1:1",)  # port 1 on loopback: connection refused at once
    tier = RedisTier(topology=RedisTopology(mode=mode, addresses=nobody), wait_replicas=1)  # type: ignore[arg-type]
    for call in (lambda: tier.get("k"), lambda: tier.set("k", b"v"), lambda: tier.get_many(["a", "b"]),
                 lambda: tier.delete_many(["a"]), lambda: tier.contains("k")):
        with pytest.raises(TierUnavailable):
            call()
    tier.close()


@pytest.mark.redis
def test_overwrite_skipped_while_l2_is_out_is_not_served_stale(private_redis_server: Any, tmp_path: Path) -> None:
    """k = v1 reaches L2; L2 stops answering (SIGSTOP) and the breaker opens; k = v2 goes to L1
    and L3 only; L2 comes back with v1; once L1 has lost k, a read must still return v2 (the
    hierarchy remembers that L2 missed k's overwrite). A failover (Sentinel or Cluster) leaves
    the same older copy behind."""
    from backends.disk_tier import DiskTier
    from backends.redis_tier import RedisTier
    from novacron.cache.clock import ManualClock
    from novacron.cache.hierarchy import CacheHierarchy, HierarchyOptions
    from novacron.cache.memory import MemoryTier

    clock = ManualClock(0.0)
    l2 = RedisTier(url=private_redis_server.url, prefix=f"stale-{uuid.uuid4().hex}:", socket_timeout_s=0.1)
    tiers = [MemoryTier("l1", clock=clock, capacity_items=2), l2, DiskTier(tmp_path / "l3", clock=clock)]
    cache = CacheHierarchy(tiers, clock=clock, options=HierarchyOptions(breaker_failure_threshold=2,
                                                                        breaker_reset_timeout_s=5.0))
    cache.set("k", b"v1")
    private_redis_server.pause()
    try:
        cache.get("absent-1")
        cache.get("absent-2")  # two L2 timeouts: the breaker opens
        cache.set("k", b"v2")  # L2 skipped
    finally:
        private_redis_server.resume()
    cache.set("other-1", b"x")
    cache.set("other-2", b"y")  # L1 (two items) has lost k
    clock.advance(6.0)  # past the breaker's reset timeout
    assert l2.get("k") == b"v1", "L2 still holds the older copy"
    assert cache.get("k") == b"v2"
    assert l2.get("k") == b"v2", "deleted there, then promoted over"
    l2.clear()
    l2.close()

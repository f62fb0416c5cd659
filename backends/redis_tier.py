"""L2: a ``CacheTier`` on real Redis (redis-py with the hiredis parser): one server, a Sentinel
group or a Redis Cluster.

Theory of operation
-------------------
Each entry is one Redis string under ``prefix + key`` with a millisecond expiry (``SET PX``), so
Redis enforces the TTL itself and ``purge_expired`` has nothing to do. Batches are pipelined
(one round trip for ``get_many``/``set_many``: MGET, and SETs in a non-transactional pipeline).
Sockets have short connect and read timeouts and redis-py's own retries are off, so a dead or
stuck server turns into ``TierUnavailable`` quickly; the hierarchy's circuit breaker then stops
calling until the reset timeout. Eviction happens inside Redis (``maxmemory-policy``), not
observable per key, so ``set`` reports no evictees and L2 does not demote to L3; with
write-through L3 already holds every entry.

Topologies (``RedisTopology.mode``), all through redis-py's own clients:

- ``single``: ``redis.Redis``; the connection pool reconnects by itself when the server returns.
- ``sentinel``: ``redis.sentinel.Sentinel(...).master_for(service)``. Every new connection asks
  the sentinels for the current primary, and a connection that fails (the primary died) or finds
  a demoted primary (READONLY) is dropped, so once the sentinels have promoted a replica the next
  call after the breaker's reset timeout reaches the new primary.
- ``cluster``: ``redis.cluster.RedisCluster``; redis-py maps keys to slots and nodes, splits
  MGET/DEL across slots, follows MOVED and refreshes its slot table when a node fails, so once a
  replica has taken over its dead primary's slots the calls reach it.

What "acknowledged" means (``wait_replicas``)
--------------------------------------------
With ``wait_replicas = 0`` a write is acknowledged when the primary applied it. Redis replicates
asynchronously, so a write acknowledged just before the primary dies can be missing on the
replica that replaces it. With ``wait_replicas = N > 0`` every write (``set``, ``set_many``,
``delete``, ``delete_many``) ends with ``WAIT N wait_timeout_ms`` *in the same pipeline, on the
same connection* (WAIT only counts that connection's writes), and the call returns normally only
if at least N replicas confirmed they hold every write of the batch; otherwise it raises
``TierUnavailable`` and the write counts as not acknowledged (it is not rolled back: it may or may
not survive). In cluster mode the batch is split by the node that owns each key's slot (redis-py's
``get_node_from_key``) and each node's part gets its own pipeline and WAIT, because RedisCluster
sends WAIT to every primary on other connections (where it counts nothing) and adds the counts up.

The guarantee: an acknowledged write survives the SIGKILL of its primary provided the replica
promoted in its place is one of those that confirmed it. That is certain when N equals the
number of replicas (every candidate has it; but then one replica down makes every write fail
until it returns). With fewer, it rests on the promotion picking the most up-to-date replica:
Sentinel ranks replicas by ``replica-priority`` and then replication offset (from INFO it polls
about once a second during a failover); a Redis Cluster delays each replica's election by 1 s per
replica ahead of it in offset, which favours but does not force the freshest. For a shard to
acknowledge writes again after a failover it needs N replicas left, so deploy N + 1 (the
failover tests use one primary, two replicas and N = 1 in both modes). Outside the guarantee:
- the writes live in replica memory (the tests run ``--save '' --appendonly no``): losing a
  primary and the replicas that confirmed a write together loses it (with write-through, L3
  still has it);
- a write WAIT did not confirm raises ``TierUnavailable`` but is not rolled back: it may survive
  or not;
- a primary cut off from its replicas (a partition, not a crash) still applies writes, which
  WAIT then refuses to acknowledge, but a reader still connected to it can see them until the
  sentinels or the cluster demote it (``min-replicas-to-write`` on the servers narrows this);
- an overwrite L2 does not acknowledge (breaker open, failover in progress) leaves L2's older
  copy in place, which the hierarchy serves once L1 has lost the key, until the key is written
  again (the hierarchy does not yet invalidate keys whose L2 write it skipped or saw fail).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import redis
from redis.backoff import NoBackoff
from redis.cluster import ClusterNode, RedisCluster
from redis.retry import Retry
from redis.sentinel import Sentinel

from novacron.cache.config import parse_address
from novacron.ports import CacheEntry, TierUnavailable

L2Mode = Literal["single", "sentinel", "cluster"]

_REDIS_ERRORS = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError,
                 redis.exceptions.ReadOnlyError, redis.exceptions.ClusterError, redis.exceptions.AskError,
                 redis.exceptions.TryAgainError, redis.exceptions.RedisClusterException, OSError)
"""what a dead, demoted, failing-over or resharding Redis raises (BusyLoadingError and redis-py's
MasterNotFoundError are ConnectionErrors, ClusterDownError a ClusterError, MovedError an AskError)"""


@dataclass(frozen=True, slots=True, kw_only=True)
class RedisTopology:
    """Where L2 lives. ``addresses`` are ``host:port``: the server (single), the sentinels
    (sentinel) or some cluster nodes to discover the rest from (cluster)."""

    mode: L2Mode = "single"
    addresses: tuple[str, ...] = ("127.0.0.1:6379",)
    service_name: str = "novacron"
    """the name the sentinels monitor the primary under (``sentinel monitor NAME ...``)"""
    db: int = 0
    """database number (single and sentinel; a cluster has only database 0)"""


def _address(address: str) -> tuple[str, int]:
    parsed = parse_address(address)
    if parsed is None:
        raise ValueError(f"address {address!r} is not host:port with a port in 1..65535")
    return parsed


def connect(topology: RedisTopology, *, socket_timeout_s: float = 0.25, connect_timeout_s: float = 0.25) -> Any:
    """A redis-py client for ``topology``. Retries are off: the hierarchy's breaker decides when to
    call again. Nothing is contacted before the first command."""
    timeouts: dict[str, Any] = {"socket_timeout": socket_timeout_s, "socket_connect_timeout": connect_timeout_s,
                                "retry": Retry(NoBackoff(), 0), "health_check_interval": 0}
    addresses = [_address(a) for a in topology.addresses]
    if topology.mode == "single":
        ((host, port),) = addresses
        return redis.Redis(host=host, port=port, db=topology.db, **timeouts)
    if topology.mode == "sentinel":
        sentinel = Sentinel(addresses, sentinel_kwargs=dict(timeouts), **timeouts)
        return sentinel.master_for(topology.service_name, db=topology.db, **timeouts)
    # One retry: after a failed node redis-py reloads its slot table and tries the new owner.
    cluster_options = {**timeouts, "retry": Retry(NoBackoff(), 1)}
    nodes = [ClusterNode(host, port) for host, port in addresses]
    return _LazyCluster(lambda: RedisCluster(startup_nodes=nodes, require_full_coverage=False, **cluster_options))


class _LazyCluster:
    """A RedisCluster built on first use: its constructor contacts the startup nodes, and a tier
    built while the cluster is down must still come up (and leave the work to L1 and L3)."""

    def __init__(self, build: Callable[[], RedisCluster]) -> None:
        self._build = build
        self._cluster: RedisCluster | None = None

    def __getattr__(self, name: str) -> Any:
        if self._cluster is None:
            self._cluster = self._build()
        return getattr(self._cluster, name)

    def close(self) -> None:
        if self._cluster is not None:
            self._cluster.close()


class RedisTier:
    """A ``CacheTier`` backed by Redis: ``url`` (one server, like ``redis://127.0.0.1:6379/0``) or
    ``topology``; ``wait_replicas`` > 0 makes every acknowledged write a replicated one."""

    def __init__(self, name: str = "l2", *, url: str = "redis://127.0.0.1:6379/0",
                 topology: RedisTopology | None = None, prefix: str = "novacron:",
                 default_ttl_s: float | None = 3600.0, socket_timeout_s: float = 0.25,
                 connect_timeout_s: float = 0.25, wait_replicas: int = 0, wait_timeout_ms: int = 100,
                 client: Any = None) -> None:
        self.name = name
        self.prefix = prefix
        self.default_ttl_s = default_ttl_s
        self.wait_replicas = wait_replicas
        self.wait_timeout_ms = wait_timeout_ms
        self.topology = topology or RedisTopology()
        self.client: Any
        # A write blocks in WAIT for up to wait_timeout_ms: the reply may take that much longer.
        read_timeout_s = socket_timeout_s + (wait_timeout_ms / 1000 if wait_replicas else 0.0)
        if client is not None:
            self.client = client
        elif topology is not None:
            self.client = connect(topology, socket_timeout_s=read_timeout_s, connect_timeout_s=connect_timeout_s)
        else:
            self.client = redis.Redis.from_url(url, socket_timeout=read_timeout_s,
                                               socket_connect_timeout=connect_timeout_s,
                                               retry=Retry(NoBackoff(), 0), health_check_interval=0)
        self.cluster = self.topology.mode == "cluster"

    def _k(self, key: str) -> str:
        return self.prefix + key

    def _px(self, ttl_s: float | None) -> int | None:
        ttl = self.default_ttl_s if ttl_s is None else ttl_s
        return None if ttl is None else max(1, math.ceil(ttl * 1000))

    def _unavailable(self, exc: Exception) -> TierUnavailable:
        return TierUnavailable(f"{self.name}: {type(exc).__name__}: {exc}")

    # -- writes, acknowledged per the module docstring ------------------------------------------
    def _write(self, keys: Sequence[str], queue: Callable[[Any, list[str]], None]) -> list[Any]:
        """Queue the writes for ``keys`` (Redis key names) into one pipeline per connection that
        must see them, end each with WAIT when ``wait_replicas`` asks for it, and return the
        replies of the writes."""
        try:
            replies: list[Any] = []
            for client, group in self._write_groups(keys):
                with client.pipeline(transaction=False) as pipe:
                    queue(pipe, group)
                    if self.wait_replicas:
                        pipe.wait(self.wait_replicas, self.wait_timeout_ms)
                    got = pipe.execute()
                if self.wait_replicas:
                    self._check_confirmed(int(got.pop()), len(group))
                replies.extend(got)
            return replies
        except _REDIS_ERRORS as exc:
            if self.cluster and self.wait_replicas:
                self._refresh_slots()
            raise self._unavailable(exc) from exc

    def _write_groups(self, keys: Sequence[str]) -> list[tuple[Any, list[str]]]:
        if not (self.cluster and self.wait_replicas):
            return [(self.client, list(keys))]  # RedisCluster's own pipeline routes by slot
        by_node: dict[str, tuple[ClusterNode, list[str]]] = {}
        for key in keys:
            node = self.client.get_node_from_key(key)
            by_node.setdefault(node.name, (node, []))[1].append(key)
        return [(self.client.get_redis_connection(node), group) for node, group in by_node.values()]

    def _check_confirmed(self, confirmed: int, writes: int) -> None:
        if confirmed < self.wait_replicas:
            raise TierUnavailable(f"{self.name}: {writes} write(s) not acknowledged: WAIT {self.wait_replicas} "
                                  f"{self.wait_timeout_ms} confirmed {confirmed} replica(s)")

    def _refresh_slots(self) -> None:
        """The per-node pipelines bypass RedisCluster's MOVED/failure handling, so after a failed
        write ask redis-py to reload the slot table (it may not have changed yet: harmless)."""
        with contextlib.suppress(*_REDIS_ERRORS):
            self.client.nodes_manager.initialize()

    def set(self, key: str, value: bytes, ttl_s: float | None = None,
            size_bytes: int | None = None) -> list[CacheEntry]:
        px = self._px(ttl_s)
        self._write([self._k(key)], lambda pipe, group: pipe.set(group[0], value, px=px))
        return []

    def set_many(self, items: Mapping[str, bytes], ttl_s: float | None = None) -> list[CacheEntry]:
        if not items:
            return []
        px = self._px(ttl_s)
        values = {self._k(k): v for k, v in items.items()}

        def queue(pipe: Any, group: list[str]) -> None:
            for name in group:
                pipe.set(name, values[name], px=px)

        self._write(list(values), queue)
        return []

    def delete(self, key: str) -> bool:
        return self.delete_many([key]) == 1

    def delete_many(self, keys: Sequence[str]) -> int:
        if not keys:
            return 0

        def queue(pipe: Any, group: list[str]) -> None:
            for name in group:
                pipe.delete(name)  # one DEL per key: a multi-key DEL cannot span cluster slots

        return sum(int(n) for n in self._write([self._k(k) for k in dict.fromkeys(keys)], queue))

    # -- reads ----------------------------------------------------------------------------------
    def get(self, key: str) -> bytes | None:
        try:
            value = self.client.get(self._k(key))
        except _REDIS_ERRORS as exc:
            raise self._unavailable(exc) from exc
        return value if value is None else bytes(value)

    def contains(self, key: str) -> bool:
        try:
            return bool(self.client.exists(self._k(key)))
        except _REDIS_ERRORS as exc:
            raise self._unavailable(exc) from exc

    def get_many(self, keys: Sequence[str]) -> dict[str, bytes]:
        if not keys:
            return {}
        names = [self._k(k) for k in keys]
        try:
            values = self.client.mget_nonatomic(names) if self.cluster else self.client.mget(names)
        except _REDIS_ERRORS as exc:
            raise self._unavailable(exc) from exc
        return {k: bytes(v) for k, v in zip(keys, values, strict=True) if v is not None}

    def purge_expired(self) -> int:
        return 0

    def clear(self) -> int:
        """Delete every key under this tier's prefix (tests and ``cache-eval`` use it)."""
        try:
            keys = [bytes(k).decode() for k in self.client.scan_iter(match=self.prefix + "*", count=1000)]
        except _REDIS_ERRORS as exc:
            raise self._unavailable(exc) from exc
        return self.delete_many([k.removeprefix(self.prefix) for k in keys])

    def close(self) -> None:
        self.client.close()
        sentinels = getattr(self.client.connection_pool, "sentinel_manager", None) if not self.cluster else None
        if sentinels is not None:  # the connections to the sentinels themselves
            sentinels.close()

"""L2: a ``CacheTier`` on a real Redis server (redis-py with the hiredis parser).

Theory of operation
-------------------
Each entry is one Redis string under ``prefix + key`` with a millisecond expiry (``SET PX``), so
Redis enforces the TTL itself and ``purge_expired`` has nothing to do. Batches are pipelined
(one round trip for ``get_many``/``set_many``: MGET, and SETs in a non-transactional pipeline).
Sockets have short connect and read timeouts so a dead or stuck server turns into
``TierUnavailable`` quickly; the hierarchy's circuit breaker then stops calling until the
reset timeout. redis-py's connection pool reconnects by itself on the next call, which is how
the tier recovers when Redis returns. Eviction happens inside Redis (``maxmemory-policy``), not
observable per key, so ``set`` reports no evictees and L2 does not demote to L3; with
write-through L3 already holds every entry.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import redis

from novacron.ports import CacheEntry, TierUnavailable

_REDIS_ERRORS = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, redis.exceptions.BusyLoadingError,
                 OSError)


class RedisTier:
    """A ``CacheTier`` backed by Redis. ``url`` like ``redis://127.0.0.1:6379/0``."""

    def __init__(self, name: str = "l2", *, url: str = "redis://127.0.0.1:6379/0", prefix: str = "novacron:",
                 default_ttl_s: float | None = 3600.0, socket_timeout_s: float = 0.25,
                 connect_timeout_s: float = 0.25, client: redis.Redis | None = None) -> None:
        self.name = name
        self.prefix = prefix
        self.default_ttl_s = default_ttl_s
        self.client = client or redis.Redis.from_url(
            url, socket_timeout=socket_timeout_s, socket_connect_timeout=connect_timeout_s,
            retry_on_timeout=False, health_check_interval=0)

    def _k(self, key: str) -> str:
        return self.prefix + key

    def _px(self, ttl_s: float | None) -> int | None:
        ttl = self.default_ttl_s if ttl_s is None else ttl_s
        return None if ttl is None else max(1, math.ceil(ttl * 1000))

    def get(self, key: str) -> bytes | None:
        try:
            value = self.client.get(self._k(key))
        except _REDIS_ERRORS as exc:
            raise TierUnavailable(f"{self.name}: {exc}") from exc
        return value if value is None else bytes(value)  # type: ignore[arg-type]

    def set(self, key: str, value: bytes, ttl_s: float | None = None,
            size_bytes: int | None = None) -> list[CacheEntry]:
        try:
            self.client.set(self._k(key), value, px=self._px(ttl_s))
        except _REDIS_ERRORS as exc:
            raise TierUnavailable(f"{self.name}: {exc}") from exc
        return []

    def delete(self, key: str) -> bool:
        try:
            return bool(self.client.delete(self._k(key)))
        except _REDIS_ERRORS as exc:
            raise TierUnavailable(f"{self.name}: {exc}") from exc

    def contains(self, key: str) -> bool:
        try:
            return bool(self.client.exists(self._k(key)))
        except _REDIS_ERRORS as exc:
            raise TierUnavailable(f"{self.name}: {exc}") from exc

    def get_many(self, keys: Sequence[str]) -> dict[str, bytes]:
        if not keys:
            return {}
        try:
            values = self.client.mget([self._k(k) for k in keys])
        except _REDIS_ERRORS as exc:
            raise TierUnavailable(f"{self.name}: {exc}") from exc
        return {k: bytes(v) for k, v in zip(keys, values, strict=True) if v is not None}  # type: ignore[arg-type]

    def set_many(self, items: Mapping[str, bytes], ttl_s: float | None = None) -> list[CacheEntry]:
        if not items:
            return []
        px = self._px(ttl_s)
        try:
            with self.client.pipeline(transaction=False) as pipe:
                for key, value in items.items():
                    pipe.set(self._k(key), value, px=px)
                pipe.execute()
        except _REDIS_ERRORS as exc:
            raise TierUnavailable(f"{self.name}: {exc}") from exc
        return []

    def delete_many(self, keys: Sequence[str]) -> int:
        if not keys:
            return 0
        try:
            return int(self.client.delete(*[self._k(k) for k in keys]))
        except _REDIS_ERRORS as exc:
            raise TierUnavailable(f"{self.name}: {exc}") from exc

    def purge_expired(self) -> int:
        return 0

    def clear(self) -> int:
        """Delete every key under this tier's prefix (tests and ``cache-eval`` use it)."""
        try:
            keys = list(self.client.scan_iter(match=self.prefix + "*", count=1000))
            return int(self.client.delete(*keys)) if keys else 0
        except _REDIS_ERRORS as exc:
            raise TierUnavailable(f"{self.name}: {exc}") from exc

    def close(self) -> None:
        self.client.close()

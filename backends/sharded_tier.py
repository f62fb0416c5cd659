"""L3 on the sharded store: a ``CacheTier`` whose entries are erasure-coded over node directories.

Theory of operation
-------------------
The cache hierarchy's last tier, ``backends.disk_tier.DiskTier``, keeps one copy on one disk: a
dead disk is a cold L3. ``ShardedTier`` puts the same contract (``novacron.ports.CacheTier``) on
``backends.sharded_store.ShardedStore``: each entry is RS(k, m)-coded (or replicated) over
directories standing for nodes, so L3 keeps serving with up to m nodes gone, and
``ShardedStore.repair`` re-protects it. Expiry times ride in every shard's header (wall-clock
seconds from the injected clock, like ``DiskTier``); a read of an expired entry deletes it and
misses. The store has no size bound of its own (it is sized by its disks), so ``set`` evicts
nothing; ``purge_expired`` walks the store, so it belongs to the cleanup cycle, not the read path.
An I/O error of the store is ``TierUnavailable`` (the hierarchy's breaker takes it from there).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from backends.clock import WallClock
from backends.sharded_store import ShardedStore
from novacron.cache.memory import OneKeyAtATimeBatches
from novacron.ports import CacheEntry, Clock, TierUnavailable

T = TypeVar("T")


class ShardedTier(OneKeyAtATimeBatches):
    def __init__(self, store: ShardedStore, name: str = "l3", *, default_ttl_s: float | None = None,
                 clock: Clock | None = None) -> None:
        self.name = name
        self.store = store
        self.default_ttl_s = default_ttl_s
        self.clock = clock or WallClock()

    @staticmethod
    def _guard(action: Callable[[], T]) -> T:
        try:
            return action()
        except OSError as exc:
            raise TierUnavailable(f"sharded store: {exc}") from exc

    def get(self, key: str) -> bytes | None:
        entry = self._guard(lambda: self.store.get_entry(key))
        if entry is None:
            return None
        value, expires_at_s = entry
        if expires_at_s is not None and expires_at_s <= self.clock.now_s():
            self._guard(lambda: self.store.delete(key))
            return None
        return value

    def set(self, key: str, value: bytes, ttl_s: float | None = None,
            size_bytes: int | None = None) -> list[CacheEntry]:
        ttl_s = self.default_ttl_s if ttl_s is None else ttl_s
        expires_at_s = None if ttl_s is None else self.clock.now_s() + ttl_s
        self._guard(lambda: self.store.put(key, value, expires_at_s=expires_at_s))
        return []

    def delete(self, key: str) -> bool:
        return self._guard(lambda: self.store.delete(key))

    def contains(self, key: str) -> bool:
        return self.get(key) is not None

    def purge_expired(self) -> int:
        now_s = self.clock.now_s()
        purged = 0
        for key in self._guard(self.store.keys):
            entry = self._guard(lambda key=key: self.store.get_entry(key))  # type: ignore[misc]
            if entry is not None and entry[1] is not None and entry[1] <= now_s:
                purged += self.delete(key)
        return purged

    def clear(self) -> int:
        return self._guard(self.store.clear)

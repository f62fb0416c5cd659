"""The in-memory tier (L1 for real, and every tier of the simulated hierarchy).

Theory of operation
-------------------
Entries live in a dict ``key -> (value, size_bytes, expires_at_s)``; an eviction policy from
``policies.py`` keeps the order in which keys leave. The tier is bounded either by items
(``capacity_items``: each entry weighs 1) or by bytes (``capacity_bytes``: each entry weighs its
size). TTL is enforced lazily on ``get`` and eagerly by ``purge_expired`` (the hierarchy's cleanup
cycle), which pops the expiry schedule (``expiry.py``, shared with the disk tier) instead of
scanning, so the cycle costs O(expired log n) even for simulated tiers of millions of entries.
Time comes from the injected clock only.

``set`` returns the live entries evicted to make room, so the hierarchy can demote them a tier
down; entries that had expired are dropped, never demoted. ``resize`` is how adaptive L1 sizing
changes the capacity.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

from novacron.cache.expiry import ExpirySchedule
from novacron.cache.policies import EvictionPolicy, make_policy
from novacron.ports import CacheEntry, Clock

_Entry = tuple[bytes, int, float | None]

# The L1 settings of the NovaCron Phase 1 analysis (DESIGN.md, Targets).
L1_CAPACITY_ITEMS = 10_000
L1_TTL_S = 300.0
CLEANUP_INTERVAL_S = 30.0


class MemoryTier:
    """A bounded in-memory ``CacheTier`` with TTL and a pluggable eviction policy."""

    def __init__(self, name: str, *, clock: Clock, capacity_items: int | None = None,
                 capacity_bytes: int | None = None, default_ttl_s: float | None = None,
                 policy: str = "lru", tlru_half_life_s: float = 300.0) -> None:
        if (capacity_items is None) == (capacity_bytes is None):
            raise ValueError(f"{name}: give exactly one of capacity_items and capacity_bytes")
        capacity = capacity_items if capacity_items is not None else capacity_bytes
        assert capacity is not None
        if capacity < 1:
            raise ValueError(f"{name}: capacity must be >= 1, got {capacity}")
        if default_ttl_s is not None and default_ttl_s <= 0:
            raise ValueError(f"{name}: default_ttl_s must be > 0 or None, got {default_ttl_s}")
        self.name = name
        self.capacity = capacity
        self.bounded_by_bytes = capacity_bytes is not None
        self.default_ttl_s = default_ttl_s
        self._now_s = clock.now_s
        self._entries: dict[str, _Entry] = {}
        self._used = 0
        self._policy: EvictionPolicy = make_policy(policy, capacity, half_life_s=tlru_half_life_s)
        # Bound methods, looked up once: get and set are the hot path of every cache request.
        self._accessed = self._policy.accessed
        self._inserted = self._policy.inserted
        self._victim = self._policy.victim
        self._expiry = ExpirySchedule(self._expiry_of, lambda: ((k, e[2]) for k, e in self._entries.items()))
        self.evictions = 0
        self.expirations = 0

    @property
    def policy_name(self) -> str:
        return self._policy.name

    @property
    def used(self) -> int:
        """Occupied capacity in the tier's unit (items or bytes)."""
        return self._used

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: str) -> bytes | None:
        entry = self._entries.get(key)
        if entry is None:
            return None
        now_s = self._now_s()
        expires_at_s = entry[2]
        if expires_at_s is not None and expires_at_s <= now_s:
            self._drop(key, entry)
            self.expirations += 1
            return None
        self._accessed(key, now_s)
        return entry[0]

    def contains(self, key: str) -> bool:
        entry = self._entries.get(key)
        return entry is not None and (entry[2] is None or entry[2] > self._now_s())

    def set(self, key: str, value: bytes, ttl_s: float | None = None,
            size_bytes: int | None = None) -> list[CacheEntry]:
        if self.bounded_by_bytes:
            return self._set_weighted(key, value, ttl_s, len(value) if size_bytes is None else size_bytes)
        # Item-bounded fast path (L1): at most one eviction, handled inline.
        now_s = self._now_s()
        ttl = self.default_ttl_s if ttl_s is None else ttl_s
        expires_at_s = None if ttl is None else now_s + ttl
        entries = self._entries
        entry = (value, len(value) if size_bytes is None else size_bytes, expires_at_s)
        if key in entries:
            entries[key] = entry
            self._accessed(key, now_s)
            evicted: list[CacheEntry] = []
        elif self._used < self.capacity:
            entries[key] = entry
            self._used += 1
            self._inserted(key, 1, now_s)
            evicted = []
        else:
            victim = self._victim()
            old_value, old_size, old_expires_at_s = entries.pop(victim)  # type: ignore[call-overload]
            entries[key] = entry
            self._inserted(key, 1, now_s)
            if old_expires_at_s is not None and old_expires_at_s <= now_s:
                self.expirations += 1
                evicted = []
            else:
                self.evictions += 1
                evicted = [CacheEntry(victim, old_value, old_size)]  # type: ignore[arg-type]
        if expires_at_s is not None:
            self._expiry.add(key, expires_at_s)
        return evicted

    def _set_weighted(self, key: str, value: bytes, ttl_s: float | None, size: int) -> list[CacheEntry]:
        now_s = self._now_s()
        ttl = self.default_ttl_s if ttl_s is None else ttl_s
        expires_at_s = None if ttl is None else now_s + ttl
        old = self._entries.get(key)
        if old is not None:
            if old[1] == size:
                self._entries[key] = (value, size, expires_at_s)
                self._accessed(key, now_s)
                self._expiry.add(key, expires_at_s)
                return []
            self._drop(key, old)
        if size > self.capacity:
            return []
        evicted = self._make_room(size, now_s) if self._used + size > self.capacity else []
        self._entries[key] = (value, size, expires_at_s)
        self._used += size
        self._inserted(key, size, now_s)
        self._expiry.add(key, expires_at_s)
        return evicted

    def _make_room(self, weight: int, now_s: float) -> list[CacheEntry]:
        evicted: list[CacheEntry] = []
        entries, victim = self._entries, self._policy.victim
        while self._used + weight > self.capacity:
            key = victim()
            value, size, expires_at_s = entries.pop(key)  # type: ignore[call-overload]
            self._used -= size if self.bounded_by_bytes else 1
            if expires_at_s is not None and expires_at_s <= now_s:
                self.expirations += 1
                continue
            self.evictions += 1
            evicted.append(CacheEntry(key, value, size))  # type: ignore[arg-type]
        return evicted

    def _expiry_of(self, key: str) -> float | None:
        entry = self._entries.get(key)
        return None if entry is None else entry[2]

    def _drop(self, key: str, entry: _Entry) -> None:
        del self._entries[key]
        self._used -= entry[1] if self.bounded_by_bytes else 1
        self._policy.removed(key)

    def delete(self, key: str) -> bool:
        entry = self._entries.get(key)
        if entry is None:
            return False
        self._drop(key, entry)
        return True

    def get_many(self, keys: Sequence[str]) -> dict[str, bytes]:
        return gather_hits(self.get, keys)

    def set_many(self, items: Mapping[str, bytes], ttl_s: float | None = None) -> list[CacheEntry]:
        evicted: list[CacheEntry] = []
        for key, value in items.items():
            evicted.extend(self.set(key, value, ttl_s))
        # A key evicted early in the batch and written again later is back: its old value is obsolete.
        return [e for e in evicted if e.key not in self._entries]

    def delete_many(self, keys: Sequence[str]) -> int:
        return sum(self.delete(key) for key in keys)

    def purge_expired(self) -> int:
        expired = self._expiry.due(self._now_s())
        for key in expired:
            self._drop(key, self._entries[key])
        self.expirations += len(expired)
        return len(expired)

    def resize(self, capacity: int) -> list[CacheEntry]:
        """Change the capacity (adaptive sizing); returns the entries evicted to fit."""
        if capacity < 1:
            raise ValueError(f"{self.name}: capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self._policy.resize(capacity)
        return self._make_room(0, self._now_s())

    def keys(self) -> list[str]:
        return list(self._entries)

    def clear(self) -> int:
        """Drop every entry (the hierarchy's way back after losing track of a tier); returns how many."""
        keys = list(self._entries)
        for key in keys:
            self._drop(key, self._entries[key])
        return len(keys)


def default_l1(clock: Clock, policy: str = "lru") -> MemoryTier:
    """L1 as the analysis sizes it: 10,000 items, a 5-minute TTL."""
    return MemoryTier("l1", clock=clock, capacity_items=L1_CAPACITY_ITEMS, default_ttl_s=L1_TTL_S, policy=policy)


def gather_hits(get: Callable[[str], bytes | None], keys: Sequence[str]) -> dict[str, bytes]:
    """``get_many`` for tiers without a native batch read: each key looked up once, misses left out."""
    found = {}
    for key in keys:
        value = get(key)
        if value is not None:
            found[key] = value
    return found


class _SingleKeyTier(Protocol):
    def get(self, key: str) -> bytes | None: ...
    def set(self, key: str, value: bytes, ttl_s: float | None = None) -> list[CacheEntry]: ...
    def delete(self, key: str) -> bool: ...


class OneKeyAtATimeBatches:
    """The batch half of the tier port for tiers without native batch operations (the disk tier,
    the sharded store): every key once, through the tier's own ``get``/``set``/``delete``."""

    __slots__ = ()

    def get_many(self: _SingleKeyTier, keys: Sequence[str]) -> dict[str, bytes]:
        return gather_hits(self.get, keys)

    def set_many(self: _SingleKeyTier, items: Mapping[str, bytes], ttl_s: float | None = None) -> list[CacheEntry]:
        for key, value in items.items():
            self.set(key, value, ttl_s)
        return []

    def delete_many(self: _SingleKeyTier, keys: Sequence[str]) -> int:
        return sum(self.delete(key) for key in keys)

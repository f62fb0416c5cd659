"""A tier wrapper that fails on demand, for tests of the hierarchy's error paths (in memory).

``mode`` is what the wrapped tier does with the next calls: ``up`` answers; ``down`` raises
``TierUnavailable`` without doing anything (a dead Redis); ``unacked`` applies a write or delete
and then raises (a Redis timeout after the server applied it, or a ``WAIT`` too few replicas
confirmed), and raises on reads.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from novacron.ports import CacheEntry, TierUnavailable

Mode = Literal["up", "down", "unacked"]


class FlakyTier:
    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name = inner.name
        self.mode: Mode = "up"

    def _read(self) -> None:
        if self.mode != "up":
            raise TierUnavailable(f"{self.name} is {self.mode}")

    def _before_write(self) -> None:
        if self.mode == "down":
            raise TierUnavailable(f"{self.name} is down")

    def _after_write(self) -> None:
        if self.mode == "unacked":
            raise TierUnavailable(f"{self.name} applied the write but did not acknowledge it")

    def get(self, key: str) -> bytes | None:
        self._read()
        return self.inner.get(key)  # type: ignore[no-any-return]

    def contains(self, key: str) -> bool:
        self._read()
        return bool(self.inner.contains(key))

    def get_many(self, keys: Sequence[str]) -> dict[str, bytes]:
        self._read()
        return dict(self.inner.get_many(keys))

    def set(self, key: str, value: bytes, ttl_s: float | None = None,
            size_bytes: int | None = None) -> list[CacheEntry]:
        self._before_write()
        evicted = list(self.inner.set(key, value, ttl_s, size_bytes))
        self._after_write()
        return evicted

    def set_many(self, items: Mapping[str, bytes], ttl_s: float | None = None) -> list[CacheEntry]:
        self._before_write()
        evicted = list(self.inner.set_many(items, ttl_s))
        self._after_write()
        return evicted

    def delete(self, key: str) -> bool:
        self._before_write()
        existed = bool(self.inner.delete(key))
        self._after_write()
        return existed

    def delete_many(self, keys: Sequence[str]) -> int:
        self._before_write()
        count = int(self.inner.delete_many(keys))
        self._after_write()
        return count

    def purge_expired(self) -> int:
        self._read()
        return int(self.inner.purge_expired())

    def clear(self) -> int:
        self._before_write()
        count = int(self.inner.clear())
        self._after_write()
        return count

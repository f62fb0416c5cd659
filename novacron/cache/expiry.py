"""When a tier's entries expire: one min-heap schedule shared by the memory and disk tiers.

Theory of operation
-------------------
A tier ``add``s each entry's expiry time when it writes the entry. Rewriting or deleting a key
leaves the old record in the heap; ``due`` pops every record whose time has come and keeps only
those that still match the tier's current expiry of the key (``expiry_of``), so the cleanup
cycle costs O(expired log n) instead of a scan of the tier. When stale records pile up (more
than twice the live ones plus ``SLACK``), the heap is rebuilt from the tier's live entries
(``live``): amortised O(1) per write.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable, Iterable

SLACK = 1024


class ExpirySchedule:
    def __init__(self, expiry_of: Callable[[str], float | None],
                 live: Callable[[], Iterable[tuple[str, float | None]]]) -> None:
        self._expiry_of = expiry_of
        self._live = live
        self._heap: list[tuple[float, str]] = []
        self._limit = SLACK

    def __len__(self) -> int:
        return len(self._heap)

    def add(self, key: str, expires_at_s: float | None) -> None:
        if expires_at_s is None:
            return
        heapq.heappush(self._heap, (expires_at_s, key))
        if len(self._heap) > self._limit:
            self.compact()

    def due(self, now_s: float) -> list[str]:
        """The keys whose current expiry time is ``now_s`` or earlier (popped from the schedule)."""
        heap, expiry_of = self._heap, self._expiry_of
        expired: dict[str, None] = {}  # a key rewritten with the same expiry time has two records
        while heap and heap[0][0] <= now_s:
            expires_at_s, key = heapq.heappop(heap)
            if expiry_of(key) == expires_at_s:
                expired[key] = None
        if len(heap) > self._limit:
            self.compact()
        return list(expired)

    def compact(self) -> None:
        """Drop the records of keys rewritten or gone since they were added."""
        self._heap = [(expires_at_s, key) for key, expires_at_s in self._live() if expires_at_s is not None]
        heapq.heapify(self._heap)
        self._limit = 2 * len(self._heap) + SLACK

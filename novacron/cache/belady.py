"""Belady's MIN: the offline optimal hit count for a cache of same-size objects.

Theory of operation
-------------------
Belady (IBM Systems Journal, 1966): on a miss with a full cache, evict the object whose next
request lies furthest in the future; no policy can hit more often with the same capacity when
objects have equal size. With next-access positions from one backward pass, the cache is a
max-heap keyed by next access (lazy deletion of outdated heap records), so a trace of n requests
costs O(n log c). An object never requested again is not worth caching at all, so it is not
admitted (that is also what libCacheSim's Belady does). For variable sizes the optimum is
NP-hard; callers convert a byte capacity to items with the mean object size (an approximation).
"""

from __future__ import annotations

import heapq
from collections.abc import Sequence

from novacron.cache.traces import next_access_positions


def belady_hits(keys: Sequence[int], capacity_items: int, following: Sequence[int] | None = None) -> int:
    """Hits of the optimal offline policy on ``keys`` with room for ``capacity_items`` objects.

    A missed object whose next request comes later than that of every cached object bypasses
    the cache (admitting it could only cost a hit).
    """
    if capacity_items < 1:
        return 0
    nxt = following if following is not None else next_access_positions(list(keys))
    cached: dict[int, int] = {}
    heap: list[tuple[int, int]] = []
    hits = 0
    for i, key in enumerate(keys):
        upcoming = nxt[i]
        if key in cached:
            hits += 1
        elif upcoming >= 0 and len(cached) >= capacity_items:
            while cached.get(heap[0][1]) != -heap[0][0]:
                heapq.heappop(heap)
            if upcoming > -heap[0][0]:
                continue
            del cached[heapq.heappop(heap)[1]]
        if upcoming < 0:
            cached.pop(key, None)
            continue
        cached[key] = upcoming
        heapq.heappush(heap, (-upcoming, key))
        if len(heap) > 4 * capacity_items + 1024:
            heap = [(-n, k) for k, n in cached.items()]
            heapq.heapify(heap)
    return hits

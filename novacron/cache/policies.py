"""Eviction policies: pure bookkeeping that names the next victim, with no values and no clock.

Theory of operation
-------------------
A policy tracks the keys a tier holds and their sizes in the tier's capacity unit (1 per item
for an item-bounded tier, bytes for a byte-bounded one). The tier tells it what happened —
``inserted``, ``accessed``, ``removed`` (delete or expiry) — and asks ``victim()`` when it needs
room; ``victim`` forgets the key it returns. Time (``now_s``) is passed in by the tier, which
reads the injected clock.

* ``LruPolicy``: least recently used, an ordered dict in access order.
* ``TlruPolicy``: the analysis' "time-weighted LRU". NovaCron defines its score as

      score(k, now) = w(f_k) * 2 ** (-(now - t_k) / H),   w(f) = 1 + log2(min(f, F_CAP))

  where ``t_k`` is the key's last access, ``f_k`` its access count (capped at ``F_CAP`` = 8)
  and ``H`` the half-life: recency decays by age, frequent keys decay from a higher start
  (a key used 8 times outlives a one-hit key by 2H). The lowest score is evicted. Because
  every score decays at the same rate, ordering by ``log2 w(f_k) + t_k / H`` is the same at all
  times, so that priority lives in a heap, refreshed lazily at eviction time: an access is O(1),
  an eviction O(log n) amortised.
  Close in spirit to LRFU (Lee et al., IEEE ToC 2001).
* ``S3FifoPolicy``: S3-FIFO (Yang et al., "FIFO queues are all you need for cache eviction",
  SOSP 2023): a small FIFO (10 % of capacity) for new keys, a main FIFO (90 %) and a ghost FIFO
  of recently evicted keys (90 % of capacity); 2-bit frequency counters (capped at 3). A key
  leaving the small FIFO moves to main if it was hit at least twice, else to the ghost; a key
  found in the ghost on insertion goes straight to main; main is a CLOCK that reinserts keys
  with non-zero frequency (decrementing it). Details that affect miss ratios (move-to-main
  threshold 2, inserting to main while the small FIFO is full before the first eviction) follow
  libCacheSim's reference implementation so the cross-check test can compare miss ratios.
* ``wtinylfu`` (``novacron.cache.tinylfu``) and ``predictive`` (``novacron.cache.predictive``,
  a reuse hazard learned from the access history) live in their own modules.
"""

from __future__ import annotations

import heapq
import math
from collections import OrderedDict
from collections.abc import Hashable, Iterable
from typing import Protocol

from novacron.cache.predictive import PredictivePolicy
from novacron.cache.tinylfu import WTinyLfuPolicy

POLICY_NAMES = ("lru", "tlru", "s3fifo", "wtinylfu", "predictive")


class EvictionPolicy(Protocol):
    name: str

    def inserted(self, key: Hashable, size: int, now_s: float) -> None: ...

    def accessed(self, key: Hashable, now_s: float) -> None: ...

    def removed(self, key: Hashable) -> None: ...

    def victim(self) -> Hashable:
        """The key to evict next; the policy forgets it. Raises ``KeyError`` when empty."""
        ...

    def resize(self, capacity: int) -> None: ...


class LruPolicy:
    name = "lru"

    def __init__(self, capacity: int = 0) -> None:
        self._order: OrderedDict[Hashable, None] = OrderedDict()

    def inserted(self, key: Hashable, size: int, now_s: float) -> None:
        self._order[key] = None

    def accessed(self, key: Hashable, now_s: float) -> None:
        self._order.move_to_end(key)

    def removed(self, key: Hashable) -> None:
        self._order.pop(key, None)

    def victim(self) -> Hashable:
        return self._order.popitem(last=False)[0]

    def resize(self, capacity: int) -> None:
        pass

    def __len__(self) -> int:
        return len(self._order)


class TlruPolicy:
    """Time-weighted LRU (see the module docstring for the score).

    An access only updates the key's count and time; the heap keeps the priority the key had when
    it was pushed, which can only be lower than its current one (priorities grow with time and
    count). ``victim`` pops the smallest entry and, if it is out of date, pushes it back with its
    current priority; the first up-to-date entry popped is the true minimum. Accesses are O(1).
    """

    name = "tlru"
    F_CAP = 8

    def __init__(self, capacity: int = 0, half_life_s: float = 300.0) -> None:
        if half_life_s <= 0:
            raise ValueError(f"half_life_s must be > 0, got {half_life_s}")
        self.half_life_s = half_life_s
        self._state: dict[Hashable, list[float]] = {}  # key -> [count, last access s, generation]
        self._heap: list[tuple[float, float, Hashable]] = []
        self._generation = 0.0

    def _priority(self, count: float, last_s: float) -> float:
        return math.log2(1.0 + math.log2(min(count, self.F_CAP))) + last_s / self.half_life_s

    def score(self, key: Hashable, now_s: float) -> float:
        """The key's current score (for tests and explanations; eviction uses the priority)."""
        count, last_s, _ = self._state[key]
        return float(2.0 ** (self._priority(count, last_s) - now_s / self.half_life_s))

    def inserted(self, key: Hashable, size: int, now_s: float) -> None:
        self._generation += 1
        self._state[key] = [1, now_s, self._generation]
        heapq.heappush(self._heap, (self._priority(1, now_s), self._generation, key))
        if len(self._heap) > 2 * len(self._state) + 1024:
            self._heap = [(self._priority(c, t), g, k) for k, (c, t, g) in self._state.items()]
            heapq.heapify(self._heap)

    def accessed(self, key: Hashable, now_s: float) -> None:
        state = self._state[key]
        state[0] += 1
        state[1] = now_s

    def removed(self, key: Hashable) -> None:
        self._state.pop(key, None)

    def victim(self) -> Hashable:
        heap, states = self._heap, self._state
        while True:
            priority, generation, key = heapq.heappop(heap)
            state = states.get(key)
            if state is None or state[2] != generation:
                continue  # removed, or re-inserted since: a stale record
            current = self._priority(state[0], state[1])
            if current > priority:
                heapq.heappush(heap, (current, generation, key))
                continue
            del states[key]
            return key

    def resize(self, capacity: int) -> None:
        pass

    def __len__(self) -> int:
        return len(self._state)


class S3FifoPolicy:
    """S3-FIFO (SOSP 2023); sizes are in the tier's unit (items or bytes)."""

    name = "s3fifo"
    SMALL_RATIO = 0.1
    GHOST_RATIO = 0.9
    MOVE_TO_MAIN_THRESHOLD = 2
    FREQ_CAP = 3

    def __init__(self, capacity: int) -> None:
        self._small: OrderedDict[Hashable, int] = OrderedDict()
        self._main: OrderedDict[Hashable, int] = OrderedDict()
        self._ghost: OrderedDict[Hashable, int] = OrderedDict()
        self._freq: dict[Hashable, int] = {}
        self._small_used = self._main_used = self._ghost_used = 0
        self._has_evicted = False
        self.resize(capacity)

    def resize(self, capacity: int) -> None:
        self.capacity = max(1, capacity)
        self.small_capacity = max(1, int(self.capacity * self.SMALL_RATIO))
        self.main_capacity = self.capacity - self.small_capacity
        self.ghost_capacity = int(self.capacity * self.GHOST_RATIO)

    def inserted(self, key: Hashable, size: int, now_s: float) -> None:
        self._freq[key] = 0
        if self._ghost_remove(key) or size > self.small_capacity or (
                not self._has_evicted and self._small_used >= self.small_capacity):
            self._main[key] = size
            self._main_used += size
        else:
            self._small[key] = size
            self._small_used += size

    def accessed(self, key: Hashable, now_s: float) -> None:
        freq = self._freq[key]
        if freq < self.FREQ_CAP:
            self._freq[key] = freq + 1

    def removed(self, key: Hashable) -> None:
        if key in self._small:
            self._small_used -= self._small.pop(key)
        elif key in self._main:
            self._main_used -= self._main.pop(key)
        else:
            return
        del self._freq[key]

    def victim(self) -> Hashable:
        self._has_evicted = True
        if self._main_used <= self.main_capacity and self._small:
            key = self._evict_small()
            if key is not None:
                return key
        return self._evict_main()

    def _evict_small(self) -> Hashable | None:
        while self._small:
            key, size = self._small.popitem(last=False)
            self._small_used -= size
            if self._freq[key] >= self.MOVE_TO_MAIN_THRESHOLD:
                self._main[key] = size
                self._main_used += size
                continue
            del self._freq[key]
            self._ghost_add(key, size)
            return key
        return None

    def _evict_main(self) -> Hashable:
        main = self._main
        while True:
            key, size = main.popitem(last=False)
            freq = self._freq[key]
            if freq >= 1:
                main[key] = size
                self._freq[key] = freq - 1
                continue
            self._main_used -= size
            del self._freq[key]
            return key

    def _ghost_add(self, key: Hashable, size: int) -> None:
        self._ghost[key] = size
        self._ghost_used += size
        while self._ghost_used > self.ghost_capacity and self._ghost:
            self._ghost_used -= self._ghost.popitem(last=False)[1]

    def _ghost_remove(self, key: Hashable) -> bool:
        size = self._ghost.pop(key, None)
        if size is None:
            return False
        self._ghost_used -= size
        return True

    def __len__(self) -> int:
        return len(self._freq)


def make_policy(name: str, capacity: int, *, half_life_s: float = 300.0) -> EvictionPolicy:
    if name == "lru":
        return LruPolicy(capacity)
    if name == "tlru":
        return TlruPolicy(capacity, half_life_s=half_life_s)
    if name == "s3fifo":
        return S3FifoPolicy(capacity)
    if name == "wtinylfu":
        return WTinyLfuPolicy(capacity)
    if name == "predictive":
        return PredictivePolicy(capacity)
    raise ValueError(f"unknown eviction policy {name!r}; allowed: {', '.join(POLICY_NAMES)}")


def replay_hits(policy_name: str, keys: Iterable[Hashable], capacity: int, *, half_life_s: float = 300.0) -> int:
    """Hits of ``policy_name`` alone on a key sequence (unit-sized items, time = request position).

    The policy decides every eviction; a victim the cache does not hold is a policy bug and raises.
    Belady's MIN (``belady.belady_hits``) on the same keys and capacity is the upper bound.
    """
    policy = make_policy(policy_name, capacity, half_life_s=half_life_s)
    cached: set[Hashable] = set()
    hits = 0
    for t, key in enumerate(keys):
        if key in cached:
            hits += 1
            policy.accessed(key, float(t))
            continue
        while len(cached) >= capacity:
            victim = policy.victim()
            if victim not in cached:
                raise AssertionError(f"{policy_name} evicted {victim!r}, which it does not hold")
            cached.remove(victim)
        cached.add(key)
        policy.inserted(key, 1, float(t))
    return hits

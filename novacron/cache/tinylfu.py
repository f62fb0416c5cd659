"""W-TinyLFU: a small LRU window in front of an SLRU main cache, guarded by a frequency sketch.

Theory of operation
-------------------
Einziger, Friedman and Manes, "TinyLFU: A Highly Efficient Cache Admission Policy", ACM
Transactions on Storage 13(4), 2017, section 4 (W-TinyLFU), with the sizes Caffeine uses by
default: the window is 1 % of the capacity and plain LRU; the main cache (99 %) is a segmented
LRU whose probation segment is 20 % of it and protected segment 80 %. A key enters the window;
when the window overflows its LRU key is a *candidate* for main. If main has room the candidate
joins probation; otherwise (the tier asks for a victim when it is full, before it inserts) it
duels main's victim (probation's LRU key, or protected's when probation is empty) and the one
with the lower estimated frequency is evicted (ties evict the candidate, as the paper does,
which keeps one-hit wonders out). A hit in probation promotes the
key to protected; protected's overflow is demoted to probation's MRU end.

Frequencies come from a count-min sketch (Cormode and Muthukrishnan 2005) of ``DEPTH`` rows of
4-bit saturating counters (cap 15) over a width of the next power of two above the capacity.
Every request (hit or miss) increments it. After ``SAMPLE_FACTOR`` x capacity increments every
counter is halved (the paper's *reset*), so the sketch forgets old popularity. The paper's
doorkeeper Bloom filter is left out, as Caffeine leaves it out; it only saves sketch space.

Hashes must not depend on ``PYTHONHASHSEED`` (a run must repeat bit for bit), so keys are
hashed by ``stable_hash``: an integer key is itself, any other key goes through BLAKE2b of its
``repr``; each row then mixes it with its own odd multiplier (multiply-shift hashing).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from collections.abc import Hashable

WINDOW_RATIO = 0.01
PROTECTED_RATIO = 0.8
DEPTH = 4
COUNTER_CAP = 15
SAMPLE_FACTOR = 10
_ROW_MULTIPLIERS = (0x9E3779B97F4A7C15, 0xC2B2AE3D27D4EB4F, 0x165667B19E3779F9, 0xD6E8FEB86659FD93)
_MASK64 = (1 << 64) - 1


def stable_hash(key: Hashable) -> int:
    """A 64-bit hash of ``key`` that is the same in every process (unlike ``hash`` of a str)."""
    if isinstance(key, int):
        return key & _MASK64
    return int.from_bytes(hashlib.blake2b(repr(key).encode(), digest_size=8).digest(), "little")


class FrequencySketch:
    """Count-min sketch of 4-bit counters with periodic halving (TinyLFU's reset)."""

    def __init__(self, capacity: int) -> None:
        self.width = 1 << max(4, (4 * max(1, capacity) - 1).bit_length())
        self.shift = 64 - (self.width.bit_length() - 1)
        self.rows = [[0] * self.width for _ in range(DEPTH)]
        self.sample_size = SAMPLE_FACTOR * max(1, capacity)
        self.additions = 0

    def _slots(self, key: Hashable) -> list[int]:
        h = stable_hash(key)
        return [((h * m) & _MASK64) >> self.shift for m in _ROW_MULTIPLIERS[:DEPTH]]

    def estimate(self, key: Hashable) -> int:
        return min(row[slot] for row, slot in zip(self.rows, self._slots(key), strict=True))

    def increment(self, key: Hashable) -> None:
        for row, slot in zip(self.rows, self._slots(key), strict=True):
            if row[slot] < COUNTER_CAP:
                row[slot] += 1
        self.additions += 1
        if self.additions >= self.sample_size:
            self.rows = [[count >> 1 for count in row] for row in self.rows]
            self.additions //= 2


class WTinyLfuPolicy:
    """W-TinyLFU (TOS 2017) as an eviction policy; sizes are counted in the tier's unit."""

    name = "wtinylfu"

    def __init__(self, capacity: int) -> None:
        self._window: OrderedDict[Hashable, int] = OrderedDict()
        self._probation: OrderedDict[Hashable, int] = OrderedDict()
        self._protected: OrderedDict[Hashable, int] = OrderedDict()
        self._window_used = self._probation_used = self._protected_used = 0
        self.resize(capacity)
        self.sketch = FrequencySketch(self.capacity)

    def resize(self, capacity: int) -> None:
        self.capacity = max(1, capacity)
        self.window_capacity = max(1, int(self.capacity * WINDOW_RATIO))
        self.main_capacity = max(0, self.capacity - self.window_capacity)
        self.protected_capacity = int(self.main_capacity * PROTECTED_RATIO)

    def inserted(self, key: Hashable, size: int, now_s: float) -> None:
        self.sketch.increment(key)
        self._window[key] = size
        self._window_used += size
        while self._window_used > self.window_capacity and len(self._window) > 1:  # main not full yet
            candidate, candidate_size = next(iter(self._window.items()))
            if self._probation_used + self._protected_used + candidate_size > self.main_capacity:
                break
            del self._window[candidate]
            self._window_used -= candidate_size
            self._probation[candidate] = candidate_size
            self._probation_used += candidate_size

    def accessed(self, key: Hashable, now_s: float) -> None:
        self.sketch.increment(key)
        if key in self._window:
            self._window.move_to_end(key)
        elif key in self._protected:
            self._protected.move_to_end(key)
        elif key in self._probation:
            size = self._probation.pop(key)
            self._probation_used -= size
            self._protected[key] = size
            self._protected_used += size
            self._demote_protected_overflow()

    def _demote_protected_overflow(self) -> None:
        while self._protected_used > self.protected_capacity and len(self._protected) > 1:
            key, size = self._protected.popitem(last=False)
            self._protected_used -= size
            self._probation[key] = size
            self._probation_used += size

    def removed(self, key: Hashable) -> None:
        for segment, attr in ((self._window, "_window_used"), (self._probation, "_probation_used"),
                              (self._protected, "_protected_used")):
            if key in segment:
                setattr(self, attr, getattr(self, attr) - segment.pop(key))
                return

    def victim(self) -> Hashable:
        # The tier asks for room when it is full, just before it inserts a key into the window:
        # the window's LRU key is about to be pushed out, so it duels main's victim now.
        if self._window and self._window_used >= self.window_capacity and (self._probation or self._protected):
            candidate, size = self._window.popitem(last=False)
            self._window_used -= size
            return self._duel(candidate, size)
        if self._probation or self._protected:
            return self._evict_main()
        key, size = self._window.popitem(last=False)
        self._window_used -= size
        return key

    def _duel(self, candidate: Hashable, size: int) -> Hashable:
        """The window's candidate against main's victim: the less frequent one is evicted."""
        if not (self._probation or self._protected):
            return candidate
        incumbent = next(iter(self._probation if self._probation else self._protected))
        if self.sketch.estimate(candidate) <= self.sketch.estimate(incumbent):
            return candidate
        evicted = self._evict_main()
        self._probation[candidate] = size
        self._probation_used += size
        return evicted

    def _evict_main(self) -> Hashable:
        if self._probation:
            key, size = self._probation.popitem(last=False)
            self._probation_used -= size
        else:
            key, size = self._protected.popitem(last=False)
            self._protected_used -= size
        return key

    def __len__(self) -> int:
        return len(self._window) + len(self._probation) + len(self._protected)

"""Streaming reductions: metrics folded one event at a time, with the numbers the whole-log
computation gave.

Theory of operation
-------------------
A run's metrics are folds over its log (``novacron.metrics.MetricsFold``): each capability's fold
keeps only what its metrics need -- counts, running maxima, per-host and per-VM state, the short
series of cluster-wide samples -- so memory follows the live cluster, not the log's length. Three
kinds of statistic need more than O(1) state, and each keeps the exact number:

- Percentiles over values whose count is small (per placement, per migration, per cluster sample:
  tens of thousands in a month) keep the values (``InMemoryColumn``, 8 bytes each) and call
  ``numpy.percentile`` at the end, exactly as before.
- Percentiles over the per-host samples (a thousand hosts every five minutes: 8.6 million values in
  a month) go to a ``ValueColumn`` the runtime provides; the run directory's spills its values to a
  file (``novacron.app.eventstore.SpilledColumn``) and selects the order statistics in a few
  passes of bounded memory (``select_percentile``), with the arithmetic of ``numpy.percentile``'s
  linear method, so the number is bit for bit the one ``numpy.percentile`` gives over the column.
- Sums over the per-host samples (energy) are exactly rounded (``ExactSum``): the result does not
  depend on the order or the chunking of the terms, so it is the same for any row-group size.
  (Before streaming, ``numpy.sum``'s pairwise order was used; the two differ at most in the last
  bits of the last digit.)
"""

from __future__ import annotations

import heapq
import math
from array import array
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any, Protocol, TypeVar

import numpy as np
import numpy.typing as npt

from novacron.events import Event

E = TypeVar("E", bound=Event)
FloatArray = npt.NDArray[np.float64]
Metrics = dict[str, float]
Handler = Callable[[Any], None]
RADIX_BITS = 16
GATHER_LIMIT = 1 << 20
"""Candidates at most this many are gathered and partitioned in memory (8 MiB)."""


class ValueColumn(Protocol):
    """A column of float values appended one at a time; its percentiles at the end."""

    def append(self, value: float) -> None: ...

    def __len__(self) -> int: ...

    def percentile(self, q: float) -> float:
        """``numpy.percentile(values, q)`` (linear method), bit for bit."""
        ...


ColumnFactory = Callable[[str], ValueColumn]
"""Makes the column for a named statistic (e.g. ``cluster.host_cpu_pct``)."""


class InMemoryColumn:
    """The values themselves, 8 bytes each: for counts that stay small."""

    def __init__(self, _name: str = "") -> None:
        self._values = array("d")

    def append(self, value: float) -> None:
        self._values.append(value)

    def __len__(self) -> int:
        return len(self._values)

    def values(self) -> FloatArray:
        return np.frombuffer(self._values, dtype=np.float64) if self._values else np.empty(0)

    def percentile(self, q: float) -> float:
        return float(np.percentile(self.values(), q))


def _sortable_keys(values: FloatArray) -> npt.NDArray[np.uint64]:
    """Unsigned keys in the order of the floats (negative floats reversed, then the positives)."""
    bits = values.view(np.uint64)
    negative = (bits >> np.uint64(63)).astype(bool)
    return np.where(negative, ~bits, bits | np.uint64(1 << 63))


def _key_value(key: int) -> float:
    bits = key & ~(1 << 63) if key >> 63 else ~key & (2**64 - 1)
    return float(np.array([bits], dtype=np.uint64).view(np.float64)[0])


def _select(chunks: Callable[[], Iterator[FloatArray]], rank: int) -> float:
    """The value of 0-based ``rank`` in sorted order: narrow a key prefix 16 bits per pass over
    the chunks until few enough candidates remain to gather (or the key is whole)."""
    prefix, known_bits = 0, 0
    while True:
        shift = 64 - known_bits - RADIX_BITS
        counts = np.zeros(1 << RADIX_BITS, dtype=np.int64)
        for chunk in chunks():
            keys = _sortable_keys(chunk)
            if known_bits:
                keys = keys[(keys >> np.uint64(64 - known_bits)) == np.uint64(prefix)]
            counts += np.bincount(((keys >> np.uint64(shift)) & np.uint64((1 << RADIX_BITS) - 1)).astype(np.int64),
                                  minlength=1 << RADIX_BITS)
        below = np.cumsum(counts)
        bucket = int(np.searchsorted(below, rank, side="right"))
        rank -= int(below[bucket - 1]) if bucket else 0
        prefix, known_bits = (prefix << RADIX_BITS) | bucket, known_bits + RADIX_BITS
        if known_bits == 64:
            return _key_value(prefix)
        if counts[bucket] <= GATHER_LIMIT:
            return _gather(chunks, prefix, known_bits, rank)


def _gather(chunks: Callable[[], Iterator[FloatArray]], prefix: int, known_bits: int, rank: int) -> float:
    found = [c[(_sortable_keys(c) >> np.uint64(64 - known_bits)) == np.uint64(prefix)] for c in chunks()]
    candidates = np.concatenate(found)
    return float(np.partition(candidates, rank)[rank])


def select_percentile(chunks: Callable[[], Iterator[FloatArray]], count: int, q: float) -> float:
    """``numpy.percentile(column, q)`` (linear method) of a column read as chunks, any number of
    times, in bounded memory; ``count`` is the column's length (NaN if a value is NaN)."""
    if count == 0:
        raise ValueError("percentile of an empty column")
    if any(bool(np.isnan(c).any()) for c in chunks()):
        return math.nan
    virtual = (count - 1) * np.true_divide(q, 100)
    previous = np.floor(virtual)
    low_rank = int(previous)
    if low_rank >= count - 1:
        return _select(chunks, count - 1)
    low, high = np.float64(_select(chunks, low_rank)), np.float64(_select(chunks, low_rank + 1))
    return float(_lerp(low, high, virtual - previous))


def _lerp(a: np.float64, b: np.float64, t: np.float64) -> np.float64:
    """numpy's linear interpolation of quantiles (``numpy.lib._function_base_impl._lerp``)."""
    diff = b - a
    if t >= 0.5:
        return np.float64(b - diff * (1 - t))
    return np.float64(a + diff * t)


class ExactSum:
    """The exactly rounded sum of float terms added in chunks (``math.fsum``'s answer, streamed).

    Each term is m x 2**e with an integer 53-bit m (``numpy.frexp``); m is split in two halves
    below 2**27 summed per exponent with ``bincount`` (exact: fewer than 2**26 terms per chunk keep
    every partial sum an integer below 2**53), then carried in Python integers. The total is one
    integer over a power of two, divided once with correct rounding.
    """

    CHUNK = 1 << 20

    def __init__(self) -> None:
        self._by_exponent: dict[int, int] = {}
        self._special = 0.0  # inf / nan terms, summed as floats (they decide the result anyway)

    def add(self, terms: Iterable[float] | FloatArray) -> None:
        values = np.asarray(terms, dtype=np.float64)
        for start in range(0, values.size, self.CHUNK):
            self._add_chunk(values[start:start + self.CHUNK])

    def _add_chunk(self, values: FloatArray) -> None:
        finite = np.isfinite(values)
        if not finite.all():
            self._special += float(np.sum(values[~finite]))
            values = values[finite]
        mantissa, exponent = np.frexp(values)
        whole = (mantissa * 2.0**53).astype(np.int64)
        low_exponent = int(exponent.min()) if exponent.size else 0
        index = (exponent - low_exponent).astype(np.int64)
        high_half = np.bincount(index, weights=(whole >> 26).astype(np.float64))
        low_half = np.bincount(index, weights=(whole & ((1 << 26) - 1)).astype(np.float64))
        for offset in np.flatnonzero((high_half != 0) | (low_half != 0)):
            e = low_exponent + int(offset) - 53
            self._by_exponent[e] = self._by_exponent.get(e, 0) + (int(high_half[offset]) << 26) + int(low_half[offset])

    def total(self) -> float:
        if self._special != 0.0 or math.isnan(self._special):
            return self._special
        if not self._by_exponent:
            return 0.0
        base = min(self._by_exponent)
        numerator = sum(m << (e - base) for e, m in self._by_exponent.items())
        return numerator / (1 << -base) if base < 0 else float(numerator << base)


def running_max(current: float | None, value: float) -> float:
    """``max`` over a sequence, one value at a time (the first of equal values stays, as in ``max``)."""
    return value if current is None or value > current else current


def running_min(current: float | None, value: float) -> float:
    return value if current is None or value < current else current


class Fold(Protocol):
    """Metrics folded one event at a time: ``handlers`` names the event types it takes."""

    def handlers(self) -> Mapping[type[Event], Handler]: ...

    def result(self) -> Metrics: ...


class EventsByType:
    """A run's events grouped by class, in log order within each class."""

    def __init__(self, events: Iterable[Event]) -> None:
        self._groups: dict[type[Event], list[Event]] = defaultdict(list)
        self.count = 0
        for ev in events:
            self._groups[type(ev)].append(ev)
            self.count += 1

    def of(self, cls: type[E]) -> list[E]:
        return self._groups.get(cls, [])  # type: ignore[return-value]

    def types(self) -> list[type[Event]]:
        return list(self._groups)


def fold_events(fold: Fold, events: EventsByType) -> Metrics:
    """Feed ``fold`` the events of its types in log order (merged by sequence number)."""
    handlers = fold.handlers()
    for ev in heapq.merge(*(events.of(cls) for cls in handlers), key=lambda e: e.seq):
        handlers[type(ev)](ev)
    return fold.result()

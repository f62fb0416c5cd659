"""The cache hierarchy: L1 -> L2 -> L3 over the ``CacheTier`` port, pure and clock-driven.

Theory of operation
-------------------
Reads go down the tiers until one hits (read-through); the value is then promoted into every
tier above the hit, and whatever those tiers evict to make room is demoted one tier down (an
L1 evictee goes to L2, an L2 evictee to L3, an L3 evictee is dropped). Writes are either
write-through (every tier, top to bottom) or write-back (L1 only; the key is marked dirty, its
stale copies below are invalidated, and it is written through the lower tiers when L1 evicts
it or on ``flush``). ``delete`` removes a key everywhere.

TTLs are per tier and count from when an entry entered that tier (like expire-after-write in
Caffeine): a promoted entry gets the upper tier's default TTL. What the hierarchy returns is
always the latest value written (write-back invalidates the stale copies below), never a
deleted one; a model-based test checks this against a dict.

A tier that raises ``TierUnavailable`` counts a failure and the request carries on as a miss;
each tier has a ``CircuitBreaker`` so a dead tier (Redis down) is skipped without waiting on
timeouts, and retried after the breaker's reset timeout. So while L2 is down the hierarchy
keeps serving from L1 and L3.

Writes and deletes a tier missed
--------------------------------
A tier that is skipped (breaker open) or raises on a write or delete keeps whatever it held:
after an overwrite, the older value; after a delete or a write-back invalidation, the deleted
one; and a write that raised may or may not have been applied (a Redis timeout, a ``WAIT`` that
too few replicas confirmed). Once the tiers above have lost the key, a read would fall through
to that copy. So the hierarchy remembers, per tier, the keys whose write or delete (of any
kind: ``set``, promotion, demotion, write-back, ``flush``, ``delete``, invalidation) that tier
did not acknowledge (``unsynced``). Such a key is never read from that tier: a read that reaches
it deletes it there first and counts a miss (the value found below is then promoted into it as
usual); a later acknowledged write or delete of the key in that tier forgets it; ``reconcile``
(run by every cleanup cycle) deletes all of them once the tier answers; and what the tier
evicts of them is dropped, not demoted (it may be the older value). The set is bounded by
``max_unsynced_keys`` per tier: past it the hierarchy stops tracking that tier
(``CacheTierTrackingOverflowed``) and uses it for nothing, reads or writes, until it has cleared
it (``clear()``, ``CacheTierCleared``) at the first moment its breaker lets a call through; a
tier without ``clear`` then stays unused.

The guarantee, for one hierarchy with every tier starting empty or in step with it: ``get``,
``get_many`` and ``contains`` never return a value older than the latest ``set`` of the key, nor
one a later ``delete`` removed, whatever tiers fail, skip or time out, under either write mode.
It rests on what the tiers do, and holds only as far as they:
- keep what they acknowledged: a Redis failover that loses an acknowledged write or delete
  brings the older value back unnoticed (``backends.redis_tier``: ``wait_replicas``);
- apply a write that raised, if ever, before they acknowledge a later call on the same key: a
  stalled server that applies a timed-out write after the reconciling delete (on another
  connection) leaves that value behind (only conditional, versioned writes in the tier would
  close this);
- are not written by anyone else: several hierarchies sharing one Redis prefix do not see each
  other's writes (each one's L1 is private anyway).
Losing data is allowed (it is a cache): a key whose writes every tier missed is a miss.

``tick()`` is the cleanup cycle, called by the runtime: every ``cleanup_interval_s`` it purges
expired entries from each tier and (optionally) resizes L1; every ``stats_interval_s`` it emits
one ``CacheStatsSampled`` event per tier plus one for the whole hierarchy. Time comes from the
injected clock; the core never reads a real one.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from enum import Enum
from functools import partial
from typing import Literal, ParamSpec, Protocol, TypeVar, runtime_checkable

from novacron.cache.adaptive import AdaptiveSizing
from novacron.cache.breaker import BreakerState, CircuitBreaker
from novacron.cache.events import (
    CacheStatsSampled,
    CacheTierCleared,
    CacheTierFailed,
    CacheTierRecovered,
    CacheTierResized,
    CacheTierTrackingOverflowed,
)
from novacron.cache.memory import CLEANUP_INTERVAL_S
from novacron.cache.stats import CacheStats
from novacron.ports import CacheEntry, CacheTier, Clock, EventSink, TierUnavailable

T = TypeVar("T")
P = ParamSpec("P")
MAX_UNSYNCED_KEYS = 100_000
"""per tier; at about 100 bytes a key, 10 MB, and a minute-long L2 outage at 1,000 writes a second"""
RECONCILE_BATCH_KEYS = 1000
"""keys per ``delete_many`` when ``reconcile`` catches a tier up (one pipelined round trip on Redis)"""


class Unanswered(Enum):
    """What a tier call returns when the tier did not answer (breaker open, or it raised)."""

    TIER = "the tier did not answer"


UNANSWERED = Unanswered.TIER


@runtime_checkable
class ResizableTier(Protocol):
    """A tier whose capacity adaptive sizing may change (``MemoryTier`` and its simulated models)."""

    name: str
    capacity: int

    def resize(self, capacity: int) -> list[CacheEntry]: ...


@runtime_checkable
class ClearableTier(Protocol):
    """A tier that can drop every entry it holds: the way back once the hierarchy has lost track
    of which keys it missed the writes of (``max_unsynced_keys`` overflowed)."""

    name: str

    def clear(self) -> int: ...


WriteMode = Literal["through", "back"]


@dataclass(frozen=True, slots=True, kw_only=True)
class HierarchyOptions:
    write_mode: WriteMode = "through"
    demote_evictions: bool = True
    cleanup_interval_s: float = CLEANUP_INTERVAL_S
    stats_interval_s: float = 60.0
    measure_latency: bool = False
    """time each tier call with the clock (the real runtime); the simulator records its own"""
    breaker_failure_threshold: int = 3
    breaker_reset_timeout_s: float = 2.0
    adaptive_l1: AdaptiveSizing | None = None
    max_unsynced_keys: int = MAX_UNSYNCED_KEYS
    """per tier: keys whose write or delete it missed that are remembered; past it the tier is cleared"""


class CacheHierarchy:
    def __init__(self, tiers: Sequence[CacheTier], *, clock: Clock, events: EventSink | None = None,
                 options: HierarchyOptions | None = None, source: str = "cache") -> None:
        if not tiers:
            raise ValueError("a cache hierarchy needs at least one tier")
        self.tiers = list(tiers)
        self.options = options or HierarchyOptions()
        self.clock = clock
        self.events = events
        self.source = source
        self.stats = CacheStats([t.name for t in self.tiers])
        self.breakers = [CircuitBreaker(failure_threshold=self.options.breaker_failure_threshold,
                                        reset_timeout_s=self.options.breaker_reset_timeout_s)
                         for _ in self.tiers]
        self.dirty: set[str] = set()
        self.unsynced: list[set[str]] = [set() for _ in self.tiers]
        """per tier: keys whose latest write or delete it did not acknowledge; never read from it"""
        self.untracked = [False] * len(self.tiers)
        """per tier: ``unsynced`` overflowed; the tier is used again only after it has been cleared"""
        now_s = clock.now_s()
        self._next_cleanup_s = now_s + self.options.cleanup_interval_s
        self._next_stats_s = now_s + self.options.stats_interval_s
        self._last_stats_s = now_s
        self.last_hit_tier: int | None = None
        """index of the tier that served the last ``get`` (None: a miss); the simulator reads it"""

    # -- calling tiers safely ---------------------------------------------------------------
    def _may_call(self, index: int) -> bool:
        breaker = self.breakers[index]
        if breaker.state is BreakerState.CLOSED or breaker.allows(self.clock.now_s()):
            return True
        self.stats.skipped[index] += 1
        return False

    def _succeeded(self, index: int, started_s: float | None) -> None:
        if started_s is not None:
            self.stats.record_latency(index, 1000.0 * (self.clock.now_s() - started_s))
        breaker = self.breakers[index]
        if breaker.consecutive_failures or breaker.state is not BreakerState.CLOSED:
            outage_s = breaker.record_success(self.clock.now_s())
            if outage_s is not None and self.events is not None:
                self.events.emit(CacheTierRecovered, source=self.source, cache_tier=self.tiers[index].name,
                                 outage_s=outage_s)

    def _ready(self, index: int) -> bool:
        """May tier ``index`` be used now? Its breaker must let the call through, and a tier the
        hierarchy lost track of (``untracked``) is cleared first."""
        if not self._may_call(index):
            return False
        return not self.untracked[index] or self._clear(index)

    def _clear(self, index: int) -> bool:
        tier = self.tiers[index]
        if not isinstance(tier, ClearableTier):
            self.stats.skipped[index] += 1
            return False
        removed = self._invoke(index, tier.clear)
        if removed is UNANSWERED:
            return False
        self.untracked[index] = False
        if self.events is not None:
            self.events.emit(CacheTierCleared, source=self.source, cache_tier=tier.name, entries_removed=removed)
        return True

    def _invoke(self, index: int, op: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T | Unanswered:
        """Call a tier that is ready; a ``TierUnavailable`` is counted and becomes ``UNANSWERED``."""
        started_s = self.clock.now_s() if self.options.measure_latency else None
        try:
            result = op(*args, **kwargs)
        except TierUnavailable as exc:
            self._failed(index, exc)
            return UNANSWERED
        self._succeeded(index, started_s)
        return result

    def _call(self, index: int, op: Callable[[], T], default: T) -> T:
        """A call that changes nothing the tier serves (a read, a purge): ``default`` if unanswered."""
        result = self._invoke(index, op) if self._ready(index) else UNANSWERED
        return default if result is UNANSWERED else result

    def _mutate(self, index: int, keys: Iterable[str], op: Callable[[], T]) -> T | Unanswered:
        """A write or delete of ``keys`` in tier ``index``: unless the tier acknowledges it, the keys
        are remembered as unsynced there; once it does, forgotten."""
        result = self._invoke(index, op) if self._ready(index) else UNANSWERED
        unsynced = self.unsynced[index]
        if result is not UNANSWERED:
            if unsynced:
                unsynced.difference_update(keys)
        elif not self.untracked[index]:
            unsynced.update(keys)
            if len(unsynced) > self.options.max_unsynced_keys:
                self._lose_track(index)
        return result

    def _lose_track(self, index: int) -> None:
        count = len(self.unsynced[index])
        self.unsynced[index].clear()
        self.untracked[index] = True
        if self.events is not None:
            self.events.emit(CacheTierTrackingOverflowed, source=self.source, cache_tier=self.tiers[index].name,
                             unsynced_keys=count)

    def _drop_unsynced(self, index: int, keys: Iterable[str]) -> list[str] | None:
        """Of ``keys``, those tier ``index`` (ready) missed the latest write or delete of, deleted
        there now so it never serves them; they are misses. None if that delete was unanswered."""
        unsynced = self.unsynced[index]
        stale = [k for k in keys if k in unsynced] if unsynced else []
        if not stale:
            return stale
        tier = self.tiers[index]
        if self._invoke(index, tier.delete_many, stale) is UNANSWERED:
            return None
        unsynced.difference_update(stale)
        return stale

    def _failed(self, index: int, exc: Exception) -> None:
        self.stats.failures[index] += 1
        self.stats.failures[-1] += 1
        breaker = self.breakers[index]
        if breaker.record_failure(self.clock.now_s()) and self.events is not None:
            self.events.emit(CacheTierFailed, source=self.source, cache_tier=self.tiers[index].name,
                             cache_error=f"{type(exc).__name__}: {exc}"[:200],
                             consecutive_failures=breaker.consecutive_failures)

    # -- reads ------------------------------------------------------------------------------
    def get(self, key: str) -> bytes | None:
        """Read through the tiers; a tier that fails or is skipped is a miss for the caller."""
        stats = self.stats
        measure = self.options.measure_latency
        untracked, unsynced = self.untracked, self.unsynced
        for index, tier in enumerate(self.tiers):
            # ``_ready`` and ``_fetch``, inlined: this loop is the hot path of every request.
            if not self._may_call(index) or (untracked[index] and not self._clear(index)):
                continue
            if unsynced[index] and key in unsynced[index]:
                self._drop_unsynced(index, (key,))
                stats.misses[index] += 1
                continue
            started_s = self.clock.now_s() if measure else None
            try:
                value = tier.get(key)
            except TierUnavailable as exc:
                self._failed(index, exc)
                stats.misses[index] += 1
                continue
            self._succeeded(index, started_s)
            if value is None:
                stats.misses[index] += 1
                continue
            stats.hits[index] += 1
            stats.hits[-1] += 1
            self.last_hit_tier = index
            if index:
                stats.promotions[index] += 1
                self._store_above(index, {key: value})
            return value
        stats.misses[-1] += 1
        self.last_hit_tier = None
        return None

    def _fetch(self, index: int, tier: CacheTier, key: str, measure: bool) -> bytes | None:
        """``key`` from tier ``index`` (ready); None on a miss, a failure, or an unsynced key."""
        if self.unsynced[index] and key in self.unsynced[index]:
            self._drop_unsynced(index, (key,))
            return None
        started_s = self.clock.now_s() if measure else None
        try:
            value = tier.get(key)
        except TierUnavailable as exc:
            self._failed(index, exc)
            return None
        self._succeeded(index, started_s)
        return value

    def get_many(self, keys: Sequence[str]) -> dict[str, bytes]:
        """``get`` for a batch: one call per tier for the keys still missing (pipelined on Redis)."""
        found: dict[str, bytes] = {}
        remaining = list(dict.fromkeys(keys))
        stats = self.stats
        for index, tier in enumerate(self.tiers):
            if not remaining:
                break
            if not self._ready(index):
                continue
            got = self._fetch_many(index, tier, remaining)
            stats.hits[index] += len(got)
            stats.misses[index] += len(remaining) - len(got)
            if got:
                if index:
                    stats.promotions[index] += len(got)
                    self._store_above(index, got)
                found.update(got)
                remaining = [k for k in remaining if k not in got]
        stats.hits[-1] += len(found)
        stats.misses[-1] += len(remaining)
        return found

    def _fetch_many(self, index: int, tier: CacheTier, keys: list[str]) -> dict[str, bytes]:
        """``get_many`` on tier ``index`` (ready): failures and unsynced keys are misses."""
        stale = self._drop_unsynced(index, keys)
        if stale is None:
            return {}
        if stale:
            dropped = set(stale)
            keys = [k for k in keys if k not in dropped]
        got = self._invoke(index, tier.get_many, keys) if keys else {}
        return {} if got is UNANSWERED else got

    def contains(self, key: str) -> bool:
        return any(self._contained_in(i, key) for i in range(len(self.tiers)))

    def _contained_in(self, index: int, key: str) -> bool:
        if not self._ready(index) or self._drop_unsynced(index, (key,)) != []:
            return False
        return self._invoke(index, self.tiers[index].contains, key) is True

    # -- writes -----------------------------------------------------------------------------
    def set(self, key: str, value: bytes, ttl_s: float | None = None, size_bytes: int | None = None) -> None:
        if self.options.write_mode == "back":
            self._write_back({key: value}, ttl_s, size_bytes)
            return
        for index in range(len(self.tiers)):
            self._set_in(index, {key: value}, ttl_s, size_bytes)

    def set_many(self, items: Mapping[str, bytes], ttl_s: float | None = None) -> None:
        if not items:
            return
        if self.options.write_mode == "back":
            self._write_back(items, ttl_s, None)
            return
        for index in range(len(self.tiers)):
            self._set_in(index, items, ttl_s, None)

    def _write_back(self, items: Mapping[str, bytes], ttl_s: float | None, size_bytes: int | None) -> None:
        newly_dirty = [k for k in items if k not in self.dirty]
        self.dirty.update(items)
        if newly_dirty:
            for index in range(1, len(self.tiers)):
                self._mutate(index, newly_dirty, partial(self.tiers[index].delete_many, newly_dirty))
        self._set_in(0, items, ttl_s, size_bytes)

    def _set_in(self, index: int, items: Mapping[str, bytes], ttl_s: float | None,
                size_bytes: int | None) -> None:
        """Write ``items`` into one tier and demote what it evicts."""
        tier = self.tiers[index]
        if len(items) == 1 and size_bytes is not None:
            ((key, value),) = items.items()
            evicted = self._mutate(index, items, partial(tier.set, key, value, ttl_s, size_bytes))
        elif len(items) == 1:
            ((key, value),) = items.items()
            evicted = self._mutate(index, items, partial(tier.set, key, value, ttl_s))
        else:
            evicted = self._mutate(index, items, partial(tier.set_many, items, ttl_s))
        if evicted is not UNANSWERED and evicted:
            self._demote(index, evicted, items)

    def _demote(self, index: int, evicted: list[CacheEntry], batch: Mapping[str, bytes] | None = None) -> None:
        """Write a tier's evictees one tier down (dirty write-back entries through every lower
        tier), one batch per tier so a Redis L2 takes them in one pipelined round trip.

        Clean evictees that belong to the batch being written are skipped: the tier below already
        has them (promotions come from below) or is about to (write-through goes on down). So are
        keys unsynced in this tier: what it evicted of them may be an older value."""
        unsynced = self.unsynced[index]
        if self.untracked[index]:
            return
        if unsynced:
            evicted = [e for e in evicted if e.key not in unsynced]
        dirty = [e for e in evicted if e.key in self.dirty]
        self.dirty.difference_update(e.key for e in dirty)
        below = index + 1
        if below >= len(self.tiers):
            return
        if dirty:
            for lower in range(below, len(self.tiers)):
                self._write_entries(lower, dirty)
        if self.options.demote_evictions:
            dirty_keys = {e.key for e in dirty}
            clean = [e for e in evicted if e.key not in dirty_keys and (batch is None or e.key not in batch)]
            self.stats.demotions[index] += len(evicted)
            if clean:
                self._write_entries(below, clean)

    def _write_entries(self, index: int, entries: list[CacheEntry]) -> None:
        if len(entries) > 1 and all(len(e.value) == e.size_bytes for e in entries):
            self._set_in(index, {e.key: e.value for e in entries}, None, None)
            return
        for e in entries:
            self._set_in(index, {e.key: e.value}, None, e.size_bytes)

    def _store_above(self, hit_index: int, items: Mapping[str, bytes]) -> None:
        for index in range(hit_index - 1, -1, -1):
            self._set_in(index, items, None, None)

    def delete(self, key: str) -> bool:
        self.dirty.discard(key)
        removed = False
        for index, tier in enumerate(self.tiers):
            removed = self._mutate(index, (key,), partial(tier.delete, key)) is True or removed
        return removed

    def flush(self) -> int:
        """Write every dirty (write-back) entry through the lower tiers; returns how many."""
        flushed = 0
        top = self.tiers[0]
        for key in sorted(self.dirty):
            value = self._fetch(0, top, key, self.options.measure_latency) if self._ready(0) else None
            if value is None:
                continue
            for index in range(1, len(self.tiers)):
                self._set_in(index, {key: value}, None, None)
            flushed += 1
        self.dirty.clear()
        return flushed

    # -- the cleanup cycle ------------------------------------------------------------------
    def tick(self) -> None:
        """Run the cleanup cycle and the statistics sample if their intervals have passed."""
        now_s = self.clock.now_s()
        if now_s >= self._next_cleanup_s:
            self._next_cleanup_s = now_s + self.options.cleanup_interval_s
            self.cleanup()
        if now_s >= self._next_stats_s:
            self._next_stats_s = now_s + self.options.stats_interval_s
            self.emit_stats()

    def cleanup(self) -> None:
        for index, tier in enumerate(self.tiers):
            purged = self._call(index, tier.purge_expired, 0)
            self.stats.expirations[index] += purged
            self.stats.expirations[-1] += purged
        self.reconcile()
        if self.options.adaptive_l1 is not None:
            self._adapt_l1(self.options.adaptive_l1)

    def reconcile(self) -> int:
        """Delete, in every tier that answers, the keys it missed the latest write or delete of
        (``RECONCILE_BATCH_KEYS`` per call, stopping at a tier's first failure); returns how many."""
        reconciled = 0
        for index, unsynced in enumerate(self.unsynced):
            pending = sorted(unsynced)
            for start in range(0, len(pending), RECONCILE_BATCH_KEYS):
                batch = pending[start:start + RECONCILE_BATCH_KEYS]
                if not self._ready(index) or self._invoke(index, self.tiers[index].delete_many,
                                                          batch) is UNANSWERED:
                    break
                unsynced.difference_update(batch)
                reconciled += len(batch)
        return reconciled

    def _adapt_l1(self, sizing: AdaptiveSizing) -> None:
        l1 = self.tiers[0]
        if not isinstance(l1, ResizableTier):
            return
        new_capacity, hit_rate_pct = sizing.decide(self.stats.hits[0], self.stats.misses[0], l1.capacity)
        if new_capacity == l1.capacity:
            return
        evicted = l1.resize(new_capacity)
        if evicted:
            self._demote(0, evicted)
        if self.events is not None:
            self.events.emit(CacheTierResized, source=self.source, cache_tier=l1.name,
                             capacity_units=new_capacity, hit_rate_pct=hit_rate_pct)

    def emit_stats(self) -> None:
        now_s = self.clock.now_s()
        interval_s = now_s - self._last_stats_s
        self._last_stats_s = now_s
        samples = self.stats.sample()
        if self.events is None:
            return
        for s in samples:
            if s.requests == 0 and s.failures == 0 and s.skipped == 0 and s.expirations == 0:
                continue
            self.events.emit(CacheStatsSampled, source=self.source, cache_tier=s.tier, interval_s=interval_s,
                             cache_hits=s.hits, cache_misses=s.misses, cache_failures=s.failures,
                             cache_skipped=s.skipped, cache_promotions=s.promotions,
                             cache_demotions=s.demotions, cache_expirations=s.expirations,
                             cache_latency_mean_ms=s.latency_mean_ms, cache_latency_p99_ms=s.latency_p99_ms)

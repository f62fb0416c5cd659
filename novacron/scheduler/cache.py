"""The decision cache: reuse a recent placement for a request of the same shape.

Theory of operation
-------------------
The NovaCron analysis budgets a 2-minute decision cache. A cached decision is keyed by the
request's signature (demand, affinity group, peers) and remembers the hosts it relied on: the
chosen host and the ``relied_on - 1`` runners-up by score, with their free resources at decision
time. A lookup misses when

1. the entry is older than the TTL (time is injected: ``now_s``, never read from a clock);
2. any relied-on host's free resources moved by more than ``tolerance`` of its capacity on any
   resource since the decision (the ranking the decision came from may no longer hold), a
   relied-on host went down, or the chosen host was powered off;
3. the chosen host no longer passes every filter: this re-check runs on every hit, so the
   cache never serves a placement that has become infeasible, whatever the tolerance.

A miss from (2) or (3) drops the entry. The trade-off is deliberate: within the tolerance a
spread policy may place a few same-shaped VMs on one host (the ranking is allowed to drift by
the tolerance), in exchange for skipping the evaluation over every host.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from novacron.scheduler.framework import Decision, Evaluation, Scheduler
from novacron.scheduler.state import FloatArray, HostTable, IntArray, PlacementRequest


@dataclass(frozen=True, slots=True)
class CachedDecision:
    row: int
    decided_at_s: float
    relied_rows: IntArray
    relied_free: FloatArray


@dataclass(slots=True)
class CacheStats:
    """Lookups by outcome; every lookup that is not a hit counts as a miss and one reason."""

    hits: int = 0
    misses: int = 0
    expired: int = 0
    """Misses because the decision was older than the TTL."""
    invalidated: int = 0
    """Misses because a relied-on host went down or off, or its free capacity drifted too far."""
    infeasible: int = 0
    """Misses because the cached host can no longer take the request."""


class DecisionCache:
    """TTL cache of decisions, validated against the current host table on every hit."""

    def __init__(self, *, ttl_s: float = 120.0, tolerance: float = 0.05, relied_on: int = 4,
                 max_entries: int = 10_000) -> None:
        self.ttl_s = ttl_s
        self.tolerance = tolerance
        self.relied_on = relied_on
        self.max_entries = max_entries
        self.stats = CacheStats()
        self._entries: OrderedDict[tuple[object, ...], CachedDecision] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def lookup(self, hosts: HostTable, request: PlacementRequest, scheduler: Scheduler, now_s: float) -> int | None:
        """The cached row for this request if still valid and feasible, else None."""
        key = request.signature()
        entry = self._entries.get(key)
        if entry is None:
            self.stats.misses += 1
            return None
        reason = self._invalid_reason(hosts, request, scheduler, entry, now_s)
        if reason is not None:
            del self._entries[key]
            self.stats.misses += 1
            setattr(self.stats, reason, getattr(self.stats, reason) + 1)
            return None
        self.stats.hits += 1
        return entry.row

    def _invalid_reason(self, hosts: HostTable, request: PlacementRequest, scheduler: Scheduler,
                        entry: CachedDecision, now_s: float) -> str | None:
        if now_s - entry.decided_at_s > self.ttl_s or now_s < entry.decided_at_s:
            return "expired"
        rows = entry.relied_rows
        if rows.max() >= hosts.size or not hosts.up[rows].all() or not hosts.powered_on[entry.row]:
            return "invalidated"  # a powered-off host would have to be woken: decide afresh
        capacity = hosts.capacity[:, rows]  # the relied-on rows only: O(rows), not O(hosts), per lookup
        drift = np.abs(capacity - hosts.allocated[:, rows] - entry.relied_free) / np.maximum(capacity, 1e-12)
        if drift.max() > self.tolerance:
            return "invalidated"
        if not scheduler.is_feasible_on(hosts, entry.row, request):
            return "infeasible"
        return None

    def store(self, hosts: HostTable, request: PlacementRequest, decision: Decision, evaluation: Evaluation,
              now_s: float) -> None:
        """Remember a fresh decision and the hosts its ranking rested on."""
        if decision.row is None or self.ttl_s <= 0:
            return
        combined = evaluation.combined
        k = min(self.relied_on, combined.size)
        top = np.argpartition(-combined, k - 1)[:k] if k < combined.size else np.arange(combined.size)
        top = top[np.isfinite(combined[top])] + evaluation.offset
        # Sorted and unique, as np.unique gives, for a handful of rows at a fraction of its cost.
        rows = np.array(sorted({*top.tolist(), decision.row}), dtype=np.int64)
        key = request.signature()
        free = hosts.capacity[:, rows] - hosts.allocated[:, rows]
        self._entries[key] = CachedDecision(decision.row, now_s, rows, free)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def clear(self) -> None:
        self._entries.clear()


class CachingScheduler:
    """A scheduler fronted by a decision cache (``Decision.cached`` tells a hit)."""

    def __init__(self, scheduler: Scheduler, cache: DecisionCache) -> None:
        self.scheduler = scheduler
        self.cache = cache

    def place(self, hosts: HostTable, request: PlacementRequest, rng: np.random.Generator,
              now_s: float) -> Decision:
        row = self.cache.lookup(hosts, request, self.scheduler, now_s)
        if row is not None:
            return Decision(request.vm_id, row, int(hosts.index[row]), float("nan"), 1, cached=True)
        evaluation = self.scheduler.evaluate(hosts, request, rng)
        decision = self.scheduler.select(hosts, request, evaluation, rng)
        self.cache.store(hosts, request, decision, evaluation, now_s)
        return decision

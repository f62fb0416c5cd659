"""Trace-driven evaluation: replay a request trace through a three-tier hierarchy and compare
each level's hit rate with Belady's MIN at the same capacity.

Theory of operation
-------------------
The hierarchy is the real core one over three ``MemoryTier`` (L1 and L2 bounded by items, L3 by
bytes), driven by a ``ManualClock`` set to each request's time, so TTLs and the cleanup cycle act
as they would live. A ``get`` that misses everywhere fetches from the origin and writes through
(read-through fill); ``set`` and ``delete`` requests write and delete. Values stand in for objects
of the trace's sizes as zero-copy slices of one shared zero buffer, so a trace of large objects
costs no memory per object.

The ceiling for "hits in L1" is Belady with L1's capacity; for "hits in L1 or L2" Belady with the
two capacities summed (an exclusive hierarchy could at best act as one cache of that size); for
the whole hierarchy Belady with all three, L3's bytes converted to items with the trace's mean
object size (Belady is only exact for equal sizes). ``gap_pp`` is ceiling minus achieved, in
percentage points of all get requests. A capacity of 0 for L2 or L3 means the hierarchy has no
such tier (L1 alone, L1 + L3, ...).
"""

from __future__ import annotations

from array import array
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import cast

from novacron.cache.belady import belady_hits
from novacron.cache.clock import ManualClock
from novacron.cache.hierarchy import CacheHierarchy, HierarchyOptions, WriteMode
from novacron.cache.memory import MemoryTier
from novacron.cache.traces import Request, next_access_positions


@dataclass(frozen=True, slots=True)
class LevelResult:
    level: str
    """``l1``, ``l2``, ``l3`` or ``overall``"""
    capacity_items: int
    requests: int
    """requests that reached this tier"""
    hits: int
    tier_hit_rate_pct: float
    """hits over the requests that reached the tier (the catalogue's per-tier definition)"""
    cumulative_hit_rate_pct: float
    """hits in this tier or above, over all get requests"""
    belady_hit_rate_pct: float
    gap_pp: float


@dataclass
class EvalResult:
    policy: str
    requests: int
    gets: int
    sets: int
    deletes: int
    mean_object_bytes: float
    levels: list[LevelResult] = field(default_factory=list)

    def as_dict(self) -> dict[str, object]:
        return {"policy": self.policy, "requests": self.requests, "gets": self.gets, "sets": self.sets,
                "deletes": self.deletes, "mean_object_bytes": self.mean_object_bytes,
                "levels": {lv.level: {k: getattr(lv, k) for k in LevelResult.__slots__ if k != "level"}
                           for lv in self.levels}}


class _Values:
    """Zero-copy stand-ins of a given length (``len(value) == size``) from one shared buffer."""

    def __init__(self) -> None:
        self._buffer = memoryview(bytes(1 << 16))

    def of(self, size: int) -> bytes:
        if size > len(self._buffer):
            self._buffer = memoryview(bytes(max(size, 2 * len(self._buffer))))
        return cast(bytes, self._buffer[:size])


def evaluate_trace(requests: Iterable[Request], *, l1_items: int, l2_items: int, l3_bytes: int,
                   policy: str = "lru", ttl_s: float | None = None, write_mode: WriteMode = "through",
                   cleanup_interval_s: float = 30.0) -> EvalResult:
    clock = ManualClock(0.0)
    tiers = [MemoryTier("l1", clock=clock, capacity_items=l1_items, default_ttl_s=ttl_s, policy=policy)]
    if l2_items > 0:
        tiers.append(MemoryTier("l2", clock=clock, capacity_items=l2_items, default_ttl_s=ttl_s, policy=policy))
    if l3_bytes > 0:
        tiers.append(MemoryTier("l3", clock=clock, capacity_bytes=l3_bytes, default_ttl_s=ttl_s, policy=policy))
    cache = CacheHierarchy(tiers, clock=clock, options=HierarchyOptions(
        write_mode=write_mode, cleanup_interval_s=cleanup_interval_s, stats_interval_s=float("inf")))
    values = _Values()
    get_keys = array("q")
    counts = {"get": 0, "set": 0, "delete": 0}
    total_bytes = 0
    for request in requests:
        clock.set(request.time_s)
        cache.tick()
        key = str(request.key)
        counts[request.op] += 1
        if request.op == "get":
            get_keys.append(request.key)
            total_bytes += request.size_bytes
            if cache.get(key) is None:
                cache.set(key, values.of(request.size_bytes))
        elif request.op == "set":
            cache.set(key, values.of(request.size_bytes))
        else:
            cache.delete(key)
    gets = counts["get"]
    mean_bytes = total_bytes / gets if gets else 0.0
    result = EvalResult(policy=policy, requests=sum(counts.values()), gets=gets, sets=counts["set"],
                        deletes=counts["delete"], mean_object_bytes=mean_bytes)
    l3_items = int(l3_bytes // mean_bytes) if mean_bytes else 0
    sizes = [l1_items] + [n for n, present in ((l2_items, l2_items > 0), (l3_items, l3_bytes > 0)) if present]
    capacities = [sum(sizes[:k + 1]) for k in range(len(sizes))]
    _add_levels(result, cache, get_keys.tolist(), capacities)
    return result


def _add_levels(result: EvalResult, cache: CacheHierarchy, keys: list[int], capacities: list[int]) -> None:
    totals = cache.stats.totals()
    gets = max(result.gets, 1)
    cumulative_hits = 0
    following = next_access_positions(keys)
    for index, sample in enumerate(totals[:-1]):
        cumulative_hits += sample.hits
        achieved = 100.0 * cumulative_hits / gets
        ceiling = 100.0 * belady_hits(keys, capacities[index], following) / gets
        result.levels.append(LevelResult(
            level=sample.tier, capacity_items=capacities[index], requests=sample.requests, hits=sample.hits,
            tier_hit_rate_pct=sample.hit_rate_pct or 0.0, cumulative_hit_rate_pct=achieved,
            belady_hit_rate_pct=ceiling, gap_pp=ceiling - achieved))
    last = result.levels[-1]
    result.levels.append(LevelResult(
        level="overall", capacity_items=last.capacity_items, requests=result.gets, hits=cumulative_hits,
        tier_hit_rate_pct=last.cumulative_hit_rate_pct, cumulative_hit_rate_pct=last.cumulative_hit_rate_pct,
        belady_hit_rate_pct=last.belady_hit_rate_pct, gap_pp=last.gap_pp))


def format_result(result: EvalResult) -> str:
    lines = [f"policy {result.policy} · {result.requests} requests ({result.gets} get, {result.sets} set, "
             f"{result.deletes} delete) · mean object {result.mean_object_bytes:.0f} B",
             f"{'level':8} {'capacity':>10} {'reached':>10} {'tier hit %':>10} {'cum. hit %':>10} "
             f"{'Belady %':>9} {'gap pp':>7}"]
    for lv in result.levels:
        lines.append(f"{lv.level:8} {lv.capacity_items:>10} {lv.requests:>10} {lv.tier_hit_rate_pct:>10.2f} "
                     f"{lv.cumulative_hit_rate_pct:>10.2f} {lv.belady_hit_rate_pct:>9.2f} {lv.gap_pp:>7.2f}")
    lines.append("capacity: items (L3 bytes / mean object size); Belady = optimal offline hits at that capacity")
    return "\n".join(lines)

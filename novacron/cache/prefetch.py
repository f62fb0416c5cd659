"""Predictive preloading: sequential runs learned from the access history, scored on demand hits.

Theory of operation
-------------------
A prefetcher watches the demand requests and names keys worth loading before anyone asks for
them. ``replay_with_prefetch`` replays a key sequence through an eviction policy and a
prefetcher: each demand request is a hit or a miss exactly as without prefetching (a miss loads
the key); then the prefetcher's candidates that the cache does not hold are loaded too, each
evicting the policy's victim like any insertion, so a preloaded key that is never used costs
its slot. The policy cannot tell a preload from a missed request (``inserted`` either way), so
every policy is raced with the same preloads; a separate class for preloads in the predictive
policy was tried and lost 14 points of the gap on vm-image at 1 % capacity, seed 12345 (its
reuse hazard starts from an empty prior, so preloads were evicted before use). Only demand requests count
as hits; every preload is an extra fetch (the bandwidth cost), and it is *used* if a demand
request hits it before it is evicted (the accuracy). The budget: one preload per request at
most, and none while unused preloads fill a quarter of the cache.

With preloading, Belady's MIN is no longer a ceiling: MIN is the best *demand-paging* policy,
loading a key only when it is requested; a preloader turns first requests, which MIN must miss,
into hits. The race reports the share of the S3-FIFO -> MIN gap anyway, and it can exceed 100 %.

``SequentialPrefetcher`` finds sequential runs, the structure of file scans and VM-image boots:
after a request to integer key ``k`` it predicts ``k + 1``. The *run length* of a request is one
more than that of ``k - 1`` when ``k - 1`` was requested within the last ``horizon`` requests,
else 1 (the run detection of AMP, Gill and Bathen, "AMP: Adaptive Multi-stream Prefetching in a
Shared Cache", FAST 2007, which keeps one prefetch state per detected stream; here the requests
of interleaved streams need no stream id, because adjacency of keys is what is tracked). Whether
to act is *learned*, for every request and with no fetch at all: each request leaves a shadow
prediction "``k + 1`` within ``horizon`` requests" filed under its run-length class. It counts
at once, as wrong until a request to ``k + 1`` in time makes it right (counting it only when
resolved would let the quick "right" outcomes run ahead of the slow "wrong" ones, which only
show at the deadline); refiling a pending prediction extends it. A request preloads ``k + 1``
only when the learned accuracy of its class, ``right / (filed + PRIOR_TOTAL)`` (counts halved
every ``DECAY_FACTOR`` x ``horizon`` filings, so it follows the trace), is at least
``min_accuracy``, *and* the class's learned use rate (its preloads that a demand request hit
before eviction, from the replay's ``feedback``; AMP likewise shrinks a stream whose prefetched
blocks are evicted unused) is at least ``min_use_rate``: a prediction can come true and still
be wasted when the cache cannot keep the preload until then. The use rate starts trusting
(``PRIOR_USED``), and the halving pulls a stopped class back to it, so it tries again later.
On traces without sequential structure (Zipf over shuffled ids) the learned accuracy stays near
the chance that a random key follows, and nothing is preloaded.

Mining associations between arbitrary keys within a window (Mithril, Yang et al., SoCC 2017)
would also catch non-adjacent correlations, at O(window) per request; the repository's trace
families have none beyond adjacency (IRM draws are independent), so the O(1) sequential case
is the one implemented.

Everything counts time in requests; no random numbers; O(1) amortised per request.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from typing import Protocol

from novacron.cache.policies import EvictionPolicy

RUN_CLASSES = 8
"""Run-length classes 1..7 and 8+ (index ``min(run, RUN_CLASSES) - 1``)."""
DECAY_FACTOR = 4
PRIOR_TOTAL = 2.0
"""Pseudo-filings that start every class at accuracy 0: a class must earn its first preload."""
PRIOR_USED = 2.0
"""Pseudo-preloads, all used: a class starts trusted and, after its preloads went to waste and
it stopped, regains trust as the halving forgets the waste (so it tries again)."""


class Prefetcher(Protocol):
    name: str

    def observe(self, key: Hashable) -> Sequence[Hashable]:
        """A demand request for ``key``; returns the keys worth preloading now, best first."""
        ...

    def feedback(self, key: Hashable, *, used: bool) -> None:
        """A preload of ``key`` was hit by a demand request (``used``) or evicted unused."""
        ...


class SequentialPrefetcher:
    """Predicts ``k + 1`` after ``k`` when the learned accuracy of ``k``'s run length is high enough."""

    name = "sequential"

    def __init__(self, horizon_requests: int, *, min_accuracy: float = 0.5, min_use_rate: float = 0.35) -> None:
        if horizon_requests < 1 or not (0.0 < min_accuracy <= 1.0 and 0.0 <= min_use_rate <= 1.0):
            raise ValueError(f"need horizon_requests >= 1, 0 < min_accuracy <= 1 and 0 <= min_use_rate <= 1, "
                             f"got {horizon_requests}, {min_accuracy}, {min_use_rate}")
        self.horizon_requests = horizon_requests
        self.min_accuracy = min_accuracy
        self.min_use_rate = min_use_rate
        self.right = [0.0] * RUN_CLASSES
        self.total = [0.0] * RUN_CLASSES
        self.used = [0.0] * RUN_CLASSES
        self.issued = [0.0] * RUN_CLASSES
        self._offered: OrderedDict[int, int] = OrderedDict()  # preload candidate -> class
        self._recent: OrderedDict[int, tuple[int, int]] = OrderedDict()  # key -> (tick, run length)
        self._shadow: dict[int, tuple[int, int]] = {}  # predicted key -> (deadline tick, class)
        self._deadlines: deque[tuple[int, int]] = deque()  # (deadline tick, predicted key), in order
        self._filed = 0
        self.tick = 0

    def accuracy(self, run_class: int) -> float:
        """Learned share of this class's shadow predictions that came true within the horizon."""
        return self.right[run_class] / (self.total[run_class] + PRIOR_TOTAL)

    def use_rate(self, run_class: int) -> float:
        """Learned share of this class's preloads that a demand request hit before eviction."""
        return (self.used[run_class] + PRIOR_USED) / (self.issued[run_class] + PRIOR_USED)

    def feedback(self, key: Hashable, *, used: bool) -> None:
        run_class = self._offered.pop(key, None) if isinstance(key, int) else None
        if run_class is not None:
            self.issued[run_class] += 1.0
            self.used[run_class] += 1.0 if used else 0.0

    def observe(self, key: Hashable) -> Sequence[Hashable]:
        self.tick += 1
        if not isinstance(key, int):
            return ()
        self._expire()
        self._resolve(key)
        run = self._run_length(key)
        run_class = min(run, RUN_CLASSES) - 1
        self._file(key + 1, run_class)
        if self.accuracy(run_class) < self.min_accuracy or self.use_rate(run_class) < self.min_use_rate:
            return ()
        self._offered.pop(key + 1, None)
        self._offered[key + 1] = run_class
        while len(self._offered) > self.horizon_requests:
            self._offered.popitem(last=False)
        return (key + 1,)

    def _run_length(self, key: int) -> int:
        before = self._recent.get(key - 1)
        run = before[1] + 1 if before is not None and self.tick - before[0] <= self.horizon_requests else 1
        self._recent.pop(key, None)
        self._recent[key] = (self.tick, run)
        while len(self._recent) > self.horizon_requests:
            self._recent.popitem(last=False)
        return run

    def _file(self, predicted: int, run_class: int) -> None:
        """A shadow prediction counts at once (pending ones count as wrong until resolved, so
        the estimate never runs ahead of its evidence); refiling a pending one extends it."""
        deadline = self.tick + self.horizon_requests
        filed = self._shadow.get(predicted)
        self._shadow[predicted] = (deadline, run_class if filed is None else filed[1])
        self._deadlines.append((deadline, predicted))
        if filed is None:
            self._count_filed(run_class)

    def _resolve(self, key: int) -> None:
        filed = self._shadow.pop(key, None)
        if filed is not None:
            self.right[filed[1]] += 1.0

    def _expire(self) -> None:
        while self._deadlines and self._deadlines[0][0] < self.tick:
            deadline, predicted = self._deadlines.popleft()
            filed = self._shadow.get(predicted)
            if filed is not None and filed[0] == deadline:  # not refiled or resolved since
                del self._shadow[predicted]

    def _count_filed(self, run_class: int) -> None:
        self.total[run_class] += 1.0
        self._filed += 1
        if self._filed >= DECAY_FACTOR * self.horizon_requests:
            self._filed = 0
            for table in (self.right, self.total, self.used, self.issued):
                table[:] = [v * 0.5 for v in table]


@dataclass(frozen=True, slots=True)
class PrefetchReplay:
    """Demand hits of one replay, and what preloading cost."""

    hits: int
    prefetches: int
    prefetches_used: int

    @property
    def prefetch_accuracy_pct(self) -> float | None:
        return None if self.prefetches == 0 else 100.0 * self.prefetches_used / self.prefetches


class _Cache:
    """The replay's cache contents; ``pending`` holds preloads no demand request has hit yet."""

    def __init__(self, capacity: int, victim: Callable[[], Hashable], name: str,
                 wasted: Callable[[Hashable], None]) -> None:
        self.capacity, self._victim, self._name, self._wasted = capacity, victim, name, wasted
        self.values: dict[Hashable, object] = {}
        self.pending: set[Hashable] = set()

    def make_room(self) -> None:
        while len(self.values) >= self.capacity:
            victim = self._victim()
            if victim not in self.values:
                raise AssertionError(f"{self._name} evicted {victim!r}, which it does not hold")
            del self.values[victim]
            if victim in self.pending:
                self.pending.discard(victim)
                self._wasted(victim)


def replay_with_prefetch(policy: EvictionPolicy, keys: Iterable[Hashable], capacity: int, prefetcher: Prefetcher | None,
                         *, fetch: Callable[[Hashable], object] = lambda key: key, budget_per_request: int = 1,
                         max_pending_fraction: float = 0.25,
                         on_demand: Callable[[Hashable, object, bool], None] | None = None) -> PrefetchReplay:
    """Replays ``keys`` through ``policy`` (an ``EvictionPolicy``), preloading what ``prefetcher`` names.

    The prefetch budget: at most ``budget_per_request`` preloads per demand request, and none
    while preloads not yet used fill ``max_pending_fraction`` of the capacity (so a wrong
    prefetcher cannot flush the cache). ``fetch`` loads a key's value (the origin);
    ``on_demand(key, value, hit)`` sees what every demand request returned.
    """
    if capacity < 1 or budget_per_request < 0 or not 0.0 <= max_pending_fraction <= 1.0:
        raise ValueError(f"need capacity >= 1, budget_per_request >= 0 and 0 <= max_pending_fraction <= 1, "
                         f"got {capacity}, {budget_per_request}, {max_pending_fraction}")
    max_pending = int(capacity * max_pending_fraction)
    cache = _Cache(capacity, policy.victim, policy.name,
                   lambda key: prefetcher.feedback(key, used=False) if prefetcher is not None else None)
    hits = prefetches = used = 0
    for t, key in enumerate(keys):
        hit = key in cache.values
        if hit:
            hits += 1
            if key in cache.pending:
                cache.pending.discard(key)
                used += 1
                if prefetcher is not None:
                    prefetcher.feedback(key, used=True)
            policy.accessed(key, float(t))
        else:
            cache.make_room()
            cache.values[key] = fetch(key)
            policy.inserted(key, 1, float(t))
        if on_demand is not None:
            on_demand(key, cache.values[key], hit)
        if prefetcher is None:
            continue
        for candidate in list(prefetcher.observe(key))[:budget_per_request]:
            if candidate in cache.values or len(cache.pending) >= max_pending:
                continue
            cache.make_room()
            cache.values[candidate] = fetch(candidate)
            cache.pending.add(candidate)
            policy.inserted(candidate, 1, float(t))
            prefetches += 1
    return PrefetchReplay(hits=hits, prefetches=prefetches, prefetches_used=used)

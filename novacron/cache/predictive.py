"""A predictive eviction policy: each key's chance of reuse learned from the access history.

Theory of operation
-------------------
Belady's MIN evicts the key whose next request is furthest away. The next request is unknown
online, but its *rate* can be predicted from what the cache has seen. This policy learns, from
the access history itself, the hazard of reuse ``h(c, a)``: the chance per request that a key
of class ``c`` (its recent access count, bucketed by powers of two) that was last requested
``a`` requests ago is requested again in the age bucket ``a`` falls in, divided by the bucket's
width. It evicts the resident key with the lowest predicted hazard, i.e. the key expected to
wait longest for its next hit -- a learned, relaxed Belady (the idea of Song et al., "Learning
Relaxed Belady for Content Distribution Network Caching", NSDI 2020, with a survival table in
place of their gradient-boosted model; the per-class, per-age statistics follow Beckmann et
al., "LHD: Improving Cache Hit Rate by Maximizing Hit Density", NSDI 2018).

Learning. Every reuse of a tracked key is a labelled example: its class at its previous request
and its gap in requests go to a histogram ``reused[c][bucket(gap)]``. A key that leaves the
history without being reused is *censored* at the age it reached (``censored[c][bucket]``). The
hazard of age bucket ``b`` is the Kaplan-Meier estimate ``reused[c][b] / at_risk[c][b]``, where
``at_risk`` sums reused and censored counts over buckets ``>= b``, smoothed by a small prior,
divided by the bucket's width ``2**b``. Both histograms are halved every ``DECAY_FACTOR`` x
capacity requests and each key's count every ``AGING_FACTOR`` x capacity requests (lazily, by
epoch), so the model follows a shifting working set. The table is recomputed every
``REFRESH`` requests (a few hundred operations), so the cost per request stays O(1).

Eviction. Keys sit in one LRU list per class. Within a class the hazard falls with age for
the usual mixtures of request rates, so each list's least recently used key is that class's
best victim; the policy compares the heads of the (at most ``CLASSES``) lists. Evicted keys
stay in a ghost history of ``GHOST_FACTOR`` x capacity keys, so a key that returns keeps its
count. An admission test (the key inserted last as one more candidate, TinyLFU-style) was
tried and dropped: it lost 1-14 % of the S3-FIFO-to-Belady gap on every trace family
(``benchmarks/RESULTS_prediction.md``). The constants were chosen on the seed-12345 traces of
``benchmarks/cache_predictive.py`` at 100,000 requests; the committed table uses another seed.

The policy is deterministic: it draws no random numbers and counts time in requests (the
tier's ``now_s`` is ignored), so one trace gives one result in every process.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass

CLASSES = 9
"""Count classes: ``min(count.bit_length(), CLASSES - 1)`` (1, 2-3, 4-7, ... 128+)."""
AGE_BUCKETS = 48
GHOST_FACTOR = 8
AGING_FACTOR = 100
DECAY_FACTOR = 8
REFRESH = 512
PRIOR_REUSED = 0.01
PRIOR_AT_RISK = 1.0


def age_bucket(age_requests: int) -> int:
    return min(max(age_requests, 0).bit_length(), AGE_BUCKETS - 1)


@dataclass(slots=True)
class _Tracked:
    count: int
    epoch: int
    last: int
    cls: int
    size: int = 0


class ReuseHazardModel:
    """The learned table: per count class and age bucket, the hazard of reuse per request."""

    def __init__(self) -> None:
        self.reused = [[0.0] * AGE_BUCKETS for _ in range(CLASSES)]
        self.censored = [[0.0] * AGE_BUCKETS for _ in range(CLASSES)]
        self.hazard = [[0.0] * AGE_BUCKETS for _ in range(CLASSES)]
        self.refresh()

    def observe_reuse(self, cls: int, gap_requests: int) -> None:
        self.reused[cls][age_bucket(gap_requests)] += 1.0

    def observe_censored(self, cls: int, age_requests: int) -> None:
        self.censored[cls][age_bucket(age_requests)] += 1.0

    def decay(self) -> None:
        for table in (self.reused, self.censored):
            for row in table:
                row[:] = [v * 0.5 for v in row]

    def refresh(self) -> None:
        for cls in range(CLASSES):
            reused, censored, hazard = self.reused[cls], self.censored[cls], self.hazard[cls]
            at_risk = 0.0
            for b in range(AGE_BUCKETS - 1, -1, -1):
                at_risk += reused[b] + censored[b]
                hazard[b] = (reused[b] + PRIOR_REUSED) / (at_risk + PRIOR_AT_RISK) / (1 << b)


class PredictivePolicy:
    """Evicts the key with the lowest learned reuse hazard; sizes are counted in the tier's unit."""

    name = "predictive"

    def __init__(self, capacity: int) -> None:
        self.model = ReuseHazardModel()
        self._lists: list[OrderedDict[Hashable, None]] = [OrderedDict() for _ in range(CLASSES)]
        self._resident: dict[Hashable, _Tracked] = {}
        self._ghost: OrderedDict[Hashable, _Tracked] = OrderedDict()
        self.tick = 0
        self.resize(capacity)

    def resize(self, capacity: int) -> None:
        self.capacity = max(1, capacity)

    def _advance(self) -> None:
        self.tick += 1
        if self.tick % (DECAY_FACTOR * self.capacity) == 0:
            self.model.decay()
        if self.tick % REFRESH == 0:
            self.model.refresh()

    def _epoch(self) -> int:
        return self.tick // (AGING_FACTOR * self.capacity)

    def _touch(self, t: _Tracked) -> None:
        """A request for a tracked key: learn from its gap, then count it."""
        self.model.observe_reuse(t.cls, self.tick - t.last)
        epoch = self._epoch()
        t.count = (t.count >> min(epoch - t.epoch, 62)) + 1
        t.epoch, t.last = epoch, self.tick
        t.cls = min(t.count.bit_length(), CLASSES - 1)

    def inserted(self, key: Hashable, size: int, now_s: float) -> None:
        self._advance()
        t = self._ghost.pop(key, None)
        if t is None:
            t = _Tracked(count=1, epoch=self._epoch(), last=self.tick, cls=1)
        else:
            self._touch(t)
        t.size = size
        self._resident[key] = t
        self._lists[t.cls][key] = None

    def accessed(self, key: Hashable, now_s: float) -> None:
        self._advance()
        t = self._resident[key]
        del self._lists[t.cls][key]
        self._touch(t)
        self._lists[t.cls][key] = None

    def removed(self, key: Hashable) -> None:
        t = self._resident.pop(key, None)
        if t is not None:
            del self._lists[t.cls][key]

    def _score(self, key: Hashable) -> float:
        t = self._resident[key]
        return self.model.hazard[t.cls][age_bucket(self.tick - t.last)]

    def victim(self) -> Hashable:
        candidates = [next(iter(keys)) for keys in self._lists if keys]
        if not candidates:
            raise KeyError("victim() of an empty policy")
        key = min(candidates, key=self._score)
        t = self._resident.pop(key)
        del self._lists[t.cls][key]
        self._remember(key, t)
        return key

    def _remember(self, key: Hashable, t: _Tracked) -> None:
        self._ghost[key] = t
        while len(self._ghost) > GHOST_FACTOR * self.capacity:
            _, dropped = self._ghost.popitem(last=False)
            self.model.observe_censored(dropped.cls, self.tick - dropped.last)

    def __len__(self) -> int:
        return len(self._resident)

"""Hit, miss and latency statistics of a cache hierarchy, kept as cumulative counters.

Theory of operation
-------------------
Per request the hierarchy only increments integers in lists indexed by tier (plus the overall
slot at the end), so statistics cost almost nothing. Latency samples go into a log-scale
histogram (8 buckets per doubling, about 9 % resolution), which yields a mean and an upper-bound
p99 without keeping samples. ``sample`` returns what changed since the previous sample, which
the hierarchy turns into one ``CacheStatsSampled`` event per tier per interval.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass

BUCKETS_PER_DOUBLING = 8
OVERALL = "overall"


def _bucket(latency_ms: float) -> int:
    return math.floor(math.log2(max(latency_ms, 1e-6) * 1000.0) * BUCKETS_PER_DOUBLING)


def _bucket_upper_ms(bucket: int) -> float:
    return float(2.0 ** ((bucket + 1) / BUCKETS_PER_DOUBLING) / 1000.0)


@dataclass(frozen=True, slots=True)
class TierSample:
    """What one tier (or ``overall``) did between two samples, or since the start."""

    tier: str
    hits: int
    misses: int
    failures: int
    skipped: int
    promotions: int
    demotions: int
    expirations: int
    latency_mean_ms: float | None
    latency_p99_ms: float | None

    @property
    def requests(self) -> int:
        return self.hits + self.misses

    @property
    def hit_rate_pct(self) -> float | None:
        return None if self.requests == 0 else 100.0 * self.hits / self.requests


class CacheStats:
    """Cumulative counters per tier; slot ``len(tiers)`` is the overall view."""

    def __init__(self, tier_names: list[str]) -> None:
        self.names = [*tier_names, OVERALL]
        n = len(self.names)
        self.hits = [0] * n
        self.misses = [0] * n
        self.failures = [0] * n
        self.skipped = [0] * n
        self.promotions = [0] * n
        self.demotions = [0] * n
        self.expirations = [0] * n
        self.latency_sum_ms = [0.0] * n
        self.latency_count = [0] * n
        self.latency_hist: list[Counter[int]] = [Counter() for _ in range(n)]
        self._last = self._snapshot()

    @property
    def overall(self) -> int:
        return len(self.names) - 1

    def record_latency(self, index: int, latency_ms: float) -> None:
        self.latency_sum_ms[index] += latency_ms
        self.latency_count[index] += 1
        self.latency_hist[index][_bucket(latency_ms)] += 1

    def record_latencies(self, index: int, total_ms: float, count: int, hist: Counter[int]) -> None:
        """Add many latency samples at once (the simulator draws them vectorised)."""
        self.latency_sum_ms[index] += total_ms
        self.latency_count[index] += count
        self.latency_hist[index].update(hist)

    def _snapshot(self) -> list[tuple[int, int, int, int, int, int, int, float, int, Counter[int]]]:
        return [(self.hits[i], self.misses[i], self.failures[i], self.skipped[i], self.promotions[i],
                 self.demotions[i], self.expirations[i], self.latency_sum_ms[i], self.latency_count[i],
                 Counter(self.latency_hist[i])) for i in range(len(self.names))]

    def totals(self) -> list[TierSample]:
        """Everything since the start, one entry per tier then ``overall``."""
        zero = (0, 0, 0, 0, 0, 0, 0, 0.0, 0, Counter[int]())
        return [_diff(name, now, zero) for name, now in zip(self.names, self._snapshot(), strict=True)]

    def sample(self) -> list[TierSample]:
        """What changed since the previous ``sample`` call."""
        now = self._snapshot()
        samples = [_diff(name, cur, prev) for name, cur, prev in zip(self.names, now, self._last, strict=True)]
        self._last = now
        return samples


def _diff(name: str, cur: tuple[int, int, int, int, int, int, int, float, int, Counter[int]],
          prev: tuple[int, int, int, int, int, int, int, float, int, Counter[int]]) -> TierSample:
    count = cur[8] - prev[8]
    mean = None if count == 0 else (cur[7] - prev[7]) / count
    return TierSample(tier=name, hits=cur[0] - prev[0], misses=cur[1] - prev[1], failures=cur[2] - prev[2],
                      skipped=cur[3] - prev[3], promotions=cur[4] - prev[4], demotions=cur[5] - prev[5],
                      expirations=cur[6] - prev[6], latency_mean_ms=mean,
                      latency_p99_ms=None if count == 0 else _percentile_ms(cur[9] - prev[9], 0.99))


def _percentile_ms(hist: Counter[int], q: float) -> float:
    total = sum(hist.values())
    rank = q * total
    seen = 0
    for bucket in sorted(hist):
        seen += hist[bucket]
        if seen >= rank:
            return _bucket_upper_ms(bucket)
    return _bucket_upper_ms(max(hist))


def latency_histogram(latencies_ms: list[float]) -> Counter[int]:
    return Counter(_bucket(x) for x in latencies_ms)

"""Cache metrics from ``CacheStatsSampled`` events: hit rates per tier and overall, latency.

A tier's hit rate is hits over the requests that reached it (an L2 hit rate of 95 % means 95 % of
L1's misses were found in L2); the overall rate is hits in any tier over all requests.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping
from typing import Any

from novacron.cache.events import CacheStatsSampled, CacheTierFailed
from novacron.events import Event
from novacron.streaming import EventsByType, fold_events

Metrics = dict[str, float]


class CacheFold:
    """Per-tier sums of the samples, folded as they come."""

    def __init__(self) -> None:
        self.sampled = False
        self.hits: dict[str, int] = defaultdict(int)
        self.misses: dict[str, int] = defaultdict(int)
        self.failures: dict[str, int] = defaultdict(int)
        self.latency_sum_ms: dict[str, float] = defaultdict(float)
        self.p99_ms: dict[str, float] = defaultdict(float)
        self.outages = 0

    def handlers(self) -> Mapping[type[Event], Callable[[Any], None]]:
        return {CacheStatsSampled: self._sampled, CacheTierFailed: self._failed}

    def _failed(self, _: CacheTierFailed) -> None:
        self.outages += 1

    def _sampled(self, s: CacheStatsSampled) -> None:
        self.sampled = True
        self.hits[s.cache_tier] += s.cache_hits
        self.misses[s.cache_tier] += s.cache_misses
        self.failures[s.cache_tier] += s.cache_failures
        if s.cache_latency_mean_ms is not None:
            self.latency_sum_ms[s.cache_tier] += s.cache_latency_mean_ms * (s.cache_hits + s.cache_misses)
        if s.cache_latency_p99_ms is not None:
            self.p99_ms[s.cache_tier] = max(self.p99_ms[s.cache_tier], s.cache_latency_p99_ms)

    def result(self) -> Metrics:
        if not self.sampled:
            return {}
        metrics: Metrics = {}
        for tier in sorted(self.hits.keys() | self.misses.keys()):
            requests = self.hits[tier] + self.misses[tier]
            metrics[f"cache.{tier}.requests"] = float(requests)
            metrics[f"cache.{tier}.failures"] = float(self.failures[tier])
            if requests:
                metrics[f"cache.{tier}.hit_rate_pct"] = 100.0 * self.hits[tier] / requests
                if tier in self.latency_sum_ms:
                    metrics[f"cache.{tier}.latency_mean_ms"] = self.latency_sum_ms[tier] / requests
            if tier in self.p99_ms:
                metrics[f"cache.{tier}.latency_p99_max_ms"] = self.p99_ms[tier]
        metrics["cache.tier_outages"] = float(self.outages)
        return metrics


def cache_metrics(events: EventsByType) -> Metrics:
    return fold_events(CacheFold(), events)

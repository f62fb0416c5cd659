"""Cache metrics from ``CacheStatsSampled`` events: hit rates per tier and overall, latency.

A tier's hit rate is hits over the requests that reached it (an L2 hit rate of 95 % means 95 % of
L1's misses were found in L2); the overall rate is hits in any tier over all requests.
"""

from __future__ import annotations

from collections import defaultdict
from typing import TYPE_CHECKING

from novacron.cache.events import CacheStatsSampled, CacheTierFailed

if TYPE_CHECKING:  # novacron.metrics imports this module to register the extractor
    from novacron.metrics import EventsByType

Metrics = dict[str, float]


def cache_metrics(events: EventsByType) -> Metrics:
    samples = events.of(CacheStatsSampled)
    if not samples:
        return {}
    hits: dict[str, int] = defaultdict(int)
    misses: dict[str, int] = defaultdict(int)
    failures: dict[str, int] = defaultdict(int)
    latency_sum_ms: dict[str, float] = defaultdict(float)
    p99_ms: dict[str, float] = defaultdict(float)
    for s in samples:
        hits[s.cache_tier] += s.cache_hits
        misses[s.cache_tier] += s.cache_misses
        failures[s.cache_tier] += s.cache_failures
        if s.cache_latency_mean_ms is not None:
            latency_sum_ms[s.cache_tier] += s.cache_latency_mean_ms * (s.cache_hits + s.cache_misses)
        if s.cache_latency_p99_ms is not None:
            p99_ms[s.cache_tier] = max(p99_ms[s.cache_tier], s.cache_latency_p99_ms)
    metrics: Metrics = {}
    for tier in sorted(hits.keys() | misses.keys()):
        requests = hits[tier] + misses[tier]
        metrics[f"cache.{tier}.requests"] = float(requests)
        metrics[f"cache.{tier}.failures"] = float(failures[tier])
        if requests:
            metrics[f"cache.{tier}.hit_rate_pct"] = 100.0 * hits[tier] / requests
            if tier in latency_sum_ms:
                metrics[f"cache.{tier}.latency_mean_ms"] = latency_sum_ms[tier] / requests
        if tier in p99_ms:
            metrics[f"cache.{tier}.latency_p99_max_ms"] = p99_ms[tier]
    metrics["cache.tier_outages"] = float(len(events.of(CacheTierFailed)))
    return metrics

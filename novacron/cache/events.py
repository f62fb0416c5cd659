"""Cache events: statistics aggregated per interval (never one event per request), tier outages,
L1 capacity changes, and a tier the hierarchy lost track of and cleared."""

from __future__ import annotations

from novacron.events import Event, event


@event
class CacheStatsSampled(Event):
    """One tier's counts over the last ``interval_s`` seconds (``cache_tier`` "overall" for all)."""

    cache_tier: str
    interval_s: float
    cache_hits: int
    cache_misses: int
    cache_failures: int
    """operations that raised ``TierUnavailable`` (counted as misses too)"""
    cache_skipped: int
    """requests not sent to the tier because its circuit breaker was open"""
    cache_promotions: int
    cache_demotions: int
    cache_expirations: int
    cache_latency_mean_ms: float | None
    cache_latency_p99_ms: float | None


@event
class CacheTierFailed(Event):
    """A tier's circuit breaker opened: the hierarchy stops sending it requests for a while."""

    cache_tier: str
    cache_error: str
    consecutive_failures: int


@event
class CacheTierRecovered(Event):
    """A tier answered again after an outage; its breaker closed."""

    cache_tier: str
    outage_s: float


@event
class CacheTierResized(Event):
    """Adaptive sizing changed a tier's capacity (in the tier's unit: items or bytes)."""

    cache_tier: str
    capacity_units: int
    hit_rate_pct: float


@event
class CacheTierTrackingOverflowed(Event):
    """More keys than ``max_unsynced_keys`` missed their write or delete in a tier: the hierarchy
    stops using the tier until it has cleared it (it might hold older values of any key)."""

    cache_tier: str
    unsynced_keys: int


@event
class CacheTierCleared(Event):
    """The hierarchy emptied a tier it had lost track of, and uses it again."""

    cache_tier: str
    entries_removed: int


@event
class CacheTiersMigrated(Event):
    """One background tier-migration round (``novacron.cache.tiering``): nothing moves when busy."""

    request_rate_per_s: float
    moved_up: int
    moved_down: int
    moved_bytes: int

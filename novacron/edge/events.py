"""Edge events: where each service was placed, and what its requests saw over the run."""

from __future__ import annotations

from novacron.events import Event, event


@event
class EdgeServicePlaced(Event):
    """The scheduler put a service at an edge site or in the cloud (``site`` = 'cloud')."""

    service: str
    site: str
    network_rtt_ms: float
    """round trip from the service's users to where it runs"""
    predicted_p95_ms: float
    budget_ms: float
    """the service's p95 latency target the placement aimed for"""
    hosts_feasible: int


@event
class EdgeServiceMeasured(Event):
    """One service's requests over the whole run, from the per-interval queueing model."""

    service: str
    requests_arrived: float
    requests_served: float
    requests_shed: float
    """arrived while the service was overloaded beyond its cores (shed by admission control)"""
    requests_unavailable: float
    """arrived while the service had nowhere to run (edge site down, failover not done)"""
    response_p50_ms: float
    response_p95_ms: float
    response_p99_ms: float
    throughput_ops_s: float
    uptime_pct: float
    cloud_fraction: float
    """share of served requests served from the cloud (placement or failover)"""

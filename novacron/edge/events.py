"""Edge events: where each service was placed, and what its requests saw over the run."""

from __future__ import annotations

from novacron.edge.service import ServiceResult
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
class EdgeServiceMeasured(Event, ServiceResult):
    """One service's requests over the whole run, from the per-interval queueing model (fields:
    ``ServiceResult``)."""

    service: str

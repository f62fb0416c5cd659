"""Events of the critical operations sent through PBFT (``[control] critical_ops = "bft"``).

- ``CriticalOpCommitted``: a critical operation (``op``: ``evict`` -- a crashed host's VM restarted
  elsewhere, which fences the host for it; ``destroy`` -- a VM's allocation released for good)
  about ``subject`` was committed by the replicas: its client got ``f + 1`` matching replies
  ``latency_ms`` after it first sent the request.
"""

from __future__ import annotations

from novacron.events import Event, event


@event
class CriticalOpCommitted(Event):
    op: str
    subject: str
    latency_ms: float
    replicas: int

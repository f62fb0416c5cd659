"""Catalogue metrics of the critical operations sent through PBFT, from their events alone.

``control.critical_ops`` (how many committed), ``control.critical_op_p50_ms`` and
``control.critical_op_p99_ms`` (client latency: first send until ``f + 1`` matching replies).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from novacron.bft.events import CriticalOpCommitted
from novacron.events import Event
from novacron.streaming import InMemoryColumn, Metrics


class CriticalOpFold:
    def __init__(self) -> None:
        self.latency_ms = InMemoryColumn()

    def handlers(self) -> Mapping[type[Event], Callable[[Any], None]]:
        return {CriticalOpCommitted: self._committed}

    def _committed(self, ev: CriticalOpCommitted) -> None:
        self.latency_ms.append(ev.latency_ms)

    def result(self) -> Metrics:
        if not len(self.latency_ms):
            return {}
        return {"control.critical_ops": float(len(self.latency_ms)),
                "control.critical_op_p50_ms": self.latency_ms.percentile(50),
                "control.critical_op_p99_ms": self.latency_ms.percentile(99)}

"""Events of the placement scheduler (decisions, rebalancing, quality samples, host power)."""

from __future__ import annotations

from novacron.events import Event, event
from novacron.scheduler.quality import QualityFigures


@event
class PlacementDecided(Event):
    """The scheduler chose a host for a VM (the ``VMPlaced`` that follows records the placement)."""

    vm_id: str
    host_id: str
    hosts_feasible: int
    policy_count: int
    cache_hit: bool
    decision_ms: float
    """Modelled cost of the decision (a runtime's calibrated model: logs stay deterministic)."""


@event
class PlacementQualitySampled(QualityFigures, Event):
    """The placement's quality at ``t_s`` (the figures ``QualityFigures`` lists)."""


@event
class RebalancePlanned(Event):
    rebalance_mode: str
    moves_planned: int
    imbalance_before_pct: float
    imbalance_after_pct: float
    hosts_to_power_off: int


@event
class RebalanceMoveStarted(Event):
    """A VM starts moving for the rebalancer; ``VMMoved`` marks the end."""

    vm_id: str
    from_host_id: str
    host_id: str


@event
class RebalanceMoveRefused(Event):
    """A planned move did not happen: admission refused it when it was about to start, or
    another component moved the VM while it was in flight. The next round re-plans."""

    vm_id: str
    reason: str


@event
class HostPowerChanged(Event):
    host_id: str
    powered_on: bool

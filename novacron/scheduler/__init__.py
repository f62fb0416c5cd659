"""Placement scheduler: pure, vectorised, deterministic.

- ``state``: ``HostTable`` (host state as numpy arrays) and ``PlacementRequest``.
- ``policies`` / ``framework``: filters and weighted scorers; ``Scheduler`` filters, scores and
  selects (seeded tie-break, optional k8s-style scoring window).
- ``config``: the ``[scheduler]`` scenario section and ``build_scheduler``.
- ``cache``: the decision cache (TTL, drift invalidation, feasibility re-check on every hit).
- ``admission`` / ``rebalance``: the ``MoveAdmission`` protocol with default caps, and the
  DRS-style balance and consolidation planners.
- ``quality``: hosts used against the lower bound, fragmentation, stranding, imbalance, headroom.
- ``events`` / ``metrics`` / ``plots``: what a run records and reports.
- ``optimal``: the CP-SAT optimum of small instances (``opt`` extra).

No I/O; time (``now_s``) and randomness (``numpy.random.Generator``) are injected.
"""

from novacron.scheduler.admission import ConcurrencyCaps, ExecutedAdmission, Move, MoveAdmission
from novacron.scheduler.cache import CachingScheduler, DecisionCache
from novacron.scheduler.config import SchedulerConfig, build_scheduler
from novacron.scheduler.framework import Decision, Scheduler, WeightedScorer
from novacron.scheduler.quality import PlacementQuality, measure
from novacron.scheduler.rebalance import PlacedVM, RebalanceConfig, RebalancePlan, plan_balance, plan_consolidation
from novacron.scheduler.state import HostTable, PlacementRequest

__all__ = [
    "CachingScheduler",
    "ConcurrencyCaps",
    "Decision",
    "DecisionCache",
    "ExecutedAdmission",
    "HostTable",
    "Move",
    "MoveAdmission",
    "PlacedVM",
    "PlacementQuality",
    "PlacementRequest",
    "RebalanceConfig",
    "RebalancePlan",
    "Scheduler",
    "SchedulerConfig",
    "WeightedScorer",
    "build_scheduler",
    "measure",
    "plan_balance",
    "plan_consolidation",
]

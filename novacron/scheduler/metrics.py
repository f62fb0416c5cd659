"""``scheduler.*`` metrics from a run's events.

Quality figures are read from the last ``PlacementQualitySampled`` (the placement at the end of
the run) except the headroom, which is the minimum over every sample (the least headroom left on
any host at any sample, checked against the targets), and imbalance, also reported as a mean.
``scheduler.policy_eval_p99_ms`` is the p99 of ``PlacementDecided.decision_ms`` over full
evaluations (cache hits excluded): the runtime's calibrated cost model in the simulation (see
``sim/scheduling.py``), so a seed's metrics repeat exactly; the benchmarks measure the real cost.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from novacron.cluster.events import RunFinished, VMMoved
from novacron.scheduler.events import PlacementDecided, PlacementQualitySampled, RebalanceMoveStarted, RebalancePlanned

if TYPE_CHECKING:
    from novacron.metrics import EventsByType

HEADROOM_FIELDS = ("cpu", "memory", "network", "io")


def scheduler_metrics(events: EventsByType) -> dict[str, float]:
    metrics: dict[str, float] = {}
    decided = events.of(PlacementDecided)
    if decided:
        hits = sum(e.cache_hit for e in decided)
        metrics["scheduler.decision_cache_hit_rate_pct"] = 100.0 * hits / len(decided)
        metrics["scheduler.policy_count"] = float(max(e.policy_count for e in decided))
        evaluated = [e.decision_ms for e in decided if not e.cache_hit]
        if evaluated:
            metrics["scheduler.policy_eval_p99_ms"] = float(np.percentile(evaluated, 99))
    samples = events.of(PlacementQualitySampled)
    if samples:
        metrics.update(_quality(samples))
    if events.of(RebalancePlanned):
        finished = events.of(RunFinished)
        moved = events.of(VMMoved)
        duration_s = finished[-1].duration_s if finished else max((e.t_s for e in moved), default=0.0)
        moves = len(events.of(RebalanceMoveStarted))
        metrics["scheduler.migrations"] = float(moves)
        metrics["scheduler.migrations_per_hour"] = moves / max(duration_s / 3600.0, 1e-9)
    return metrics


def _quality(samples: list[PlacementQualitySampled]) -> dict[str, float]:
    last = samples[-1]
    bound = max(last.hosts_lower_bound, 1)
    metrics = {
        "scheduler.hosts_used": float(last.hosts_used),
        "scheduler.hosts_lower_bound": float(last.hosts_lower_bound),
        "scheduler.hosts_over_lower_bound_pct": 100.0 * (last.hosts_used - bound) / bound,
        "scheduler.fragmentation_pct": last.fragmentation_pct,
        "scheduler.stranded_cpu_pct": last.stranded_cpu_pct,
        "scheduler.stranded_memory_pct": last.stranded_memory_pct,
        "scheduler.imbalance_pct": last.imbalance_pct,
        "scheduler.imbalance_mean_pct": float(np.mean([s.imbalance_pct for s in samples])),
    }
    for name in HEADROOM_FIELDS:
        field = f"min_headroom_{name}_pct"
        metrics[f"scheduler.{field}"] = min(getattr(s, field) for s in samples)
    return metrics

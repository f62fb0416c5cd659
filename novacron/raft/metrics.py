"""Catalogue metrics of the Raft managers, computed from their events alone.

``raft.formation_s`` (boot until every manager knows a committed entry), ``raft.failover_ms``
(worst leader crash until a new leader committed), ``raft.election_after_crash_ms`` (worst
crash until a new leader was elected), ``raft.partition_recovery_s`` (worst heal until every
manager follows one caught-up leader). Configuration metrics (heartbeat interval, timeout
range, manager count) come from the scenario and are added by the runtime (``config_metrics``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from novacron.raft.events import (
    ClusterFormed,
    FailoverCompleted,
    LeaderElected,
    PartitionRecovered,
    TermStarted,
)

if TYPE_CHECKING:
    from novacron.metrics import EventsByType


def raft_metrics(events: EventsByType) -> dict[str, float]:
    metrics: dict[str, float] = {}
    formed = events.of(ClusterFormed)
    if formed:
        metrics["raft.formation_s"] = formed[0].formation_s
    failovers = events.of(FailoverCompleted)
    if failovers:
        failover_ms = np.array([f.failover_ms for f in failovers])
        elect_ms = np.array([f.elect_ms for f in failovers])
        metrics["raft.failover_ms"] = float(failover_ms.max())
        metrics["raft.failover_p50_ms"] = float(np.percentile(failover_ms, 50))
        metrics["raft.election_after_crash_ms"] = float(elect_ms.max())
    recovered = events.of(PartitionRecovered)
    if recovered:
        metrics["raft.partition_recovery_s"] = max(r.recovery_s for r in recovered)
        metrics["raft.partition_leader_changes"] = float(sum(r.leader_changed for r in recovered))
    elected = events.of(LeaderElected)
    if elected:
        metrics["raft.leaders_elected"] = float(len(elected))
        metrics["raft.terms_started"] = float(len(events.of(TermStarted)))
    return metrics


def raft_config_metrics(*, managers: int, tick_ms: float, heartbeat_ticks: int, election_ticks_min: int,
                        election_ticks_max: int, formation_timeout_s: float) -> dict[str, float]:
    """The configuration half of the catalogue's Raft rows (the analysis: 150-300 ms, 50 ms, 1-7)."""
    low_ms, high_ms = election_ticks_min * tick_ms, election_ticks_max * tick_ms
    return {
        "raft.managers": float(managers),
        "raft.heartbeat_interval_ms": heartbeat_ticks * tick_ms,
        "raft.election_timeout_min_ms": low_ms,
        "raft.election_timeout_max_ms": high_ms,
        "raft.election_timeout_ms_range_ok": 1.0 if 150.0 <= low_ms <= high_ms <= 300.0 else 0.0,
        "raft.formation_timeout_s": formation_timeout_s,
    }

"""Catalogue metrics of the Raft managers, computed from their events alone.

``raft.formation_s`` (boot until every manager knows a committed entry), ``raft.failover_ms``
(worst leader crash until a new leader committed), ``raft.election_after_crash_ms`` (worst
crash until a new leader was elected) -- none of the failover metrics when a leader crash is
still not failed over at the end of the log: the worst failover is then unknown, and the ones
that completed would pass for it --, ``raft.partition_recovery_s`` (worst heal until every
manager follows one caught-up leader; likewise none while a partition is still on, or healed
and not recovered from, at the end). Configuration metrics (heartbeat interval, timeout
range, manager count) come from the scenario and are added by the runtime (``config_metrics``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from novacron.events import Event
from novacron.raft.events import (
    ClusterFormed,
    FailoverCompleted,
    LeaderCommitted,
    LeaderElected,
    LeaderSteppedDown,
    ManagerCrashed,
    NetworkHealed,
    NetworkPartitioned,
    PartitionRecovered,
    TermStarted,
)
from novacron.raft.observer import RaftClusterFold
from novacron.streaming import EventsByType, fold_events


class RaftFold:
    """Leader changes, failovers and recoveries: a handful per run, kept as values."""

    def __init__(self) -> None:
        self.formation_s: float | None = None
        self.failover_ms: list[float] = []
        self.elect_ms: list[float] = []
        self.recovery_s: list[float] = []
        self.leader_changes = 0
        self.elected = 0
        self.terms = 0
        self.cluster = RaftClusterFold()
        """The cluster-wide fold replayed, to see a failover still open at the end."""
        self.partitions_on = 0
        self.awaiting_recovery = False
        """A heal not recovered from yet (``PartitionRecovered`` follows the last heal)."""

    def handlers(self) -> Mapping[type[Event], Callable[[Any], None]]:
        return {ClusterFormed: self._formed, FailoverCompleted: self._failover, PartitionRecovered: self._recovered,
                LeaderElected: self._elected, TermStarted: self._term, ManagerCrashed: self._cluster_event,
                LeaderSteppedDown: self._cluster_event, LeaderCommitted: self._cluster_event,
                NetworkPartitioned: self._partitioned, NetworkHealed: self._healed}

    def _formed(self, ev: ClusterFormed) -> None:
        if self.formation_s is None:
            self.formation_s = ev.formation_s

    def _failover(self, ev: FailoverCompleted) -> None:
        self.failover_ms.append(ev.failover_ms)
        self.elect_ms.append(ev.elect_ms)

    def _partitioned(self, _: NetworkPartitioned) -> None:
        self.partitions_on += 1

    def _healed(self, _: NetworkHealed) -> None:
        self.partitions_on = max(0, self.partitions_on - 1)
        self.awaiting_recovery = True

    def _recovered(self, ev: PartitionRecovered) -> None:
        self.awaiting_recovery = False
        self.recovery_s.append(ev.recovery_s)
        self.leader_changes += ev.leader_changed

    def _elected(self, ev: LeaderElected) -> None:
        self.elected += 1
        self.cluster.add(ev)

    def _cluster_event(self, ev: Event) -> None:
        self.cluster.add(ev)

    def _term(self, _: TermStarted) -> None:
        self.terms += 1

    def result(self) -> dict[str, float]:
        metrics: dict[str, float] = {}
        if self.formation_s is not None:
            metrics["raft.formation_s"] = self.formation_s
        if self.failover_ms and not self.cluster.failover_open:
            failover_ms = np.array(self.failover_ms)
            metrics["raft.failover_ms"] = float(failover_ms.max())
            metrics["raft.failover_p50_ms"] = float(np.percentile(failover_ms, 50))
            metrics["raft.election_after_crash_ms"] = float(np.array(self.elect_ms).max())
        if self.recovery_s and not self.partitions_on and not self.awaiting_recovery:
            metrics["raft.partition_recovery_s"] = max(self.recovery_s)
            metrics["raft.partition_leader_changes"] = float(self.leader_changes)
        if self.elected:
            metrics["raft.leaders_elected"] = float(self.elected)
            metrics["raft.terms_started"] = float(self.terms)
        return metrics


def raft_metrics(events: EventsByType) -> dict[str, float]:
    return fold_events(RaftFold(), events)


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

"""The ``[raft]`` section's scripted faults, in one place for every driver of the simulated managers.

Theory of operation
-------------------
``leader_crash_at_s`` crashes whoever leads at that time (mid-election: whoever leads 100 ms
later) and restarts it ``restart_after_s`` later; ``partition_at_s`` isolates the leader from the
other managers for ``partition_duration_s`` -- with no leader then, the lowest-numbered live
manager; with every manager down, nobody (``ScriptedFaultSkipped`` says so; cutting off a dead
manager would cut off nobody). The drivers differ only in their clock: the
stand-alone managers (``sim.raft.component``) schedule on the cluster's own clock, the
Raft-backed control plane (``sim.raft.control_plane``) on SimPy's (its cluster clock lags behind
by the intervals it was frozen). So a driver passes ``at(at_s, action)`` and ``now_s()`` and this
object decides what happens.
"""

from __future__ import annotations

from collections.abc import Callable

from novacron.raft.node import RaftConfig
from novacron.raft.scenario import RaftSection
from sim.raft.cluster import ClusterSettings, RaftCluster
from sim.raft.reporter import RaftReporter

Schedule = Callable[[float, Callable[[], None]], None]
"""``at(at_s, action)``: run ``action`` at absolute time ``at_s`` on the driver's clock."""

RETRY_CRASH_S = 0.1


def partition_target(cluster: RaftCluster) -> int | None:
    """Whom the scripted partition isolates: the leader; with none, the lowest-numbered live
    manager; with every manager down, nobody (None)."""
    leader = cluster.leader()
    if leader is not None:
        return leader.id
    return min((m.node_id for m in cluster.alive()), default=None)


def settings_for(section: RaftSection) -> ClusterSettings:
    raft = RaftConfig(node_id=1, election_ticks_min=section.election_ticks_min,
                      election_ticks_max=section.election_ticks_max, heartbeat_ticks=section.heartbeat_ticks,
                      pre_vote=section.pre_vote, check_quorum=section.check_quorum,
                      commit_broadcast=section.commit_broadcast)
    return ClusterSettings(managers=section.managers, tick_s=section.tick_ms / 1000,
                           snapshot_every=section.snapshot_every, raft=raft)


class ScriptedFaults:
    """Crash the leader, isolate the leader; see the module docstring."""

    def __init__(self, cluster: RaftCluster, reporter: RaftReporter, section: RaftSection, *, at: Schedule,
                 now_s: Callable[[], float]) -> None:
        self._cluster, self._reporter, self._section = cluster, reporter, section
        self._at, self._now_s = at, now_s

    def schedule(self) -> None:
        if self._section.leader_crash_at_s > 0:
            self._at(self._section.leader_crash_at_s, self.crash_leader)
        if self._section.partition_at_s > 0:
            self._at(self._section.partition_at_s, self.isolate_leader)

    def crash_leader(self) -> None:
        leader = self._cluster.leader()
        if leader is None:  # mid-election: crash whoever leads next
            self._at(self._now_s() + RETRY_CRASH_S, self.crash_leader)
            return
        victim = leader.id
        self._cluster.crash(victim)
        self._at(self._now_s() + self._section.restart_after_s, lambda: self._cluster.restart(victim))

    def isolate_leader(self) -> None:
        cluster = self._cluster
        isolated = partition_target(cluster)
        if isolated is None:
            self._reporter.fault_skipped("partition", "every manager is down: nobody to isolate")
            return
        groups = [[isolated], [m for m in sorted(cluster.managers) if m != isolated]]
        number = cluster.network.partition(groups)
        self._reporter.partitioned(cluster, groups, True)

        def heal() -> None:  # this partition only: one of the fault model's may still be on
            cluster.network.heal_partition(number)
            self._reporter.healed(cluster, groups)
        self._at(self._now_s() + self._section.partition_duration_s, heal)

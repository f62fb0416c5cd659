"""Turns what a simulated Raft cluster does into NovaCron events (``novacron.raft.events``).

Theory of operation
-------------------
The core reports role changes in ``Ready.soft_state``; this hook watches them, plus crashes,
partitions and every node's commit index, and derives the facts the catalogue asks about:

- formation: from boot (t = 0) until every manager's commit index covers an entry, i.e. a
  leader was elected and its first entry reached everyone (``ClusterFormed``);
- election after a crash: from the leader's crash until some manager becomes leader;
- failover: from the crash until the new leader has committed an entry of its own term -- the
  moment the cluster accepts writes again (``FailoverCompleted``);
- partition recovery: from the heal until every live manager follows the same live leader and
  has committed at least what any manager had committed at the heal (``PartitionRecovered``).

Durations are measured on the cluster's clock and stored in the events' fields, so they are
exact even when a runtime stamps events coarsely.
"""

from __future__ import annotations

from typing import Any

from novacron.ports import EventSink
from novacron.raft.events import (
    ClusterFormed,
    FailoverCompleted,
    LeaderCommitted,
    LeaderElected,
    LeaderSteppedDown,
    ManagerCrashed,
    ManagerStarted,
    MembershipChanged,
    NetworkHealed,
    NetworkPartitioned,
    PartitionRecovered,
    SnapshotInstalled,
    TermStarted,
)
from novacron.raft.messages import NO_NODE
from novacron.raft.node import CANDIDATE, LEADER
from sim.raft.cluster import Hook, Manager, RaftCluster


class RaftReporter(Hook):
    def __init__(self, sink: EventSink) -> None:
        self.sink = sink
        self.formed_at_s: float | None = None
        self.leaderless_since_s: float | None = 0.0
        self.crash_at_s: float | None = None
        self.elected_after_crash_at_s: float | None = None
        self.awaiting_commit: dict[int, int] = {}
        self.heal_at_s: float | None = None
        self.heal_commit = 0
        self.leader_before_partition = NO_NODE
        self.election_times_ms: list[float] = []
        self._voters: dict[int, tuple[int, ...]] = {}

    def _emit(self, cls: type[Any], manager_id: int | None = None, **fields: Any) -> None:
        source = f"manager-{manager_id}" if manager_id is not None else "raft"
        if manager_id is not None:
            fields["manager_id"] = manager_id
        self.sink.emit(cls, source=source, **fields)

    # -- hook methods --------------------------------------------------------------------------

    def role_changed(self, cluster: RaftCluster, manager: Manager, old_role: str, old_leader: int) -> None:
        node = manager.node
        if node is None:
            return
        if old_role == LEADER and node.role != LEADER:
            self._emit(LeaderSteppedDown, node.id, term=node.term)
            if cluster.leader() is None:
                self.leaderless_since_s = cluster.now_s
        if node.role == CANDIDATE and old_role != CANDIDATE:
            self._emit(TermStarted, node.id, term=node.term)
        if node.role == LEADER and old_role != LEADER:
            self._leader_elected(cluster, manager)

    def _leader_elected(self, cluster: RaftCluster, manager: Manager) -> None:
        node = manager.node
        assert node is not None
        since = self.leaderless_since_s if self.leaderless_since_s is not None else cluster.now_s
        leaderless_ms = (cluster.now_s - since) * 1000
        self._emit(LeaderElected, node.id, term=node.term, leaderless_ms=leaderless_ms)
        self.election_times_ms.append(leaderless_ms)
        self.leaderless_since_s = None
        self.awaiting_commit[node.id] = node.term
        if self.crash_at_s is not None and self.elected_after_crash_at_s is None:
            self.elected_after_crash_at_s = cluster.now_s

    def crashed(self, cluster: RaftCluster, manager: Manager, was_leader: bool) -> None:
        self._emit(ManagerCrashed, manager.node_id, was_leader=was_leader)
        if was_leader:
            self.crash_at_s = cluster.now_s
            self.elected_after_crash_at_s = None
            if cluster.leader() is None:
                self.leaderless_since_s = cluster.now_s

    def restarted(self, cluster: RaftCluster, manager: Manager) -> None:
        self._emit(ManagerStarted, manager.node_id, restarted=True)

    def snapshot_installed(self, cluster: RaftCluster, manager: Manager, index: int) -> None:
        self._emit(SnapshotInstalled, manager.node_id, log_index=index)

    def stepped(self, cluster: RaftCluster, manager: Manager) -> None:
        node = manager.node
        if node is None:
            return
        if node.voters != self._voters.setdefault(node.id, node.voters):
            self._voters[node.id] = node.voters
            self._emit(MembershipChanged, node.id, voters=node.voters)
        term = self.awaiting_commit.get(node.id)
        if term is not None and node.role == LEADER and node.term == term and node.log.term(node.log.committed) == term:
            del self.awaiting_commit[node.id]
            self._leader_committed(cluster, node.id, term, node.log.committed)
        if self.formed_at_s is None:
            self._check_formed(cluster)
        if self.heal_at_s is not None:
            self._check_recovered(cluster)

    # -- derived facts ---------------------------------------------------------------------------

    def _leader_committed(self, cluster: RaftCluster, node_id: int, term: int, index: int) -> None:
        self._emit(LeaderCommitted, node_id, term=term, log_index=index)
        if self.crash_at_s is not None and self.elected_after_crash_at_s is not None:
            self.sink.emit(FailoverCompleted, source="raft", failover_ms=(cluster.now_s - self.crash_at_s) * 1000,
                           elect_ms=(self.elected_after_crash_at_s - self.crash_at_s) * 1000, term=term)
            self.crash_at_s = self.elected_after_crash_at_s = None

    def _check_formed(self, cluster: RaftCluster) -> None:
        if all(m.node is not None and m.node.log.committed >= 1 for m in cluster.managers.values()):
            self.formed_at_s = cluster.now_s
            self.sink.emit(ClusterFormed, source="raft", formation_s=cluster.now_s, managers=len(cluster.managers))

    def partitioned(self, cluster: RaftCluster, groups: list[list[int]], symmetric: bool) -> None:
        leader = cluster.leader()
        self.leader_before_partition = leader.id if leader is not None else NO_NODE
        self.sink.emit(NetworkPartitioned, source="network", partition_groups=str(groups), symmetric=symmetric)

    def healed(self, cluster: RaftCluster, groups: list[list[int]]) -> None:
        self.heal_at_s = cluster.now_s
        self.heal_commit = max((m.node.log.committed for m in cluster.alive() if m.node is not None), default=0)
        self.sink.emit(NetworkHealed, source="network", partition_groups=str(groups))

    def _check_recovered(self, cluster: RaftCluster) -> None:
        leader = cluster.leader()
        if leader is None or self.heal_at_s is None:
            return
        for manager in cluster.alive():
            node = manager.node
            assert node is not None
            if node.leader != leader.id or node.term != leader.term or node.log.committed < self.heal_commit:
                return
        self.sink.emit(PartitionRecovered, source="raft", recovery_s=cluster.now_s - self.heal_at_s,
                       leader_changed=leader.id != self.leader_before_partition)
        self.heal_at_s = None

"""Turns what a simulated Raft cluster does into NovaCron events (``novacron.raft.events``).

Theory of operation
-------------------
Every node's Readies go through the core's ``RaftObserver`` (one per manager incarnation), the
same observer a real manager process uses, so per-node events (``TermStarted``,
``LeaderElected``, ``LeaderSteppedDown``, ``LeaderCommitted``, ``SnapshotInstalled``) mean the
same in both runtimes. As the fault injector, this hook also records crashes, restarts,
partitions and heals.

Cluster-wide facts are a fold over the per-node events in time order
(``RaftClusterFold``: leaderless gaps, ``FailoverCompleted``), fed as the run goes. Two more need
every node's commit index at once, which only the simulation can see:

- formation: from boot (t = 0) until every manager's commit index covers an entry, i.e. a
  leader was elected and its first entry reached everyone (``ClusterFormed``);
- partition recovery: from the heal until every live manager follows the same live leader and
  has committed at least what any manager had committed at the heal (``PartitionRecovered``).

Durations are measured on the cluster's clock and stored in the events' fields, so they are
exact even when a runtime stamps events coarsely.

While the Raft control plane steps the cluster ahead of SimPy's clock (``sim.raft.control_plane``)
an event cannot be recorded yet: it would be stamped with SimPy's earlier time. ``defer_to`` is
then a list, and each emission (with the fold it feeds) waits there as a call, in order, until the
control plane makes them once SimPy's clock is at the step's time. The reporter's own state
(observers, formation, recovery) moves at the step, as before; only recording waits.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

from novacron.events import Event
from novacron.ports import EventSink
from novacron.raft.events import (
    ClusterFormed,
    ManagerCrashed,
    ManagerStarted,
    MembershipChanged,
    NetworkHealed,
    NetworkPartitioned,
    PartitionRecovered,
    ScriptedFaultSkipped,
)
from novacron.raft.messages import NO_NODE, Ready
from novacron.raft.observer import Observation, RaftClusterFold, RaftObserver
from sim.raft.cluster import Hook, Manager, RaftCluster


class RaftReporter(Hook):
    def __init__(self, sink: EventSink) -> None:
        self.sink = sink
        self.fold = RaftClusterFold()
        self.formed_at_s: float | None = None
        self.heal_at_s: float | None = None
        self.heal_commit = 0
        self.leader_before_partition = NO_NODE
        self._observers: dict[int, tuple[int, RaftObserver]] = {}
        """manager id -> (incarnation, its observer): a restart starts a fresh observer."""
        self._voters: dict[int, tuple[int, ...]] = {}
        self.defer_to: list[Callable[[], None]] | None = None
        """While not None, emissions wait here as calls, in order (see the module docstring)."""
        self.deferred = 0
        """How many emissions waited in ``defer_to``."""

    def _emit(self, cls: type[Any], at_s: float, source: str, **fields: Any) -> None:
        if self.defer_to is not None:
            self.deferred += 1
            self.defer_to.append(partial(self._emit_now, cls, at_s, source, fields))
            return
        self._emit_now(cls, at_s, source, fields)

    def _emit_now(self, cls: type[Any], at_s: float, source: str, fields: dict[str, Any]) -> None:
        ev: Event = self.sink.emit(cls, source=source, **fields)
        for derived in self.fold.add(ev, at_s):
            self._emit_now(derived.cls, at_s, "raft", derived.fields)

    def _emit_observed(self, observed: Observation, at_s: float, source: str) -> None:
        self._emit(observed.cls, at_s, source, **observed.fields)

    # -- hook methods --------------------------------------------------------------------------

    def ready_handled(self, cluster: RaftCluster, manager: Manager, ready: Ready) -> None:
        node = manager.node
        assert node is not None
        seen = self._observers.get(manager.node_id)
        if seen is None or seen[0] != manager.incarnation:  # a boot: the cluster handles its first Ready at once
            self._emit(ManagerStarted, cluster.now_s, f"manager-{node.id}", manager_id=node.id,
                       restarted=seen is not None)
            seen = (manager.incarnation, RaftObserver(node.id, term=node.term, now_s=cluster.now_s))
            self._observers[manager.node_id] = seen
        observer = seen[1]
        for observed in observer.observe(ready, cluster.now_s):
            self._emit_observed(observed, cluster.now_s, observer.source)

    def crashed(self, cluster: RaftCluster, manager: Manager, was_leader: bool) -> None:
        self._emit(ManagerCrashed, cluster.now_s, f"manager-{manager.node_id}", manager_id=manager.node_id,
                   was_leader=was_leader)

    def stepped(self, cluster: RaftCluster, manager: Manager) -> None:
        node = manager.node
        if node is None:
            return
        if node.voters != self._voters.setdefault(node.id, node.voters):
            self._voters[node.id] = node.voters
            self._emit(MembershipChanged, cluster.now_s, f"manager-{node.id}", manager_id=node.id,
                       voters=node.voters)
        if self.formed_at_s is None:
            self._check_formed(cluster)
        if self.heal_at_s is not None:
            self._check_recovered(cluster)

    # -- facts that need every node at once -------------------------------------------------------

    def _check_formed(self, cluster: RaftCluster) -> None:
        if all(m.node is not None and m.node.log.committed >= 1 for m in cluster.managers.values()):
            self.formed_at_s = cluster.now_s
            self._emit(ClusterFormed, cluster.now_s, "raft", formation_s=cluster.now_s, managers=len(cluster.managers))

    def partitioned(self, cluster: RaftCluster, groups: list[list[int]], symmetric: bool) -> None:
        leader = cluster.leader()
        self.leader_before_partition = leader.id if leader is not None else NO_NODE
        self.sink.emit(NetworkPartitioned, source="network", partition_groups=str(groups), symmetric=symmetric)

    def fault_skipped(self, fault: str, reason: str) -> None:
        self.sink.emit(ScriptedFaultSkipped, source="raft", fault=fault, reason=reason)

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
        self._emit(PartitionRecovered, cluster.now_s, "raft", recovery_s=cluster.now_s - self.heal_at_s,
                   leader_changed=leader.id != self.leader_before_partition)
        self.heal_at_s = None

"""One observer of a Raft node's ``Ready`` stream, for every runtime, plus the cluster-wide fold.

Theory of operation
-------------------
The core node never emits events; it reports what changed in each ``Ready`` (``hard_state`` when
term, vote or commit moved, ``soft_state`` when role or known leader moved, the committed
entries, an incoming snapshot). ``RaftObserver`` watches ONE node's Readies -- in the order the
runtime handles them, with the runtime's clock as ``now_s`` -- and derives that node's events
(``novacron.raft.events`` documents what each one means). Both runtimes feed it the same way: the
simulated cluster (``sim.raft.reporter``) and a real manager process
(``backends.manager.runtime``), so an event means the same in simulation and for real.

Facts about the whole cluster (how long it had no leader, how long a failover took) are not
visible to any one node. They are a fold over the per-node events of all managers merged in time
order (``RaftClusterFold``); the simulation folds as it runs, the real managers' logs are folded
after merging them (``fold_cluster``). A crash is a fault, not something a node can report: the
fault injector (the simulation's, or a test harness for real processes) records
``ManagerCrashed``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from novacron.events import Event
from novacron.raft.events import (
    FailoverCompleted,
    LeaderCommitted,
    LeaderElected,
    LeaderSteppedDown,
    ManagerCrashed,
    SnapshotInstalled,
    TermStarted,
)
from novacron.raft.messages import NO_NODE, Ready

LEADER_ROLE = "leader"


@dataclass(frozen=True, slots=True)
class Observation:
    """An event to emit: its class and fields (the runtime's ``EventSink`` stamps time and seq)."""

    cls: type[Event]
    fields: dict[str, Any]


class RaftObserver:
    """Turns one node's Readies into its events (``observe``); holds what it saw last."""

    def __init__(self, node_id: int, *, term: int, now_s: float) -> None:
        self.node_id = node_id
        self.term = term
        self.role = "follower"
        self.leader = NO_NODE
        self.leaderless_since_s = now_s
        """When this node last stopped knowing a leader (its boot counts as such a moment)."""
        self._awaiting_commit = False

    @property
    def source(self) -> str:
        return f"manager-{self.node_id}"

    def observe(self, ready: Ready, now_s: float) -> list[Observation]:
        found: list[Observation] = []
        if ready.snapshot is not None:
            found.append(self._event(SnapshotInstalled, log_index=ready.snapshot.index))
        hard = ready.hard_state
        if hard is not None and hard.term > self.term:
            self.term = hard.term
            if hard.vote == self.node_id:  # only a node that campaigns votes for itself in a new term
                found.append(self._event(TermStarted, term=hard.term))
        if ready.soft_state is not None:
            found.extend(self._role_changed(ready.soft_state.role, ready.soft_state.leader, now_s))
        if self._awaiting_commit and any(e.term == self.term for e in ready.committed_entries):
            self._awaiting_commit = False
            found.append(self._event(LeaderCommitted, term=self.term, log_index=ready.committed_entries[-1].index))
        return found

    def _role_changed(self, role: str, leader: int, now_s: float) -> list[Observation]:
        found = []
        if role == LEADER_ROLE and self.role != LEADER_ROLE:
            leaderless_ms = (now_s - self.leaderless_since_s) * 1000
            found.append(self._event(LeaderElected, term=self.term, leaderless_ms=leaderless_ms))
            self._awaiting_commit = True
        elif self.role == LEADER_ROLE and role != LEADER_ROLE:
            found.append(self._event(LeaderSteppedDown, term=self.term))
            self._awaiting_commit = False
        if leader == NO_NODE and self.leader != NO_NODE:
            self.leaderless_since_s = now_s
        self.role, self.leader = role, leader
        return found

    def _event(self, cls: type[Event], **fields: Any) -> Observation:
        return Observation(cls, {"manager_id": self.node_id, **fields})


@dataclass
class RaftClusterFold:
    """Cluster-wide facts folded from every manager's events in time order (``add`` one at a time).

    - Leaderless time: the cluster has a leader from a ``LeaderElected`` until that leader steps
      down, crashes, or a leader of a higher term is elected; ``leaderless_ms`` lists the gap
      before each election (the first one counts from t = 0).
    - Failover: from a leader's ``ManagerCrashed`` until the next ``LeaderElected`` of a higher
      term (``elect_ms``) and until that leader's ``LeaderCommitted`` (``failover_ms``): the moment
      the cluster accepts writes again. Yields a ``FailoverCompleted`` observation.
    """

    leaderless_ms: list[float] = field(default_factory=list)
    _leader: int = NO_NODE
    _leader_term: int = 0
    _leaderless_since_s: float | None = 0.0
    _crash_at_s: float | None = None
    _crashed_term: int = 0
    _elected: tuple[int, int, float] | None = None
    """(manager, term, t_s) of the first election after the crash."""

    @property
    def failover_open(self) -> bool:
        """A leader crashed and no new leader has committed since (the failover is not over)."""
        return self._crash_at_s is not None

    def add(self, ev: Event, at_s: float | None = None) -> list[Observation]:
        """Fold one event in; ``at_s`` overrides ``ev.t_s`` when the runtime's clock is finer."""
        now_s = ev.t_s if at_s is None else at_s
        if isinstance(ev, LeaderElected):
            self._elected_event(ev, now_s)
        elif isinstance(ev, LeaderSteppedDown | ManagerCrashed) and ev.manager_id == self._leader:
            self._lost_leader(ev, now_s)
        elif isinstance(ev, LeaderCommitted) and self._crash_at_s is not None and self._elected is not None:
            manager, term, elected_at_s = self._elected
            if (ev.manager_id, ev.term) == (manager, term):
                done = Observation(FailoverCompleted, {"failover_ms": (now_s - self._crash_at_s) * 1000,
                                                       "elect_ms": (elected_at_s - self._crash_at_s) * 1000,
                                                       "term": term})
                self._crash_at_s = self._elected = None
                return [done]
        return []

    def _elected_event(self, ev: LeaderElected, now_s: float) -> None:
        if ev.term < self._leader_term:
            return  # a stale leader in a minority partition: the cluster's leader is newer
        if self._leaderless_since_s is not None:
            self.leaderless_ms.append((now_s - self._leaderless_since_s) * 1000)
        elif self._leader != NO_NODE:
            self.leaderless_ms.append(0.0)  # a higher term took over without a gap we could see
        self._leader, self._leader_term, self._leaderless_since_s = ev.manager_id, ev.term, None
        if self._crash_at_s is not None and self._elected is None and ev.term > self._crashed_term:
            self._elected = (ev.manager_id, ev.term, now_s)

    def _lost_leader(self, ev: LeaderSteppedDown | ManagerCrashed, now_s: float) -> None:
        self._leader = NO_NODE
        self._leaderless_since_s = now_s
        if isinstance(ev, ManagerCrashed) and ev.was_leader:
            self._crash_at_s, self._crashed_term, self._elected = now_s, self._leader_term, None


def fold_cluster(events: Iterable[Event]) -> tuple[RaftClusterFold, list[Observation]]:
    """Fold merged per-manager events (any order: they are sorted by ``t_s``) into cluster facts."""
    fold = RaftClusterFold()
    derived: list[Observation] = []
    for ev in sorted(events, key=lambda e: e.t_s):
        derived.extend(fold.add(ev))
    return fold, derived

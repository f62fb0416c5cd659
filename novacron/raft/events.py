"""Events of the Raft managers, as the runtimes report them (past tense, one type per field name).

The core node never emits events itself: it only reports soft-state changes in ``Ready``. A
runtime (the sim driver, later the TCP runtime) turns those into the events below, stamped by
its ``EventSink``, so simulated and real managers produce the same log and the same metrics.
"""

from __future__ import annotations

from novacron.events import Event, event


@event
class ManagerStarted(Event):
    manager_id: int
    restarted: bool


@event
class ManagerCrashed(Event):
    manager_id: int
    was_leader: bool


@event
class TermStarted(Event):
    manager_id: int
    term: int


@event
class LeaderElected(Event):
    manager_id: int
    term: int
    leaderless_ms: float
    """Time since the cluster last had a live leader (boot, crash or step-down)."""


@event
class LeaderSteppedDown(Event):
    manager_id: int
    term: int


@event
class LeaderCommitted(Event):
    """A new leader committed its first entry: the cluster can serve writes again."""

    manager_id: int
    term: int
    log_index: int


@event
class ClusterFormed(Event):
    """Every manager knows a committed entry (boot until then is the formation time)."""

    formation_s: float
    managers: int


@event
class FailoverCompleted(Event):
    """A leader crashed and a new leader committed an entry of its term."""

    failover_ms: float
    elect_ms: float
    term: int


@event
class NetworkPartitioned(Event):
    partition_groups: str
    symmetric: bool


@event
class NetworkHealed(Event):
    partition_groups: str


@event
class PartitionRecovered(Event):
    """After a heal: every manager follows one leader and has caught up with its commit index."""

    recovery_s: float
    leader_changed: bool


@event
class SnapshotInstalled(Event):
    manager_id: int
    log_index: int


@event
class MembershipChanged(Event):
    manager_id: int
    voters: tuple[int, ...]


@event
class ClusterCommandApplied(Event):
    command_name: str
    vm_id: str
    host_id: str
    log_index: int
    accepted: bool


@event
class ManagerCommandApplied(Event):
    """A committed client command, applied by one manager (every manager emits the same sequence)."""

    manager_id: int
    log_index: int
    batch_position: int
    """Position of the command inside its log entry (the runtime batches proposals per entry)."""
    command_name: str
    command_key: str
    value_bytes: int

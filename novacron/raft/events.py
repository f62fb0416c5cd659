"""Events of the Raft managers, as the runtimes report them (past tense, one type per field name).

The core node never emits events itself: it reports changes in ``Ready``. One observer,
``novacron.raft.observer.RaftObserver``, turns each node's Readies into the per-node events below
in BOTH runtimes (the simulated cluster and the real manager processes), stamped by the runtime's
``EventSink``, so an event means the same wherever it comes from. The one meaning of each:

Per node (``manager_id`` is the node the event is about; source ``manager-<id>``):

- ``TermStarted``: this manager campaigned, i.e. its term rose and it voted for itself in the
  new term (a real election, after PreVote; also a leadership-transfer target). Learning a higher
  term from a message is NOT a term start. A split vote that makes it campaign again starts
  another term.
- ``LeaderElected``: this manager became leader of ``term``. ``leaderless_ms`` is this manager's
  own view: the time, on the runtime's clock, since it last stopped knowing a leader (or since
  it booted) until it won.
- ``LeaderSteppedDown``: this manager stopped being leader (``term`` is its term afterwards).
- ``LeaderCommitted``: this manager, as leader, committed the first entry of its own term.
- ``SnapshotInstalled``: this manager installed a snapshot sent by its leader.
- ``ManagerStarted`` / ``ManagerCrashed``: process (re)start, and a crash recorded by the fault
  injector (a crashed process cannot report itself).

Cluster-wide facts are folds over the per-node events of every manager merged in time order
(``novacron.raft.observer.RaftClusterFold``): ``FailoverCompleted``, the leaderless gaps; and,
in the simulation, which can see every node at once, ``ClusterFormed`` and ``PartitionRecovered``.
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
    """This manager's own view: time since it last knew a leader (or booted) until it won."""


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
class ScriptedFaultSkipped(Event):
    """A ``[raft]`` scripted fault that found nothing to act on (``fault``: ``partition``), and why."""

    fault: str
    reason: str


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


@event
class LeadershipTransferRequested(Event):
    """A runtime asked leader ``manager_id`` to hand leadership to ``target_id`` (dissertation
    3.10); ``reason`` says why (``health``: the leader scored below the preference's minimum)."""

    manager_id: int
    target_id: int
    reason: str

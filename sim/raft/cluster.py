"""A simulated Raft cluster: managers, their disks, the network and one event queue.

Theory of operation
-------------------
The driver is the sim runtime of ``novacron.raft``: it does for each ``RaftNode`` what a real
manager process does -- tick it every ``tick_s``, hand it the messages the network delivers, and
process its ``Ready`` (persist to the manager's ``MemoryStorage``, send the messages through the
``NetworkModel``, apply committed entries to the state machine, compact into a snapshot every
``snapshot_every`` applied entries).

Time is a float in seconds and the queue (``sim.event_queue``) a binary heap of ``(time, seq, kind, ...)``; ``seq``
breaks ties in insertion order, so a run is a pure function of its seed. Every manager ticks on
its own phase (drawn once), as real processes do. A crash drops the node object (volatile state)
and bumps the manager's incarnation so its pending ticks and in-flight deliveries are ignored;
a restart builds a new node from the storage, which survived.

``Hook`` objects observe the run (the invariant checker, the event reporter, the vopr clients);
they are called after every step of a node, so checkers see every intermediate state.

This runs outside SimPy for speed (the vopr runs tens of thousands of clusters); ``sim.raft.component``
advances it inside a SimPy process for the scenario runs.
"""

from __future__ import annotations

import heapq
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from random import Random
from typing import TypeVar

from novacron.raft.messages import NO_NODE, ConfChange, Entry, EntryKind, Message, ReadState, Ready
from novacron.raft.node import LEADER, RaftConfig, RaftNode, Stored, sent_before_durable
from novacron.raft.storage import MemoryStorage
from novacron.statemachine import KeyValueStateMachine, StateMachine
from sim.event_queue import CALL, EventQueue
from sim.network import NetworkModel

T = TypeVar("T")

TICK, DELIVER = 0, 1
MESSAGE_HEADER_BYTES = 64
ENTRY_OVERHEAD_BYTES = 24


def message_size_bytes(m: Message) -> int:
    size = MESSAGE_HEADER_BYTES + len(m.context)
    for entry in m.entries:
        size += ENTRY_OVERHEAD_BYTES + len(entry.data)
    if m.snapshot is not None:
        size += len(m.snapshot.data) + 8 * (len(m.snapshot.voters) + len(m.snapshot.learners))
    return size


@dataclass
class Manager:
    node_id: int
    storage: MemoryStorage
    state_machine: StateMachine
    tick_phase_s: float
    node: RaftNode | None = None
    incarnation: int = 0
    pending_reads: list[ReadState] = field(default_factory=list)
    clock_rate: float = 1.0
    """How fast this manager's clock runs (ticks every ``tick_s / clock_rate`` seconds)."""
    paused_until_s: float = 0.0
    burst_ticks: int = 0
    readies: int = 0
    """How many Readys this manager has handled: the node's term, vote, role, log and commit can
    change only with one (``RaftNode.has_ready``), so an observer can skip steps that had none."""

    def paused(self, now_s: float) -> bool:
        return self.paused_until_s > now_s

    @property
    def alive(self) -> bool:
        return self.node is not None


class Hook:
    """Observer of a cluster run; every method is optional."""

    def stepped(self, cluster: RaftCluster, manager: Manager) -> None: ...

    def applied(self, cluster: RaftCluster, manager: Manager, entry: Entry) -> None: ...

    def read_ready(self, cluster: RaftCluster, manager: Manager, read: ReadState) -> None: ...

    def role_changed(self, cluster: RaftCluster, manager: Manager, old_role: str, old_leader: int) -> None: ...

    def ready_handled(self, cluster: RaftCluster, manager: Manager, ready: Ready) -> None:
        """Called with every ``Ready`` once it was persisted, sent, applied and advanced."""

    def crashed(self, cluster: RaftCluster, manager: Manager, was_leader: bool) -> None: ...

    def restarted(self, cluster: RaftCluster, manager: Manager) -> None: ...

    def snapshot_installed(self, cluster: RaftCluster, manager: Manager, index: int) -> None: ...


@dataclass(frozen=True)
class BootPhase:
    """How a fresh cluster of real manager processes comes up (``backends.manager``): each process
    opens its store and listens ``start_s`` after the common start (drawn uniformly from
    ``start_min_s..start_max_s``), then dials every peer; a dial to a peer that does not listen
    yet fails and is retried after ``backoff_min_s``, doubling up to ``backoff_max_s``
    (``backends.manager.peers.PeerLink``). A message sent on a link that is not up is dropped."""

    start_min_s: float = 0.0
    start_max_s: float = 0.0
    backoff_min_s: float = 0.02
    backoff_max_s: float = 1.0

    def link_up_s(self, dialer_start_s: float, listener_start_s: float) -> float:
        """When the dialer's first attempt at or after the listener's start happens."""
        at_s, backoff_s = dialer_start_s, self.backoff_min_s
        while at_s < listener_start_s:
            at_s += backoff_s
            backoff_s = min(backoff_s * 2, self.backoff_max_s)
        return at_s


@dataclass(frozen=True)
class ClusterSettings:
    """The simulated cluster. Every manager runs ``raft`` (timeouts, PreVote, CheckQuorum, batch
    size: ``RaftConfig`` owns them and their defaults) under its own node id.

    ``handling_s``, ``persist_s`` and ``boot`` model costs of real managers that an ideal cluster
    leaves out (all off by default, so scenario runs and the vopr are unchanged): every message
    leaves ``handling_s`` after the Ready that made it (encoding, the event-loop wake-ups of
    sender and receiver, decoding -- and in the lab the link-stage process every frame passes
    through); the messages of a ``Ready`` that must be made durable (a new term or vote,
    entries, a snapshot) leave ``persist_s`` later still -- the fsync -- except a leader's
    appends and heartbeats, which leave before its own copy is durable (as the real runtime
    sends them); ``boot`` delays each manager's start and its links at cluster creation."""

    managers: int = 5
    learners: tuple[int, ...] = ()
    """Node ids (of ``1..managers``) that join as learners: they receive the log and do not vote."""
    tick_s: float = 0.010
    snapshot_every: int = 0
    raft: RaftConfig = field(default_factory=lambda: RaftConfig(node_id=1))
    handling_s: float = 0.0
    persist_s: float = 0.0
    boot: BootPhase | None = None

    def raft_config(self, node_id: int) -> RaftConfig:
        return replace(self.raft, node_id=node_id)


class RaftCluster(EventQueue):
    def __init__(self, settings: ClusterSettings, network: NetworkModel, rng: Random,
                 state_machine: Callable[[], StateMachine] = KeyValueStateMachine,
                 hooks: list[Hook] | None = None, node_class: Callable[..., RaftNode] = RaftNode) -> None:
        super().__init__()
        self.settings = settings
        self.network = network
        self.rng = rng
        self.hooks = list(hooks or [])
        self._held: tuple[float, list[tuple[float, int, int, object, int]]] | None = None
        """While ticks are held: the cluster time they were held at, and the ticks taken out."""
        self._state_machine = state_machine
        self._node_class = node_class
        self.steps = 0
        self.link_up_s: dict[tuple[int, int], float] = {}
        """With a boot phase: when each directed link comes up; messages before that are dropped."""
        self.messages_lost_at_boot = 0
        members = tuple(range(1, settings.managers + 1))
        self.managers: dict[int, Manager] = {}
        if settings.boot is not None:
            self._boot_later(settings.boot, members)
            return
        for node_id in self.hosted(members):
            self.add_manager(node_id, self.bootstrap_state())

    def bootstrap_state(self) -> Stored:
        """What every member starts from: the configuration (voters and learners) as snapshot 0."""
        learners = self.settings.learners
        voters = tuple(m for m in range(1, self.settings.managers + 1) if m not in learners)
        return Stored.bootstrap(voters, learners)

    def _boot_later(self, boot: BootPhase, members: tuple[int, ...]) -> None:
        """Start each manager at its own ``start_s``; links come up as ``BootPhase`` says."""
        hosted = self.hosted(members)
        start_s = {i: self.rng.uniform(boot.start_min_s, boot.start_max_s) for i in hosted}
        for a in hosted:
            for b in hosted:
                if a != b:
                    self.link_up_s[(a, b)] = boot.link_up_s(start_s[a], start_s[b])
        for node_id in hosted:
            self._push(start_s[node_id], CALL,
                       lambda node_id=node_id: self.add_manager(node_id, self.bootstrap_state()), 0)

    def hosted(self, members: tuple[int, ...]) -> tuple[int, ...]:
        """The members this simulator runs: all of them (a run partitioned by datacenter runs only
        its datacenter's, ``sim.federation.partition``)."""
        return members

    # -- membership of the simulation ------------------------------------------------------------

    def add_manager(self, node_id: int, stored: Stored) -> Manager:
        manager = Manager(node_id, MemoryStorage(stored), self._state_machine(),
                          tick_phase_s=self.rng.random() * self.settings.tick_s)
        self.managers[node_id] = manager
        self._boot(manager)
        return manager

    def _boot(self, manager: Manager) -> None:
        manager.incarnation += 1
        stored = manager.storage.stored()
        manager.state_machine.restore(stored.snapshot.data)
        rng = Random(self.rng.getrandbits(64))
        manager.node = self._node_class(self.settings.raft_config(manager.node_id), rng, stored)
        manager.pending_reads = []
        first_tick = self.now_s + manager.tick_phase_s + self.settings.tick_s
        self._push(first_tick, TICK, manager.node_id, manager.incarnation)
        self._process_ready(manager)

    def crash(self, node_id: int) -> None:
        manager = self.managers[node_id]
        if manager.node is None:
            return
        was_leader = manager.node.role == LEADER
        manager.node = None
        manager.incarnation += 1
        manager.paused_until_s = 0.0
        for hook in self.hooks:
            hook.crashed(self, manager, was_leader)

    def pause(self, node_id: int, until_s: float, *, burst_ticks: int = 0) -> None:
        """Freeze a manager (as SIGSTOP does) until ``until_s``: its ticks and the messages that
        reach it wait. On resume it first runs ``burst_ticks`` ticks at once (a timer that
        catches up), then steps the queued messages in arrival order."""
        manager = self.managers[node_id]
        manager.paused_until_s = max(manager.paused_until_s, until_s)
        manager.burst_ticks = burst_ticks

    def restart(self, node_id: int) -> None:
        manager = self.managers[node_id]
        if manager.node is not None:
            return
        manager.state_machine = self._state_machine()
        self._boot(manager)
        for hook in self.hooks:
            hook.restarted(self, manager)

    # -- queries -----------------------------------------------------------------------------------

    def alive(self) -> list[Manager]:
        return [m for m in self.managers.values() if m.node is not None]

    def leader(self) -> RaftNode | None:
        """The live leader with the highest term, if any."""
        best: RaftNode | None = None
        for manager in self.managers.values():
            node = manager.node
            if node is not None and node.role == LEADER and (best is None or node.term > best.term):
                best = node
        return best

    def node(self, node_id: int) -> RaftNode | None:
        return self.managers[node_id].node

    def holds(self, node_id: int, index: int, term: int) -> bool:
        """Does manager ``node_id``'s disk hold entry (``index``, ``term``)? (``SafetyChecker``'s Commit Quorum.)"""
        manager = self.managers.get(node_id)
        return manager is not None and manager.storage.holds(index, term)

    # -- client entry points -------------------------------------------------------------------------

    def _input(self, node_id: int, call: Callable[[RaftNode], T], down: T) -> T:
        """Give manager ``node_id``'s node an input (``down`` if it is crashed), then act on its Ready."""
        manager = self.managers[node_id]
        if manager.node is None:
            return down
        result = call(manager.node)
        self._after_input(manager)
        return result

    def propose(self, node_id: int, data: bytes, kind: int = 0) -> tuple[int, int] | None:
        return self._input(node_id, lambda node: node.propose(data, kind), None)

    def read_index(self, node_id: int, context: bytes) -> bool:
        return self._input(node_id, lambda node: node.read_index(context), False)

    def propose_conf_change(self, node_id: int, change: ConfChange) -> tuple[int, int] | None:
        return self.propose(node_id, change.encode(), EntryKind.CONF_CHANGE)

    def transfer_leadership(self, node_id: int, target: int) -> bool:
        return self._input(node_id, lambda node: node.transfer_leadership(target), False)

    def campaign(self, node_id: int) -> None:
        self._input(node_id, lambda node: node.campaign(), None)

    # -- the event loop ------------------------------------------------------------------------------

    def hold_ticks(self) -> None:
        """Stop every manager's clock while messages keep flowing (their ticks wait, in order).

        A node sees only ticks and messages, so this is the schedule in which the held interval's
        messages took no clock time: valid for Raft's safety (which holds for any message delays),
        and it changes no timeout while a stable cluster commits. ``release_ticks`` puts the ticks
        back, shifted by the cluster time that passed."""
        if self._held is not None:
            return
        ticks = [e for e in self._queue if e[2] == TICK]
        if ticks:
            self._queue = [e for e in self._queue if e[2] != TICK]
            heapq.heapify(self._queue)
        self._held = (self.now_s, ticks)

    def release_ticks(self) -> None:
        if self._held is None:
            return
        held_at_s, ticks = self._held
        self._held = None
        for at_s, _, kind, payload, tag in sorted(ticks, key=lambda e: e[1]):
            self._push(at_s + self.now_s - held_at_s, kind, payload, tag)

    @property
    def ticks_held(self) -> bool:
        return self._held is not None

    def _dispatch(self, kind: int, payload: object, tag: int) -> None:
        if kind == TICK:
            manager = self.managers[payload]  # type: ignore[index]
            if manager.node is None or not self.tick_fires(manager, TICK, payload, tag, self.settings.tick_s):
                return
            for _ in range(1 + manager.burst_ticks):
                if manager.node is not None:
                    manager.node.tick()
                    self._after_input(manager)
            manager.burst_ticks = 0
        elif kind == DELIVER:
            message: Message = payload  # type: ignore[assignment]
            manager = self.managers.get(message.dst)  # type: ignore[assignment]
            if manager is None or manager.node is None:
                return
            if self.deferred_while_paused(manager, DELIVER, message, 0):
                return
            manager.node.step(message)
            self._after_input(manager)
        elif kind == CALL:
            payload()  # type: ignore[operator]

    def _after_input(self, manager: Manager) -> None:
        self.steps += 1
        node = manager.node
        if node is not None and node.has_ready():
            self._process_ready(manager)
        for hook in self.hooks:
            hook.stepped(self, manager)

    def _process_ready(self, manager: Manager) -> None:
        node = manager.node
        assert node is not None
        old_role, old_leader = node._prev_soft.role, node._prev_soft.leader
        manager.readies += 1
        ready = node.ready()
        send_s = self.now_s
        if self.settings.handling_s or self.settings.persist_s:
            send_s += self.settings.handling_s + self._persist_delay_s(manager, node, ready)
        manager.storage.save(ready)
        if ready.snapshot is not None:
            manager.state_machine.restore(ready.snapshot.data)
            for hook in self.hooks:
                hook.snapshot_installed(self, manager, ready.snapshot.index)
        for m in ready.messages:
            if self.link_up_s and self.link_up_s.get((m.src, m.dst), 0.0) > send_s:
                self.messages_lost_at_boot += 1
                continue
            for at_s in self.network.transmit(m.src, m.dst, message_size_bytes(m), send_s):
                self._push(at_s, DELIVER, m, 0)
        for entry in ready.committed_entries:
            manager.state_machine.apply(entry)
            for hook in self.hooks:
                hook.applied(self, manager, entry)
        manager.pending_reads.extend(ready.read_states)
        node.advance(ready)
        for hook in self.hooks:
            hook.ready_handled(self, manager, ready)
        if manager.pending_reads:
            self._serve_reads(manager, node)
        if self.settings.snapshot_every:
            self._maybe_compact(manager, node)
        if ready.soft_state is not None:
            for hook in self.hooks:
                hook.role_changed(self, manager, old_role, old_leader)

    def _persist_delay_s(self, manager: Manager, node: RaftNode, ready: Ready) -> float:
        """``persist_s`` if this Ready's messages wait for the disk, else 0 (before ``save``)."""
        hard = ready.hard_state
        old = manager.storage.hard_state
        new_term_or_vote = hard is not None and (hard.term, hard.vote) != (old.term, old.vote)
        if ready.snapshot is None and not ready.entries and not new_term_or_vote:
            return 0.0
        if sent_before_durable(ready, node.role, node.term, new_term_or_vote):
            return 0.0
        return self.settings.persist_s

    def _serve_reads(self, manager: Manager, node: RaftNode) -> None:
        if not manager.pending_reads:
            return
        waiting = []
        for read in manager.pending_reads:
            if node.log.applied >= read.index:
                for hook in self.hooks:
                    hook.read_ready(self, manager, read)
            else:
                waiting.append(read)
        manager.pending_reads = waiting

    def _maybe_compact(self, manager: Manager, node: RaftNode) -> None:
        every = self.settings.snapshot_every
        if every and node.log.applied - node.log.snapshot.index >= every:
            snapshot = node.compact(node.log.applied, manager.state_machine.snapshot())
            manager.storage.compact(snapshot)


def leader_id(cluster: RaftCluster) -> int:
    node = cluster.leader()
    return node.id if node is not None else NO_NODE

"""A simulated PBFT cluster: replicas, their logs, clients, the network and one event queue.

Theory of operation
-------------------
The sim runtime of ``novacron.bft``, in the shape of ``sim.raft.cluster``: every replica ticks
every ``tick_s`` (on its own phase and clock rate), gets the messages the ``NetworkModel``
delivers, and has its ``Ready`` processed (log appended to its ``MemoryLog``, messages sent,
executions reported to the hooks). Messages to ids above ``n`` go to the clients.

A crash drops the replica object and bumps the incarnation (its queued ticks and deliveries are
ignored); a restart rebuilds it from the stored log, which survived. A Byzantine replica is a
correct ``Replica`` whose outgoing messages a ``Behaviour`` rewrites (``sim.bft.byzantine``): it
may lie, equivocate, stay silent or forge, but signs only with its own key.

Time is a float in seconds; the queue is ``sim.event_queue``'s heap, so a run is a pure function
of its seed.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from random import Random
from typing import Protocol

from novacron.bft.app import KeyValueApp
from novacron.bft.crypto import Keyring
from novacron.bft.messages import Signed
from novacron.bft.replica import BftConfig, Executed, Ready, Replica, StableCheckpoint, Stored, log_seq
from sim.event_queue import CALL, EventQueue
from sim.network import NetworkModel

TICK, DELIVER = 0, 1
SIGNED_OVERHEAD_BYTES = 72
"""Sender, signature (64 bytes for Ed25519) and framing around the canonical body."""


def message_size_bytes(message: Signed) -> int:
    return SIGNED_OVERHEAD_BYTES + len(message.body_bytes())


class MemoryLog:
    """A replica's durable storage: the stable checkpoint and the log since (``Ready`` steps 1)."""

    def __init__(self) -> None:
        self.checkpoint = StableCheckpoint()
        self.log: list[Signed] = []

    def save(self, ready: Ready) -> None:
        self.log.extend(ready.log)
        if ready.checkpoint is not None:
            self.checkpoint = ready.checkpoint
            self.log = [m for m in self.log if (seq := log_seq(m)) is None or seq > ready.checkpoint.seq]

    def stored(self) -> Stored:
        return Stored(self.checkpoint, list(self.log))


class Stage(Protocol):
    """Where a Byzantine replica acts: the simulated cluster, or a real replica process."""

    @property
    def n(self) -> int: ...

    @property
    def now_s(self) -> float: ...

    def deliver_later(self, at_s: float, dst: int, message: Signed) -> None: ...


class Behaviour:
    """What a Byzantine replica does to its own traffic (the default: nothing -- a correct replica)."""

    def outgoing(self, stage: Stage, replica: Replica,
                 messages: list[tuple[int, Signed]]) -> list[tuple[int, Signed]]:
        return messages

    def incoming(self, stage: Stage, replica: Replica, message: Signed) -> None:
        """Sees every message delivered to the replica (what a liar learns from)."""


@dataclass
class Member:
    replica_id: int
    storage: MemoryLog
    tick_phase_s: float
    replica: Replica | None = None
    incarnation: int = 0
    clock_rate: float = 1.0
    paused_until_s: float = 0.0
    behaviour: Behaviour | None = None
    """Set for a Byzantine replica."""

    @property
    def byzantine(self) -> bool:
        return self.behaviour is not None

    def paused(self, now_s: float) -> bool:
        return self.paused_until_s > now_s


class Hook:
    """Observer of a run; every method is optional."""

    def executed(self, cluster: BftCluster, member: Member, executed: Executed) -> None: ...

    def checkpointed(self, cluster: BftCluster, member: Member, checkpoint: StableCheckpoint) -> None: ...

    def crashed(self, cluster: BftCluster, member: Member) -> None: ...

    def restarted(self, cluster: BftCluster, member: Member) -> None: ...


SIM_REPLICA = BftConfig(replica_id=1, view_change_ticks=25, resend_ticks=10, status_ticks=12)
"""The replicas' settings at the simulation's 20 ms tick: ``BftConfig``'s timer defaults count 10 ms
ticks, so these halve them (0.5 s view-change timeout, 0.2 s resends). A template: the replica id is
set per replica (``BftSettings.config``); change the rest with ``dataclasses.replace``."""


@dataclass(frozen=True)
class BftSettings:
    """The simulated cluster. Every replica runs ``bft`` (size, checkpoints, log window, batch, timers
    in ticks: ``BftConfig`` owns them and their checks) under its own replica id."""

    tick_s: float = 0.020
    """20 ms: the replicas' timers (0.5 s view-change timeout, 0.2 s resends) need no finer ticks."""
    bft: BftConfig = SIM_REPLICA

    @property
    def replicas(self) -> int:
        return self.bft.replicas

    def config(self, replica_id: int) -> BftConfig:
        return replace(self.bft, replica_id=replica_id)


ClientInbox = Callable[[int, Signed], None]
ReplicaFactory = Callable[..., Replica]


class BftCluster(EventQueue):
    def __init__(self, settings: BftSettings, network: NetworkModel, rng: Random, keyring: Keyring, *,
                 hooks: list[Hook] | None = None, replica_class: ReplicaFactory = Replica,
                 app_class: Callable[[], KeyValueApp] = KeyValueApp, client_inbox: ClientInbox | None = None) -> None:
        super().__init__()
        self.settings, self.network, self.rng, self.keyring = settings, network, rng, keyring
        self.hooks = list(hooks or [])
        self.replica_class, self.app_class, self.client_inbox = replica_class, app_class, client_inbox
        self.steps = 0
        self.members: dict[int, Member] = {}
        self.apps: dict[int, KeyValueApp] = {}
        for replica_id in range(1, self.settings.replicas + 1):
            member = Member(replica_id, MemoryLog(), tick_phase_s=self.rng.random() * self.settings.tick_s)
            self.members[replica_id] = member
            self._boot(member)

    @property
    def n(self) -> int:
        return self.settings.replicas

    def _boot(self, member: Member) -> None:
        member.incarnation += 1
        app = self.apps[member.replica_id] = self.app_class()
        member.replica = self.replica_class(self.settings.config(member.replica_id),
                                            self.keyring.signer(member.replica_id), self.keyring, app,
                                            member.storage.stored())
        self._push(self.now_s + member.tick_phase_s + self.settings.tick_s, TICK, member.replica_id,
                   member.incarnation)
        self._after_input(member)

    def crash(self, replica_id: int) -> None:
        member = self.members[replica_id]
        if member.replica is None:
            return
        member.replica = None
        member.incarnation += 1
        member.paused_until_s = 0.0
        for hook in self.hooks:
            hook.crashed(self, member)

    def restart(self, replica_id: int) -> None:
        member = self.members[replica_id]
        if member.replica is not None:
            return
        self._boot(member)
        for hook in self.hooks:
            hook.restarted(self, member)

    def pause(self, replica_id: int, until_s: float) -> None:
        member = self.members[replica_id]
        member.paused_until_s = max(member.paused_until_s, until_s)

    def alive(self) -> list[Member]:
        return [m for m in self.members.values() if m.replica is not None]

    def correct(self) -> list[Member]:
        return [m for m in self.members.values() if not m.byzantine]

    def primary(self) -> int:
        """The primary of the highest view a live correct replica is in (normal or changing)."""
        views = [m.replica.view for m in self.correct() if m.replica is not None]
        return max(views, default=0) % self.n + 1

    # -- clients -------------------------------------------------------------------------------------

    def send_request(self, client_id: int, request: Signed, replicas: list[int] | None = None) -> None:
        """A client multicasts ``request`` to ``replicas`` (default: all) through the network."""
        for dst in replicas or range(1, self.n + 1):
            self._transmit(client_id, dst, request)

    # -- the event loop ---------------------------------------------------------------------------------

    def _transmit(self, src: int, dst: int, message: Signed) -> None:
        for at_s in self.network.transmit(src, dst, message_size_bytes(message), self.now_s):
            self._push(at_s, DELIVER, (dst, message), 0)

    def deliver_later(self, at_s: float, dst: int, message: Signed) -> None:
        """Inject ``message`` for ``dst`` at ``at_s`` outside the network model (a replay, a forgery)."""
        self._push(at_s, DELIVER, (dst, message), 0)

    def _dispatch(self, kind: int, payload: object, tag: int) -> None:
        if kind == CALL:
            payload()  # type: ignore[operator]
            return
        if kind == TICK:
            member = self.members[payload]  # type: ignore[index]
            if member.replica is None or not self.tick_fires(member, TICK, payload, tag, self.settings.tick_s):
                return
            member.replica.tick()
            self._after_input(member)
            return
        dst: int
        message: Signed
        dst, message = payload  # type: ignore[misc]
        if dst > self.n:
            if self.client_inbox is not None:
                self.client_inbox(dst, message)
            return
        member = self.members[dst]
        if member.replica is None:
            return
        if self.deferred_while_paused(member, DELIVER, payload, 0):
            return
        if member.behaviour is not None:
            member.behaviour.incoming(self, member.replica, message)
        member.replica.step(message)
        self._after_input(member)

    def _after_input(self, member: Member) -> None:
        self.steps += 1
        replica = member.replica
        if replica is None or not replica.has_ready():
            return
        ready = replica.ready()
        member.storage.save(ready)
        messages = ready.messages
        if member.behaviour is not None:
            messages = member.behaviour.outgoing(self, replica, messages)
        for dst, message in messages:
            self._transmit(member.replica_id, dst, message)
        replica.advance(ready)
        # Hooks see executions and newly stable checkpoints in sequence order (a state transfer
        # jumps onto a checkpoint, then executes after it).
        checkpoints = list(ready.checkpoints)
        for executed in ready.executed:
            while checkpoints and checkpoints[0].seq < executed.seq:
                self._checkpointed(member, checkpoints.pop(0))
            for hook in self.hooks:
                hook.executed(self, member, executed)
        for checkpoint in checkpoints:
            self._checkpointed(member, checkpoint)

    def _checkpointed(self, member: Member, checkpoint: StableCheckpoint) -> None:
        for hook in self.hooks:
            hook.checkpointed(self, member, checkpoint)

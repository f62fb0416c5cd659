"""Raft wire and storage types: plain dataclasses of ints, bytes and strs.

Theory of operation
-------------------
Everything a Raft node exchanges with the outside world is one of the types below. They are
deliberately flat -- ints, bytes, strs, tuples of them, and nested dataclasses of the same -- so
that a runtime can serialise them with msgpack (``to_wire`` / ``from_wire`` give a dict of
primitives) and store them in SQLite columns (``HardState`` is three integers, an ``Entry`` is
index, term, kind and a blob).

Message types follow the RPCs of the Raft paper (Ongaro & Ousterhout, "In Search of an
Understandable Consensus Algorithm", 2014): RequestVote (section 5.2) and AppendEntries
(section 5.3), plus InstallSnapshot (section 7), the PreVote round and TimeoutNow of Ongaro's
dissertation (sections 9.6 and 3.10), and heartbeats kept separate from AppendEntries as in
etcd-io/raft so that ReadIndex (dissertation section 6.4) can piggy-back a context on them.
A message's ``index``/``log_term`` mean "prev log index/term" for AppendEntries, "last log
index/term" for votes, and the acknowledged index for AppendEntries responses.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import IntEnum
from typing import Any

__all__ = ["NO_NODE", "ConfChange", "Entry", "EntryKind", "HardState", "Message", "MessageType", "ReadState",
           "Ready", "Snapshot", "SoftState", "from_wire", "to_wire"]
"""Every public name here; ``novacron.raft`` re-exports them all."""

NO_NODE = 0
"""Node ids start at 1; 0 means "nobody" (no vote cast, no leader known)."""


class MessageType(IntEnum):
    PRE_VOTE = 1
    PRE_VOTE_RESP = 2
    VOTE = 3
    VOTE_RESP = 4
    APPEND = 5
    APPEND_RESP = 6
    HEARTBEAT = 7
    HEARTBEAT_RESP = 8
    SNAPSHOT = 9
    TIMEOUT_NOW = 10


class EntryKind(IntEnum):
    NORMAL = 0
    """An application command; empty ``data`` is the no-op a new leader appends (section 8)."""
    CONF_CHANGE = 1
    """A single-server membership change, ``data`` from ``ConfChange.encode``."""


@dataclass(frozen=True, slots=True)
class Entry:
    index: int
    term: int
    kind: int = EntryKind.NORMAL
    data: bytes = b""


@dataclass(frozen=True, slots=True)
class HardState:
    """What must be on stable storage before any message of the same ``Ready`` is sent (Figure 2)."""

    term: int = 0
    vote: int = NO_NODE
    commit: int = 0


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A compacted prefix of the log: state-machine bytes plus the configuration at ``index``."""

    index: int = 0
    term: int = 0
    voters: tuple[int, ...] = ()
    data: bytes = b""
    learners: tuple[int, ...] = ()
    """Members that receive the log but neither vote nor count towards a majority."""


@dataclass(frozen=True, slots=True)
class ConfChange:
    """Add or remove one voter (dissertation section 4.1: one server at a time is always safe), or
    add a learner.

    A learner (etcd's raft has them; the dissertation's section 4.2.1 "catching up new servers"
    describes non-voting members) receives every entry but has no vote and no place in any
    majority, so adding or removing one changes no quorum. ``add`` of a learner promotes it to a
    voter: one voter more, like any ``add``. ``remove`` drops a voter or a learner.

    The entry carries the whole resulting configuration (``voters``, ``learners``), not just the
    delta, so a server that joins with an empty log learns the full membership from the entry
    alone. A configuration without learners encodes as it did before learners existed.
    """

    action: str
    node_id: int
    voters: tuple[int, ...] = ()
    learners: tuple[int, ...] = ()

    ACTIONS = ("add", "remove", "add-learner")

    def encode(self) -> bytes:
        text = f"{self.action}:{self.node_id}:{','.join(map(str, self.voters))}"
        if self.learners or self.action == "add-learner":
            text += f":{','.join(map(str, self.learners))}"
        return text.encode()

    @classmethod
    def decode(cls, data: bytes) -> ConfChange:
        action, node, voters, *learners = data.decode().split(":")
        if action not in cls.ACTIONS or len(learners) > 1:
            raise ValueError(f"unknown configuration change {data!r}")
        return cls(action, int(node), parse_node_ids(voters), parse_node_ids(learners[0]) if learners else ())

    def apply_to(self, voters: tuple[int, ...], learners: tuple[int, ...] = ()) -> tuple[
            tuple[int, ...], tuple[int, ...]]:
        """The configuration (voters, learners) after this change."""
        members, followers = set(voters), set(learners)
        followers.discard(self.node_id)
        if self.action == "add":
            members.add(self.node_id)
        elif self.action == "add-learner":
            followers.add(self.node_id)
        else:
            members.discard(self.node_id)
        return tuple(sorted(members)), tuple(sorted(followers))

    def resolved(self, voters: tuple[int, ...], learners: tuple[int, ...] = ()) -> ConfChange:
        """This change applied to the configuration (``voters``, ``learners``), ready to be proposed."""
        return ConfChange(self.action, self.node_id, *self.apply_to(voters, learners))


def parse_node_ids(text: str) -> tuple[int, ...]:
    """``"1,2,3"`` -> ``(1, 2, 3)``; ``""`` -> ``()`` (how configurations are written as text)."""
    return tuple(int(v) for v in text.split(",") if v)


@dataclass(frozen=True, slots=True)
class Message:
    """One Raft message; which fields matter depends on ``type`` (a ``MessageType``)."""

    type: int
    src: int
    dst: int
    term: int
    """The sender's current term (a pre-vote carries the term it would campaign in)."""
    index: int = 0
    """Append: the index just before ``entries`` (prevLogIndex); vote requests: the candidate's
    last log index; an accepted append response: the last index the follower now matches; a
    rejected one: the prevLogIndex it rejected; a rejected vote: the voter's last log index."""
    log_term: int = 0
    """The term at ``index`` (prevLogTerm, the candidate's or a rejecting voter's last log term);
    in a rejected append response, the term at ``reject_hint``."""
    commit: int = 0
    entries: tuple[Entry, ...] = ()
    reject: bool = False
    reject_hint: int = 0
    """A rejected append's guess at where the logs agree, so the leader can skip back by term."""
    snapshot: Snapshot | None = None
    context: bytes = b""
    """Opaque tag echoed back: a ReadIndex request's id, or the leadership-transfer marker."""

    def describe(self) -> str:
        kind = MessageType(self.type).name
        extra = f" ents={len(self.entries)}" if self.entries else ""
        extra += " reject" if self.reject else ""
        return f"{kind} {self.src}->{self.dst} t{self.term} i{self.index} lt{self.log_term}{extra}"


@dataclass(frozen=True, slots=True)
class ReadState:
    """A linearizable read may be served once ``applied >= index`` (dissertation section 6.4)."""

    index: int
    context: bytes


@dataclass(frozen=True, slots=True)
class SoftState:
    """Volatile facts the runtime may want to report; never persisted."""

    leader: int
    role: str


@dataclass(slots=True)
class Ready:
    """What the node wants done, in this order: persist, send, apply (etcd-io/raft ``Ready``).

    1. If ``snapshot`` is set, store it and restore the state machine from it.
    2. Store ``entries``: they replace any stored entries at ``entries[0].index`` and after.
    3. Store ``hard_state`` if set. Steps 1-3 must be durable (fsync) before step 4.
    4. Send ``messages``.
    5. Apply ``committed_entries`` to the state machine in order; serve ``read_states``.
    6. Call ``node.advance(ready)``.
    """

    hard_state: HardState | None = None
    entries: list[Entry] = field(default_factory=list)
    snapshot: Snapshot | None = None
    messages: list[Message] = field(default_factory=list)
    committed_entries: list[Entry] = field(default_factory=list)
    read_states: list[ReadState] = field(default_factory=list)
    soft_state: SoftState | None = None

    def is_empty(self) -> bool:
        return (self.hard_state is None and not self.entries and self.snapshot is None
                and not self.messages and not self.committed_entries and not self.read_states
                and self.soft_state is None)


def to_wire(message: Message) -> dict[str, Any]:
    """A dict of ints, bools, bytes and lists: what msgpack (or JSON with base64) can carry.
    Written out field by field rather than with ``dataclasses.asdict``, which deep-copies every
    entry only for them to be replaced by lists: 2-3.5 % of each real manager's samples at 16
    clients (py-spy). A test checks that it names every field of ``Message``, in order. A
    snapshot's learners follow its data only when it has some (older peers read four fields)."""
    s = message.snapshot
    return {"type": message.type, "src": message.src, "dst": message.dst, "term": message.term,
            "index": message.index, "log_term": message.log_term, "commit": message.commit,
            "entries": [[e.index, e.term, e.kind, e.data] for e in message.entries],
            "reject": message.reject, "reject_hint": message.reject_hint,
            "snapshot": None if s is None else _snapshot_wire(s),
            "context": message.context}


def _snapshot_wire(s: Snapshot) -> list[Any]:
    return [s.index, s.term, list(s.voters), s.data] + ([list(s.learners)] if s.learners else [])


def from_wire(wire: dict[str, Any]) -> Message:
    """The inverse of ``to_wire``; unknown keys are rejected so version skew is loud."""
    fields = dict(wire)
    fields["entries"] = tuple(Entry(int(i), int(t), int(k), bytes(d)) for i, t, k, d in fields.get("entries", ()))
    snap = fields.get("snapshot")
    if snap is not None:
        index, term, voters, data, *learners = snap
        fields["snapshot"] = Snapshot(int(index), int(term), tuple(int(v) for v in voters), bytes(data),
                                      tuple(int(v) for v in learners[0]) if learners else ())
    return Message(**fields)

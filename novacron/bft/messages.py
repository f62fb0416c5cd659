"""PBFT wire types, their canonical encoding (what is signed) and digests.

Theory of operation
-------------------
Every message a replica or client sends is a frozen dataclass of ints, bytes and tuples, wrapped
in ``Signed(body, sender, signature)``. What is signed is ``canonical(body)``: a tagged,
length-prefixed encoding in which distinct values always give distinct bytes (an int, a string
and a byte string of the same characters differ), so a signature binds the message type and
every field. The digest of a batch of requests is SHA-256 of its canonical encoding; certificates
(a prepared certificate, a checkpoint proof, a commit certificate) are tuples of ``Signed``
messages, verifiable by anybody who knows the public keys -- which is what lets a new primary
prove its choices in NEW-VIEW and a lagging replica accept state it did not watch being agreed.

Message names follow Castro and Liskov, "Practical Byzantine Fault Tolerance and Proactive
Recovery" (TOCS 2002), section 2.3 (normal case), 2.3.4 (checkpoints), 2.3.5 (view changes);
``Status``/``CatchUp`` are this implementation's retransmission and state transfer (section 6.2
of the paper describes a richer hierarchical state transfer; a commit certificate per sequence
number plus a checkpoint proof is the simple version of the same idea).

``to_wire``/``from_wire`` turn a ``Signed`` into nested lists of primitives and back (msgpack
can carry them; the codec itself lives with the runtime, not here).
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

__all__ = ["MESSAGE_TYPES", "CatchUp", "Checkpoint", "Commit", "NewView", "PrePrepare", "Prepare",
           "PreparedProof", "Reply", "Request", "Signed", "Status", "ViewChange", "batch_digest",
           "canonical", "from_wire", "to_wire"]


def canonical(value: object) -> bytes:
    """An injective byte encoding of ints, bools, strs, bytes, None, tuples and message dataclasses."""
    out: list[bytes] = []
    _encode(value, out)
    return b"".join(out)


def _encode(value: object, out: list[bytes]) -> None:
    if value is None:
        out.append(b"n")
    elif isinstance(value, bool):
        out.append(b"t" if value else b"f")
    elif isinstance(value, int):
        out.append(b"i%d;" % value)
    elif isinstance(value, bytes):
        out.append(b"b%d:" % len(value))
        out.append(value)
    elif isinstance(value, str):
        data = value.encode()
        out.append(b"s%d:" % len(data))
        out.append(data)
    elif isinstance(value, tuple):
        out.append(b"l%d:" % len(value))
        for item in value:
            _encode(item, out)
    elif isinstance(value, Signed):
        out.append(b"S")
        out.append(value.body_bytes())
        out.append(b"i%d;" % value.sender)
        _encode(value.signature, out)
    elif type(value) in _TYPE_CODES:
        out.append(b"m%d:" % _TYPE_CODES[type(value)])
        for name in _FIELD_NAMES[type(value)]:
            _encode(getattr(value, name), out)
    else:
        raise TypeError(f"cannot encode {type(value).__name__}")


@dataclass(frozen=True, slots=True)
class Request:
    """A client operation; ``timestamp`` orders one client's requests (exactly-once execution)."""

    client: int
    timestamp: int
    operation: bytes


@dataclass(frozen=True, slots=True)
class Signed:
    body: Any
    sender: int
    signature: bytes
    _body_bytes: bytes | None = field(default=None, compare=False, repr=False)
    """``canonical(body)``, computed once: a message is verified by every receiver and sits inside
    certificates that are encoded again (in the simulator every receiver shares the object)."""

    @classmethod
    def of(cls, body: Any, sender: int, sign: Callable[[bytes], bytes]) -> Signed:
        data = canonical(body)
        return cls(body, sender, sign(data), data)

    def body_bytes(self) -> bytes:
        data = self._body_bytes
        if data is None:
            data = canonical(self.body)
            object.__setattr__(self, "_body_bytes", data)
        return data

    def describe(self) -> str:
        body = self.body
        parts = [f"{k}={v}" for k, v in ((f.name, getattr(body, f.name)) for f in fields(body))
                 if isinstance(v, int)]
        return f"{type(body).__name__}({', '.join(parts)}) from {self.sender}"


@dataclass(frozen=True, slots=True)
class PrePrepare:
    view: int
    seq: int
    digest: bytes
    batch: tuple[Signed, ...]
    """Signed ``Request``s; empty is the null request a new primary fills gaps with."""


@dataclass(frozen=True, slots=True)
class Prepare:
    view: int
    seq: int
    digest: bytes
    replica: int


@dataclass(frozen=True, slots=True)
class Commit:
    view: int
    seq: int
    digest: bytes
    replica: int


@dataclass(frozen=True, slots=True)
class Reply:
    view: int
    timestamp: int
    client: int
    replica: int
    result: bytes


@dataclass(frozen=True, slots=True)
class Checkpoint:
    seq: int
    state_digest: bytes
    replica: int


@dataclass(frozen=True, slots=True)
class PreparedProof:
    """A prepared certificate: the pre-prepare and 2f matching prepares from other backups."""

    pre_prepare: Signed
    prepares: tuple[Signed, ...]


@dataclass(frozen=True, slots=True)
class ViewChange:
    new_view: int
    stable_seq: int
    checkpoint_proof: tuple[Signed, ...]
    """2f + 1 ``Checkpoint``s of ``stable_seq`` (empty for the genesis checkpoint 0)."""
    prepared: tuple[PreparedProof, ...]
    replica: int


@dataclass(frozen=True, slots=True)
class NewView:
    view: int
    view_changes: tuple[Signed, ...]
    pre_prepares: tuple[Signed, ...]


@dataclass(frozen=True, slots=True)
class Status:
    """Periodic: "I am in ``view`` and have executed up to ``executed``" (others help me catch up)."""

    view: int
    executed: int
    replica: int


@dataclass(frozen=True, slots=True)
class CatchUp:
    """State transfer: a checkpoint proof with the state it certifies, then commit certificates."""

    checkpoint_proof: tuple[Signed, ...]
    state: bytes
    committed: tuple[tuple[Signed, tuple[Signed, ...]], ...]
    """(pre-prepare, 2f + 1 matching commits) per sequence number after the checkpoint."""
    replica: int


MESSAGE_TYPES: tuple[type, ...] = (Request, PrePrepare, Prepare, Commit, Reply, Checkpoint, PreparedProof,
                                   ViewChange, NewView, Status, CatchUp)
_TYPE_CODES = {cls: code for code, cls in enumerate(MESSAGE_TYPES, start=1)}
_FIELD_NAMES = {cls: tuple(f.name for f in fields(cls)) for cls in MESSAGE_TYPES}


_FIELD_CHECKS = {
    "int": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "bytes": lambda v: isinstance(v, bytes),
    "tuple": lambda v: isinstance(v, tuple),
    "Signed": lambda v: isinstance(v, Signed),
    "Any": lambda v: type(v) in _TYPE_CODES,
}


def batch_digest(batch: tuple[Signed, ...]) -> bytes:
    return hashlib.sha256(canonical(batch)).digest()


def to_wire(value: object) -> Any:
    """Nested lists of primitives: ``["S", body, sender, signature]``, ``[type code, *fields]``."""
    if isinstance(value, Signed):
        return ["S", to_wire(value.body), value.sender, value.signature]
    if type(value) in _TYPE_CODES:
        return [_TYPE_CODES[type(value)], *(to_wire(v) for v in astuple_shallow(value))]
    if isinstance(value, tuple):
        return ["T", *(to_wire(v) for v in value)]
    return value


def astuple_shallow(value: object) -> tuple[object, ...]:
    return tuple(getattr(value, f.name) for f in fields(value))  # type: ignore[arg-type]


def from_wire(wire: Any) -> Any:
    """The inverse of ``to_wire``; raises ``ValueError`` on anything malformed (a Byzantine sender)."""
    try:
        return _from_wire(wire)
    except (TypeError, IndexError, KeyError) as exc:
        raise ValueError(f"malformed message: {exc}") from exc


def _from_wire(wire: Any) -> Any:
    if isinstance(wire, list | tuple) and wire:
        tag = wire[0]
        if tag == "S":
            _, body, sender, signature = wire
            return Signed(_from_wire(body), int(sender), bytes(signature))
        if tag == "T":
            return tuple(_from_wire(v) for v in wire[1:])
        if isinstance(tag, int) and 1 <= tag <= len(MESSAGE_TYPES):
            cls = MESSAGE_TYPES[tag - 1]
            values = [_from_wire(v) for v in wire[1:]]
            for f, v in zip(fields(cls), values, strict=True):
                if not _FIELD_CHECKS[str(f.type).split("[")[0]](v):
                    raise ValueError(f"{cls.__name__}.{f.name}: unexpected {type(v).__name__}")
            return cls(*values)
        raise ValueError(f"unknown tag {tag!r}")
    if isinstance(wire, bool | int | bytes | str) or wire is None:
        return wire
    if isinstance(wire, bytearray | memoryview):
        return bytes(wire)
    raise ValueError(f"unexpected {type(wire).__name__}")


"""Ports: what a runtime provides to the core.

The core never performs I/O. A runtime (``sim`` or ``backends``) implements these protocols and
drives the core's state machines with them. Each port has one contract test suite in ``tests/``
that every implementation must pass.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol, TypeVar, runtime_checkable

from novacron.events import Event

if TYPE_CHECKING:
    from novacron.raft.messages import Ready, Snapshot
    from novacron.raft.node import Stored

E = TypeVar("E", bound=Event)


@runtime_checkable
class Clock(Protocol):
    """Run-relative time in seconds. SimPy's ``env.now`` in simulation, monotonic time for real."""

    def now_s(self) -> float: ...


class EventSink(Protocol):
    """Where components report what happened; the sink stamps time and sequence number."""

    def emit(self, cls: type[E], *, source: str, **fields: Any) -> E: ...


class Transport(Protocol):
    """Delivers opaque messages between manager nodes (simulated network or TCP)."""

    def send(self, to_node: int, message: object) -> None: ...


class LogStore(Protocol):
    """Durable Raft state of one manager (``novacron.raft.storage.MemoryStorage`` is the reference).

    ``save`` persists a ``Ready``'s snapshot, entries (replacing the stored suffix from the first
    one) and hard state, durably, before it returns; ``compact`` keeps a snapshot the runtime took
    and drops the entries it covers; ``stored`` returns everything for ``RaftNode`` after a
    restart. ``tests/test_raft_logstore_contract.py`` is the contract every implementation passes.
    """

    def save(self, ready: Ready) -> None: ...

    def compact(self, snapshot: Snapshot) -> None: ...

    def stored(self) -> Stored: ...


class Hypervisor(Protocol):
    """A host's VM operations, as the migration controller drives them."""

    def host_id(self) -> str: ...


class CacheTier(Protocol):
    """One level of the cache hierarchy."""

    name: str

    def get(self, key: str) -> bytes | None: ...

    def set(self, key: str, value: bytes, ttl_s: float | None = None) -> None: ...

    def delete(self, key: str) -> bool: ...

    def contains(self, key: str) -> bool: ...

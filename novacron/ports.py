"""Ports: what a runtime provides to the core.

The core never performs I/O. A runtime (``sim`` or ``backends``) implements these protocols and
drives the core's state machines with them. Each port has one contract test suite in ``tests/``
that every implementation must pass.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple, Protocol, TypeVar, runtime_checkable

from novacron.events import Event

if TYPE_CHECKING:
    from novacron.migration.protocol import JobStats, MigrationCommand, VMDescription
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
    """A host's VM operations, as the migration controller drives them (see ``novacron.migration``).

    Implemented by ``sim`` (the QEMU-faithful model) and ``backends`` (libvirt). Calls never
    block for the length of a migration: ``execute`` starts or adjusts a job and returns,
    ``job_stats`` polls it. Commands are addressed to the VM's *source* hypervisor; a
    ``StartMigration`` names the destination host, which the implementation resolves.
    """

    def host_id(self) -> str: ...

    def describe_vm(self, vm_id: str) -> VMDescription:
        """Memory size, vCPUs, power state of a VM on this host (``KeyError`` if unknown)."""
        ...

    def execute(self, command: MigrationCommand) -> None:
        """Apply one controller command (start, set limits, post-copy switch, abort...)."""
        ...

    def job_stats(self, vm_id: str) -> JobStats:
        """Poll the VM's migration job; ``JobStatus.NONE`` when there is none."""
        ...


class TierUnavailable(Exception):
    """A cache tier could not be reached (Redis down, disk error); the hierarchy treats it as a miss."""


class CacheEntry(NamedTuple):
    """One entry a tier gave up to make room; the hierarchy demotes it to the next tier down.

    A named tuple rather than a frozen dataclass: tiers build one per eviction on the hot path.
    """

    key: str
    value: bytes
    size_bytes: int


class CacheTier(Protocol):
    """One level of the cache hierarchy (memory L1, Redis L2, disk L3, or a simulated model).

    ``size_bytes`` defaults to ``len(value)``; simulations pass it to stand for large objects
    without allocating them. ``ttl_s=None`` means the tier's own default TTL (which may be none).
    ``set``/``set_many`` return the entries evicted to make room (tiers whose eviction is not
    observable, such as Redis, return none). Any operation may raise ``TierUnavailable``.
    """

    name: str

    def get(self, key: str) -> bytes | None: ...

    def set(self, key: str, value: bytes, ttl_s: float | None = None,
            size_bytes: int | None = None) -> list[CacheEntry]: ...

    def delete(self, key: str) -> bool: ...

    def contains(self, key: str) -> bool: ...

    def get_many(self, keys: Sequence[str]) -> dict[str, bytes]: ...

    def set_many(self, items: Mapping[str, bytes], ttl_s: float | None = None) -> list[CacheEntry]: ...

    def delete_many(self, keys: Sequence[str]) -> int:
        """Delete several keys in one go (one round trip on Redis); returns how many existed."""
        ...

    def purge_expired(self) -> int:
        """Drop expired entries now (the cleanup cycle); returns how many were dropped."""
        ...

"""Move admission: whether a planned migration may start, as the rebalancer sees it.

The rebalancer asks a ``MoveAdmission`` before it adds a move to a plan; a runtime that
executes moves tells an ``ExecutedAdmission`` when each starts and finishes. Implementations:

- ``ConcurrencyCaps`` (here): the NovaCron caps alone: at most 2 concurrent migrations per host
  (as source or destination) and 10 in the cluster.
- ``novacron.migration.move_admission.RebalancerAdmission``: the migration subsystem's
  ``AdmissionController`` (cost model, headroom, caps, token bucket), shared with the migration
  batch in the simulation so the caps hold across everything that moves VMs.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol


@dataclass(frozen=True, slots=True)
class Move:
    vm_id: str
    source_host_id: str
    destination_host_id: str


class MoveAdmission(Protocol):
    def may_start(self, move: Move, planned: Sequence[Move]) -> bool:
        """Whether ``move`` may start now alongside the migrations in flight and ``planned`` (the
        moves already in the plan being built, which will start with it). An implementation that
        needs the time (a token bucket) is given a clock when it is built."""
        ...


class ExecutedAdmission(MoveAdmission, Protocol):
    def started(self, move: Move) -> None:
        """The move starts now (raises ``ValueError`` if it may not)."""
        ...

    def finished(self, vm_id: str) -> None:
        """The VM's move ended, whatever the outcome."""
        ...


class ConcurrencyCaps:
    """Per-host and global caps on concurrent migrations, counting in-flight and planned moves."""

    def __init__(self, *, max_per_host: int = 2, max_total: int = 10) -> None:
        self.max_per_host = max_per_host
        self.max_total = max_total
        self._in_flight: dict[str, Move] = {}

    @property
    def in_flight(self) -> int:
        return len(self._in_flight)

    def moves(self) -> tuple[Move, ...]:
        return tuple(self._in_flight.values())

    def per_host(self, extra: Sequence[Move] = ()) -> Counter[str]:
        counts: Counter[str] = Counter()
        for m in (*self._in_flight.values(), *extra):
            counts[m.source_host_id] += 1
            counts[m.destination_host_id] += 1
        return counts

    def may_start(self, move: Move, planned: Sequence[Move]) -> bool:
        if move.vm_id in self._in_flight or any(m.vm_id == move.vm_id for m in planned):
            return False
        if len(self._in_flight) + len(planned) + 1 > self.max_total:
            return False
        counts = self.per_host(planned)
        return all(counts[h] + 1 <= self.max_per_host for h in (move.source_host_id, move.destination_host_id))

    def started(self, move: Move) -> None:
        if not self.may_start(move, ()):
            raise ValueError(f"{move} would exceed the migration caps "
                             f"({self.max_per_host} per host, {self.max_total} in all)")
        self._in_flight[move.vm_id] = move

    def finished(self, vm_id: str) -> None:
        self._in_flight.pop(vm_id, None)

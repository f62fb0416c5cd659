"""Move admission: whether a planned migration may start, as the rebalancer sees it.

The rebalancer asks a ``MoveAdmission`` before it adds a move to a plan. This module defines
that small protocol and two implementations:

- ``ConcurrencyCaps``: the NovaCron caps alone: at most 2 concurrent migrations per host (as
  source or destination) and 10 in the cluster. A runtime tells it when moves start and finish.
- ``ControllerAdmission``: the migration subsystem's ``AdmissionController``
  (``novacron.migration.admission``: cost model, headroom, caps, token bucket) through its public
  API. Its ``can_admit`` only knows the migrations already running, so the adapter adds the
  caps for the moves planned in the same wave; the runtime calls ``try_admit`` when a move
  actually starts, and that answer is authoritative.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from novacron.migration.admission import AdmissionController, AdmissionRequest, MigrationCost


@dataclass(frozen=True, slots=True)
class Move:
    vm_id: str
    source_host_id: str
    destination_host_id: str


class MoveAdmission(Protocol):
    def may_start(self, move: Move, planned: Sequence[Move], now_s: float) -> bool:
        """Whether ``move`` may start at ``now_s`` alongside the migrations in flight and
        ``planned`` (the moves already in the plan being built, which will start with it)."""
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

    def may_start(self, move: Move, planned: Sequence[Move], now_s: float = 0.0) -> bool:
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


def _planned_caps_allow(move: Move, planned: Sequence[Move], running_on: Callable[[str], int], running: int,
                        max_per_host: int, max_total: int) -> bool:
    if any(m.vm_id == move.vm_id for m in planned) or running + len(planned) + 1 > max_total:
        return False
    for host in (move.source_host_id, move.destination_host_id):
        in_plan = sum(host in (m.source_host_id, m.destination_host_id) for m in planned)
        if running_on(host) + in_plan + 1 > max_per_host:
            return False
    return True


class ControllerAdmission:
    """``MoveAdmission`` over ``novacron.migration``'s ``AdmissionController``.

    ``cost_of`` gives a move's ``MigrationCost`` (for example from
    ``novacron.migration.admission.estimate_cost``); host loads are the controller's own, set
    by the runtime with ``update_host``.
    """

    def __init__(self, controller: AdmissionController, cost_of: Callable[[Move], MigrationCost]) -> None:
        self.controller = controller
        self.cost_of = cost_of

    def request(self, move: Move) -> AdmissionRequest:
        return AdmissionRequest(migration_id=f"rebalance-{move.vm_id}", vm_id=move.vm_id,
                                source_host_id=move.source_host_id, destination_host_id=move.destination_host_id,
                                cost=self.cost_of(move))

    def may_start(self, move: Move, planned: Sequence[Move], now_s: float) -> bool:
        policy = self.controller.policy
        if not _planned_caps_allow(move, planned, self.controller.running_on, len(self.controller.running),
                                   policy.max_per_host, policy.max_global):
            return False
        if planned and not self._planned_headroom_allows(move, planned):
            return False
        return self.controller.can_admit(self.request(move), now_s).admitted

    def _planned_headroom_allows(self, move: Move, planned: Sequence[Move]) -> bool:
        """The controller's headroom rule with the planned moves' costs added (it only counts
        running ones): committed load + planned costs + this cost under each ceiling. A source
        already over its CPU or memory ceiling is left to the controller's evacuation rule."""
        policy = self.controller.policy
        for host, side in ((move.source_host_id, "source"), (move.destination_host_id, "destination")):
            for resource in ("network", "io") if side == "source" else ("cpu", "memory", "network", "io"):
                load = self.controller.committed(host, resource)
                for m in (*planned, move):
                    cost = self.cost_of(m)
                    load += cost.source.get(resource) if m.source_host_id == host else 0.0
                    load += cost.destination.get(resource) if m.destination_host_id == host else 0.0
                if load > policy.ceiling_pct(resource) + 1e-9:
                    return False
        return True

"""The scheduler's ``MoveAdmission`` protocol over the migration admission controller.

Theory of operation
-------------------
The rebalancer (``novacron.scheduler``) asks ``may_start(move, planned)`` while it builds a
plan and calls ``started(move)`` / ``finished(vm_id)`` around each move it executes
(``novacron.scheduler.admission.MoveAdmission``, with ``ConcurrencyCaps`` as its stand-in).
``RebalancerAdmission`` answers those calls with ``AdmissionController``: the same caps, the
headroom cost model and the token bucket that the migration batch uses, so when both share one
controller a VM is never moved by two subsystems at once and the caps hold across them.
``cost_of(move)`` prices a move (``admission.estimate_cost`` from the VM's memory and the NIC).
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Sequence
from typing import Protocol

from novacron.migration.admission import AdmissionController, AdmissionRequest, MigrationCost


class MoveLike(Protocol):
    @property
    def vm_id(self) -> str: ...

    @property
    def source_host_id(self) -> str: ...

    @property
    def destination_host_id(self) -> str: ...


class RebalancerAdmission:
    def __init__(self, admission: AdmissionController, cost_of: Callable[[MoveLike], MigrationCost],
                 now_s: Callable[[], float]) -> None:
        self.admission = admission
        self._cost_of = cost_of
        self._now_s = now_s
        self._moves: dict[str, tuple[MoveLike, str]] = {}
        self._ids = itertools.count()

    def _request(self, move: MoveLike, migration_id: str = "planned") -> AdmissionRequest:
        return AdmissionRequest(migration_id=migration_id, vm_id=move.vm_id, source_host_id=move.source_host_id,
                                destination_host_id=move.destination_host_id, cost=self._cost_of(move))

    @property
    def in_flight(self) -> int:
        return len(self._moves)

    def moves(self) -> tuple[MoveLike, ...]:
        return tuple(move for move, _ in self._moves.values())

    def may_start(self, move: MoveLike, planned: Sequence[MoveLike]) -> bool:
        extra = [self._request(m, f"planned-{i}") for i, m in enumerate(planned)]
        return self.admission.can_admit(self._request(move), self._now_s(), extra).admitted

    def started(self, move: MoveLike) -> None:
        migration_id = f"rebalance-{next(self._ids):06d}-{move.vm_id}"
        decision = self.admission.try_admit(self._request(move, migration_id), self._now_s())
        if not decision.admitted:
            raise ValueError(f"{move} cannot start: {decision.reason}")
        self._moves[move.vm_id] = (move, migration_id)

    def finished(self, vm_id: str) -> None:
        entry = self._moves.pop(vm_id, None)
        if entry is not None:
            self.admission.release(entry[1])

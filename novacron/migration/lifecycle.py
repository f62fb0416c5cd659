"""The migration lifecycle: one transition table, every move recorded as ``MigrationPhaseChanged``.

Theory of operation
-------------------
A migration is ``requested``, then ``admitted`` by admission control (or ``aborted`` if it is
cancelled or rejected while queued). ``preparing`` covers QEMU's setup phase (destination
started with ``-incoming``, capabilities negotiated, first dirty-log sync). Live migrations then
loop in ``precopy`` (one entry per dirty-sync round: ``precopy -> precopy`` is a new round),
and leave it either by ``stop_and_copy`` (the source is paused and the last dirty pages move:
QEMU's ``device`` state) or by ``postcopy`` (the destination runs and faults pages in).
Cold and warm migrations go from ``preparing`` straight to ``stop_and_copy``: the VM is already
off or is suspended for the whole copy. ``committing`` is the destination taking ownership
(resume there, tear down the source) and, where a control plane records placements, its
decision to make the move the VM's placement. The ends: ``completed``, ``aborted`` (cancelled
before the switchover, the VM never left the source, or the control plane refused the copied
move: the VM's placement stays on the source), ``rolled_back`` (a failure before the
commit; the VM keeps running on the source, nothing is lost). After a post-copy switch the
source no longer holds a complete copy, so a failure there is ``failed`` (the VM is lost
unless the destination survives) — the planner avoids post-copy when a VM must not be put at
that risk.
"""

from __future__ import annotations

from enum import Enum

from novacron.lifecycle import TransitionTable


class MigrationPhase(Enum):
    REQUESTED = "requested"
    ADMITTED = "admitted"
    PREPARING = "preparing"
    PRECOPY = "precopy"
    STOP_AND_COPY = "stop_and_copy"
    POSTCOPY = "postcopy"
    COMMITTING = "committing"
    COMPLETED = "completed"
    ABORTED = "aborted"
    ROLLED_BACK = "rolled_back"
    FAILED = "failed"


P = MigrationPhase

MIGRATION_LIFECYCLE: TransitionTable[MigrationPhase] = TransitionTable("migration", {
    P.REQUESTED: {P.ADMITTED, P.ABORTED},
    P.ADMITTED: {P.PREPARING, P.ABORTED},
    P.PREPARING: {P.PRECOPY, P.STOP_AND_COPY, P.ABORTED, P.ROLLED_BACK},
    P.PRECOPY: {P.PRECOPY, P.STOP_AND_COPY, P.POSTCOPY, P.ABORTED, P.ROLLED_BACK},
    P.STOP_AND_COPY: {P.COMMITTING, P.ROLLED_BACK},
    P.POSTCOPY: {P.COMMITTING, P.FAILED},
    P.COMMITTING: {P.COMPLETED, P.ABORTED},
})

TERMINAL_PHASES = frozenset({P.COMPLETED, P.ABORTED, P.ROLLED_BACK, P.FAILED})
ACTIVE_PHASES = frozenset({P.PREPARING, P.PRECOPY, P.STOP_AND_COPY, P.POSTCOPY, P.COMMITTING})
"""Phases during which the migration holds an admission slot and moves data."""

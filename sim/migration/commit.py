"""Moves commit through the control plane: a claim on the destination at start, a commit at the end.

Theory of operation
-------------------
A live migration copies a VM for seconds to minutes while the rest of the cluster goes on: the
owner may delete the VM, its host may crash, placements may fill the destination. Nova handles
this with a *move claim*: the destination's resources are claimed in the placement service when
the migration starts (so nothing else is placed into that room), and the move becomes the VM's
allocation only when it completes, and only if the instance is still there to move ("Move
operations", OpenStack Nova docs, resource claims / ``migration`` allocations in Placement).

``MoveCommitter`` does the same for every mover (the migration batch and the scheduler's
rebalancer), over the control plane and its allocation store:

- ``claim(vm_id, destination)`` at admission: refused unless the VM is allocated and the
  destination is up with room for it *after every other claim* (``AllocationStore.claimable``);
  the control plane records ``MoveClaimed``, which the scheduler's table follows, so placements
  leave that room;
- ``commit(...)`` at the end: only if the VM is still allocated on the move's source and the
  destination is up does it ask the control plane to ``commit_move`` (which checks the room once
  more and records ``VMMoved``); otherwise, or if the control plane refuses, the move is aborted
  with a reason. The claim is released when the decision lands (a replicated control plane
  decides later), so the room stays held until then.

Hence no mover records ``VMMoved`` for a VM that stopped or failed, and a move never takes a host
past its capacity.
"""

from __future__ import annotations

from dataclasses import dataclass

import simpy

from sim.allocation import Claim
from sim.context import SimContext
from sim.control_plane import ControlPlane


@dataclass(frozen=True)
class CommitOutcome:
    host: int | None
    reason: str
    """Why the move was aborted; empty when it committed."""


class MoveCommitter:
    """Claims destinations and commits moves through one control plane."""

    def __init__(self, ctx: SimContext, control: ControlPlane) -> None:
        self._env = ctx.env
        self.control = control
        self.store = control.store

    def claim(self, vm_id: str, destination_host_id: str) -> Claim | None:
        """Hold room for ``vm_id`` on the destination; ``None`` if it is not running or no room."""
        host = self.store.host_index.get(destination_host_id)
        return None if host is None else self.control.claim_room(vm_id, host)

    def release(self, claim: Claim) -> None:
        self.control.release_claim(claim)

    def commit(self, claim: Claim, source_host_id: str, *, mover: str) -> simpy.Event:
        """Move the VM if it still runs on its source; the event's value is a ``CommitOutcome``."""
        store = self.store
        host = store.host_of(claim.vm_id)
        reason = ""
        if host is None:
            reason = "aborted: the VM stopped or failed during the migration"
        elif store.host_ids[host] != source_host_id:
            reason = "aborted: the VM moved elsewhere during the migration"
        elif not store.host_up[claim.host]:
            reason = "aborted: the destination crashed"
        if reason:
            self.release(claim)
            return self._env.event().succeed(CommitOutcome(None, reason))
        outcome = self._env.event()
        decision = self.control.commit_move(store.vm_demand[claim.vm_id], claim.host, mover=mover)
        decision.callbacks.append(lambda ev: self._decided(claim, ev.value, outcome))
        return outcome

    def _decided(self, claim: Claim, host: int | None, outcome: simpy.Event) -> None:
        self.release(claim)
        reason = "" if host is not None else "aborted: the control plane refused the move (no room or VM gone)"
        outcome.succeed(CommitOutcome(host, reason))

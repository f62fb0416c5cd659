"""Moves commit through the control plane: a claim on the destination at start, a commit at the end.

Theory of operation
-------------------
A live migration copies a VM for seconds to minutes while the rest of the cluster goes on: the
owner may delete the VM, its host may crash, placements may fill the destination. Nova handles
this with a *move claim*: the destination's resources are claimed in the placement service when
the migration starts (so nothing else is placed into that room), and the move becomes the VM's
allocation only when it completes, and only if the instance is still there to move ("Move
operations", OpenStack Nova docs, resource claims / ``migration`` allocations in Placement).

``MoveCommitter`` does the same for every mover in the simulation (the migration batch and the
scheduler's rebalancer):

- ``claim(vm_id, destination)`` at admission: refused unless the VM is running and the
  destination is up with room for it *after every other claim*; the claim lives in the
  allocation truth: the scheduler's ``HostTable`` (allocated + ``reserved``, which placements
  see) when the run has a scheduler; with first fit (whose truth is the inventory arrays, which
  hold placed VMs only) the committer keeps the claims, so claims never overlap each other and
  the commit re-checks the room that placements may have taken meanwhile;
- ``commit(...)`` at the end: only if the VM still runs on the move's source and the destination
  is up does it ask ``ClusterModel.migrate`` (the ``ControlPlane.migrate`` seam, which checks the
  room once more and records ``VMMoved``); otherwise, or if the control plane refuses, the move is
  aborted with a reason. The claim is released when the decision lands (a replicated control
  plane decides later), so the room stays held until then.

Hence no mover records ``VMMoved`` for a VM that stopped or failed, and a move never takes a host
past its capacity.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt
import simpy

from novacron.scheduler.state import CPU, MEMORY, PlacementRequest
from sim.context import SimContext

if TYPE_CHECKING:
    from sim.cluster_model import ClusterModel

FloatArray = npt.NDArray[np.float64]
ROOM_TOLERANCE = 1e-9


@dataclass
class Claim:
    vm_id: str
    host: int
    demand: FloatArray
    """Table demand (scheduler runs) or (cpu, memory) (first-fit runs)."""
    request: PlacementRequest | None = None
    numa_split: FloatArray | None = None
    released: bool = False


@dataclass(frozen=True)
class CommitOutcome:
    host: int | None
    reason: str
    """Why the move was aborted; empty when it committed."""


class MoveCommitter:
    """Claims destinations and commits moves for one ``ClusterModel``."""

    def __init__(self, model: ClusterModel) -> None:
        self.model = model
        self.rows = {host_id: h for h, host_id in enumerate(model.inv.host_ids)}
        self.first_fit_claims = np.zeros((2, len(model.inv.host_ids)))

    def claim(self, vm_id: str, destination_host_id: str) -> Claim | None:
        """Hold room for ``vm_id`` on the destination; ``None`` if it is not running or no room."""
        model = self.model
        model.absorb_log()
        i, host = model.vms.index.get(vm_id), self.rows.get(destination_host_id)
        if i is None or host is None or not self._running(i) or int(model.vms.host[i]) == host:
            return None
        if not model.inv.host_up[host]:
            return None
        scheduler = model.scheduler
        if scheduler is None:
            need = np.array([model.vms.cpu_cores[i], model.vms.memory_gib[i]])
            inv = model.inv
            free = np.array([inv.cpu_capacity[host] - inv.cpu_allocated[host],
                             inv.memory_capacity_gib[host] - inv.memory_allocated_gib[host]])
            if np.any(need > free - self.first_fit_claims[:, host] + ROOM_TOLERANCE):
                return None
            self.first_fit_claims[:, host] += need
            return Claim(vm_id, host, need)
        placed = scheduler.vms.get(vm_id)
        if placed is None:
            return None
        demand = placed.request.demand_array()
        table = scheduler.table
        free = table.capacity[:, host] - table.allocated[:, host]
        if demand[CPU] > free[CPU] + ROOM_TOLERANCE or demand[MEMORY] > free[MEMORY] + ROOM_TOLERANCE:
            return None
        split = table.allocate(host, placed.request)
        scheduler.reserved[:, host] += demand
        return Claim(vm_id, host, demand, placed.request, split)

    def release(self, claim: Claim) -> None:
        if claim.released:
            return
        claim.released = True
        scheduler = self.model.scheduler
        if claim.request is None or claim.numa_split is None or scheduler is None:
            self.first_fit_claims[:, claim.host] = np.maximum(self.first_fit_claims[:, claim.host] - claim.demand, 0.0)
            return
        scheduler.reserved[:, claim.host] = np.maximum(scheduler.reserved[:, claim.host] - claim.demand, 0.0)
        scheduler.table.release(claim.host, claim.request, claim.numa_split)

    def commit(self, claim: Claim, source_host_id: str, *, mover: str) -> simpy.Event:
        """Move the VM if it still runs on its source; the event's value is a ``CommitOutcome``."""
        model = self.model
        model.absorb_log()
        env = model.ctx.env
        i = model.vms.index[claim.vm_id]
        reason = ""
        if not self._running(i):
            reason = "aborted: the VM stopped or failed during the migration"
        elif model.inv.host_ids[int(model.vms.host[i])] != source_host_id:
            reason = "aborted: the VM moved elsewhere during the migration"
        elif not model.inv.host_up[claim.host]:
            reason = "aborted: the destination crashed"
        if reason:
            self.release(claim)
            return env.event().succeed(CommitOutcome(None, reason))
        outcome = env.event()
        decision = model.migrate(i, claim.host, mover=mover)
        decision.callbacks.append(lambda ev: self._decided(claim, ev.value, outcome))
        return outcome

    def _decided(self, claim: Claim, host: int | None, outcome: simpy.Event) -> None:
        self.release(claim)
        if self.model.scheduler is not None:
            self.model.scheduler.absorb_log()  # the table follows the recorded move now
        reason = "" if host is not None else "aborted: the control plane refused the move (no room or VM gone)"
        outcome.succeed(CommitOutcome(host, reason))

    def _running(self, i: int) -> bool:
        from sim.cluster_model import RUNNING

        return bool(self.model.vms.status[i] == RUNNING)


_COMMITTERS: dict[int, tuple[weakref.ref[SimContext], MoveCommitter]] = {}


def attach(model: ClusterModel) -> MoveCommitter:
    """Make ``model`` the run's move committer and let its scheduler's rebalancer commit through it."""
    committer = MoveCommitter(model)
    _COMMITTERS[id(model.ctx)] = (weakref.ref(model.ctx), committer)
    if model.scheduler is not None:
        model.scheduler.committer = committer
    return committer


def committer_for(ctx: SimContext) -> MoveCommitter | None:
    """The run's committer, or ``None`` in a run without a cluster model (movers then fall back)."""
    entry = _COMMITTERS.get(id(ctx))
    return entry[1] if entry is not None and entry[0]() is ctx else None


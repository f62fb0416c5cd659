"""Datacenter faults in a run partitioned by datacenter: ``Recovery`` with messages.

Theory of operation
-------------------
``sim.federation.recovery`` already works on each member's own knowledge: a leader detects a
silent datacenter from its own view and its own Raft progress, commits ``lose``, and dispatches
restarts that the destination cluster records through the federation group and reports back.
Here the dispatch and the report are messages between datacenters (``recovery:_restart_here``,
``recovery:_done``), the fencing and the samples cover this datacenter's clusters only, and the
scripted faults are applied where they belong: an outage by the failing datacenter alone; a cut by
every datacenter to its own outgoing WAN links at the same simulated time (the scenario says when,
so no message is needed), reported once, by the datacenter cut off.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from sim.federation.model import MESSAGE_BYTES
from sim.federation.recovery import Recovery

if TYPE_CHECKING:
    from sim.federation.partition import PartitionedFederation

RECOVERY_HANDLERS = frozenset({"_restart_here", "_done"})


class PartitionedRecovery(Recovery):
    model: PartitionedFederation

    def _dispatch_restart(self, c: int, target: int, vm: str, leader_id: int) -> None:
        self.model.post(c, target, MESSAGE_BYTES, "recovery:_restart_here", target, vm, leader_id)

    def _tell_leader(self, c: int, vm: str, leader_id: int) -> None:
        self.model.post(c, leader_id - 1, MESSAGE_BYTES, "recovery:_done", vm, leader_id)

    def sample(self) -> None:
        self.fence()
        self.sample_datacenter(self.model.dc)

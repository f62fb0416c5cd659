"""The federation agent of a manager process: this cluster's member of the federation Raft group.

Theory of operation
-------------------
Issue 17's federation replicates cluster state strongly through one Raft group of cluster
representatives (``novacron.federation.state``; in simulation ``sim.federation.model``: node
``c + 1`` for cluster ``c``). A manager started with ``--federation-id`` runs, beside its own
cluster's Raft node, a second ``ManagerRuntime`` in the same process and event loop: its own
Raft node in the federation group (ids = cluster numbers), its own SQLite log, event log and
client port under ``DATA_DIR/federation``, and as state machine the core's
``FederationStateMachine`` fed with the runtime's batched entries (``FederationReplica``). The
client API is the manager's (propose, ReadIndex read, status): a proposal carries one of the
state machine's commands (``place``, ``move``, ``evacuate``, ``lose``, ``rejoin``), a read of
key ``vm`` answers the VM's committed placement as ``"CLUSTER:HOST"`` (None if unplaced).

Timing: the federation group's members are a WAN apart, so its heartbeat and election timeout
come from the core's per-profile rule ``novacron.federation.config.wan_timing`` for the largest
round trip between clusters (``--federation-rtt-ms``), not from the cluster's LAN defaults.

Capacity: the agent records placements with unbounded host capacity. Which host has room is each
cluster scheduler's decision, made before the ``place`` is proposed; the replicated state's own
capacity check (the simulation's host shape) needs a cluster inventory the real managers do not
replicate yet, so a real ``place`` is refused only for a VM already placed or a lost datacenter.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass

from backends.manager.eventlog import JsonLinesEventLog, ParquetEventLog
from backends.manager.replicated import BatchedEntryReplica
from backends.manager.runtime import ManagerConfig
from novacron.federation.config import wan_timing
from novacron.federation.state import FederationStateMachine
from novacron.raft import Entry, EntryKind, RaftConfig

FEDERATION_DIR = "federation"
CLUSTERS_PER_DATACENTER = 1
"""In the real rig each datacenter (a network namespace) holds one cluster."""


@dataclass(frozen=True)
class FederationOptions:
    member_id: int
    """This cluster's id in the federation group (its representatives are numbered by cluster)."""
    peers: dict[int, tuple[str, int]]
    """Every member's federation Raft address, this one's included (where it listens)."""
    client_port: int
    rtt_ms: float = 150.0
    """The largest round trip between clusters, which sets the group's timing."""


def federation_raft_config(member_id: int, rtt_ms: float, tick_ms: float) -> RaftConfig:
    if not (math.isfinite(rtt_ms) and rtt_ms > 0):
        raise ValueError(f"--federation-rtt-ms {rtt_ms}: allowed: a round trip in ms > 0")
    timing = wan_timing(rtt_ms, tick_ms)
    return RaftConfig(node_id=member_id, heartbeat_ticks=timing.heartbeat_ticks,
                      election_ticks_min=timing.election_ticks_min, election_ticks_max=timing.election_ticks_max)


def agent_config(manager: ManagerConfig, options: FederationOptions) -> ManagerConfig:
    """The agent's runtime settings: the manager's, with the federation group's identity and timing;
    its clients reach it on its own federation address (the cluster's may be loopback only)."""
    if options.member_id not in options.peers:
        raise ValueError(f"--federation-id {options.member_id} is not one of the --federation-peers ids "
                         f"{sorted(options.peers)}")
    return dataclasses.replace(manager, node_id=options.member_id, peers=options.peers,
                               data_dir=manager.data_dir / FEDERATION_DIR,
                               client_host=options.peers[options.member_id][0], client_port=options.client_port,
                               metrics_port=None,
                               raft=federation_raft_config(options.member_id, options.rtt_ms, manager.tick_ms))


class FederationReplica(BatchedEntryReplica):
    """The core's ``FederationStateMachine`` behind the manager runtime's state-machine interface."""

    machine: FederationStateMachine

    def __init__(self, member_id: int, events: ParquetEventLog | JsonLinesEventLog | None) -> None:
        del events  # the group's Raft events go to the agent's own log; placements are its state
        super().__init__(FederationStateMachine(math.inf, math.inf, CLUSTERS_PER_DATACENTER))
        self.member_id = member_id

    def apply_commands(self, entry: Entry, commands: list[bytes]) -> None:
        for command in commands:
            self.machine.apply(Entry(entry.index, entry.term, EntryKind.NORMAL, command))

    def get(self, key: str) -> str | None:
        placement = self.machine.vms.get(key)
        return None if placement is None else f"{placement.cluster}:{placement.host}"

    def key_count(self) -> int:
        return len(self.machine.vms)

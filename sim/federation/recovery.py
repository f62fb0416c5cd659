"""Datacenter faults and what the federation does about them: detection, evacuation, fencing.

A restart elsewhere assumes the VM's disk is already replicated to the destination datacenter
(``vm_restart_s`` is the boot alone); cross-datacenter storage replication over the WAN model,
and the data it can lose, is the storage issue's to add here.

Theory of operation
-------------------
``fail`` loses a whole datacenter: its clusters stop (their VMs with them) and their
representatives crash. What dies with it is measured at that instant: the VMs that ran there
and, with async replication, the changes whose effect showed but that the federation group had
not committed (``rpo_s`` is the age of the oldest; their VMs are unknown to everyone else).
``cut``/``heal`` isolate a datacenter from the others and restore it: nothing is lost, but the
others cannot tell a cut from a loss.

The federation leader runs ``detect`` every gossip round: a datacenter the leader has heard
nothing from for ``failure_detection_s`` -- neither a gossiped entry newer than that in its view
nor a Raft response from one of its representatives (the progress' ``recent_active``, which
CheckQuorum resets every election timeout) -- is declared lost by committing ``lose`` (so every
member agrees before anything moves). Gossip alone gave false alarms: it pushes to one random
peer a round, so a leader can miss a datacenter's pushes for many rounds in a row.

``pump`` then evacuates the VMs the committed state records in lost datacenters: it picks a
cluster with the global scheduler (anti-affinity first, relaxed if no datacenter is left that
satisfies it: a VM running beats a VM waiting), delegates over the WAN, and keeps at most
``max_concurrent_global`` restarts in flight; the destination cluster picks a host with fewer
than ``max_concurrent_per_host`` restarts landing, records the move through the federation
group, boots the VM (``vm_restart_s``) and reports back. The committed state admits each move
once (a VM leaves a lost datacenter once), so a leader change in the middle cannot start a VM
twice.

A cut datacenter that comes back is heard from again: the leader commits ``rejoin`` and new
placements may go there again. Once its replica has caught up it finds that some of its VMs now
run elsewhere: ``fence`` stops those copies (``VMFenced``; the split brain lasted from the
restart elsewhere to the heal); the VMs not evacuated yet simply stay.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import partial

from novacron.federation.events import (
    DatacenterDeclaredLost,
    DatacenterFailed,
    DatacenterHealed,
    DatacenterPartitioned,
    DatacenterRejoined,
    DatacenterUtilisationSampled,
    VMEvacuated,
    VMFenced,
)
from novacron.federation.placement import PlacementRequest, rank_clusters
from novacron.federation.state import FederationStateMachine
from novacron.raft.node import LEADER, RaftNode
from sim.federation.model import MESSAGE_BYTES, ClusterAgent, FederationModel, LocalVM

REJOIN_FRESH_ROUNDS = 3
"""A lost datacenter whose newest gossiped entry is at most this many rounds old is back."""
EVACUATION_TIMEOUT_S = 60.0
"""A restart the leader dispatched and never heard back about is dispatched again after this."""


@dataclass
class LeaderDuties:
    """What a leader keeps in memory for its duties (lost with its term): when it last heard
    from each datacenter over Raft, and the restarts it dispatched and has not heard back about."""

    term: int
    heard_s: dict[int, float] = field(default_factory=dict)
    in_flight: dict[str, float] = field(default_factory=dict)


class Recovery:
    def __init__(self, model: FederationModel, *, plant: str | None = None) -> None:
        self.model = model
        self.plant = plant
        self.duties: dict[int, LeaderDuties] = {}
        self.declared: set[tuple[int, int, str]] = set()
        self._last_wan = [0] * len(model.matrix.datacenters)
        model.recovery = self

    # -- faults ------------------------------------------------------------------------------------

    def fail(self, dc: int) -> None:
        m = self.model
        agents = [a for a in m.clusters if a.datacenter == dc and a.alive]
        running = sum(1 for a in agents for v in a.vms.values() if v.running)
        visible = [p for a in agents for p in a.pending.values() if p.visible]
        rpo_s = max((m.now_s - p.created_s for p in visible), default=0.0)
        m.emit(DatacenterFailed, datacenter=m.dc_name(dc), vms_running=running, vms_unreplicated=len(visible),
               rpo_s=rpo_s)
        for agent in agents:
            agent.alive = False
            agent.vms.clear()
            agent.pending.clear()
            m.raft.crash(agent.node_id)

    def cut(self, dc: int, duration_s: float) -> None:
        m = self.model
        m.network.cut_off(dc)
        if m.own_datacenter(dc):
            m.emit(DatacenterPartitioned, datacenter=m.dc_name(dc))
        m.raft.schedule(m.now_s + duration_s, lambda: self.heal(dc))

    def heal(self, dc: int) -> None:
        m = self.model
        m.network.reconnect(dc)
        if m.own_datacenter(dc):
            m.emit(DatacenterHealed, datacenter=m.dc_name(dc))

    # -- the leader's duties -------------------------------------------------------------------------

    def detect(self) -> None:
        """Every representative that believes it leads runs the leader's duties on its own
        knowledge (a deposed leader that has not noticed yet may too: its proposals never commit)."""
        for leader in self.model.acting_leaders():
            self._detect_at(leader)
            self.pump(leader.id)

    def _duties(self, leader: RaftNode) -> LeaderDuties:
        duties = self.duties.get(leader.id)
        if duties is None or duties.term != leader.term:
            duties = self.duties[leader.id] = LeaderDuties(leader.term)  # volatile: a new term starts over
        return duties

    def _detect_at(self, leader: RaftNode) -> None:
        m = self.model
        agent = m.clusters[leader.id - 1]
        state = m.state_of(agent.index)
        duties = self._duties(leader)
        for a in m.clusters:
            progress = leader.progress.get(a.node_id)
            if progress is not None and progress.recent_active:
                duties.heard_s[a.datacenter] = m.now_s
        for dc in range(len(m.matrix.datacenters)):
            if dc == agent.datacenter:
                continue
            heard_s = max(agent.view.last_heard_s(dc) or 0.0, duties.heard_s.get(dc, 0.0))
            silent_s = m.now_s - heard_s
            if dc not in state.lost and silent_s > m.section.failure_detection_s:
                self._decide(leader.id, state.lose(dc), (dc, state.generation.get(dc, 0), "lost"))
            elif dc in state.lost and silent_s <= REJOIN_FRESH_ROUNDS * m.section.gossip_interval_s:
                self._decide(leader.id, state.rejoin(dc), (dc, state.generation.get(dc, 0), "rejoined"))

    def _decide(self, leader_id: int, command: bytes, key: tuple[int, int, str]) -> None:
        """Propose a loss or a rejoin (again every round until it commits); report it once."""
        m = self.model
        if m.raft.propose(leader_id, command) and key not in self.declared:
            self.declared.add(key)
            dc, _, what = key
            event = DatacenterDeclaredLost if what == "lost" else DatacenterRejoined
            m.emit(event, datacenter=m.dc_name(dc), manager_id=leader_id)

    def pump(self, leader_id: int) -> None:
        """Dispatch restarts of the VMs this leader's replica records in lost datacenters."""
        m = self.model
        leader = m.raft.node(leader_id)
        if leader is None or leader.role != LEADER:
            return
        duties = self._duties(leader)
        duties.in_flight = {vm: t for vm, t in duties.in_flight.items() if m.now_s - t < EVACUATION_TIMEOUT_S}
        agent = m.clusters[leader_id - 1]
        state = m.state_of(agent.index)
        per_dc = m.section.clusters_per_datacenter
        stranded = sorted(vm for vm, p in state.vms.items()
                          if p.cluster // per_dc in state.lost and vm not in duties.in_flight)
        for vm in stranded:
            if len(duties.in_flight) >= m.shape.caps_global:
                return
            target = self._destination(agent, state, vm)
            if target is not None:
                duties.in_flight[vm] = m.now_s
                self._dispatch_restart(agent.index, target, vm, leader_id)

    def _dispatch_restart(self, c: int, target: int, vm: str, leader_id: int) -> None:
        self.model.send(c, target, MESSAGE_BYTES, partial(self._restart_here, target, vm, leader_id))

    def _destination(self, agent: ClusterAgent, state: FederationStateMachine, vm: str) -> int | None:
        m = self.model
        p = state.vms[vm]
        dc = p.cluster // m.section.clusters_per_datacenter
        req = PlacementRequest(vm_id=vm, cpu=p.cpu, memory_gib=p.memory_gib, user_datacenter=dc,
                               data_datacenter=dc, group=p.group)
        partners = {q.cluster // m.section.clusters_per_datacenter for other, q in state.vms.items()
                    if p.group and q.group == p.group and other != vm}
        view = agent.view.snapshot()
        ranking = rank_clusters(req, view, m.policy, lost=state.lost, avoid_datacenters=partners)
        ranking = ranking or rank_clusters(req, view, m.policy, lost=state.lost, avoid_datacenters=())
        return ranking[0] if ranking else None

    # -- the destination cluster ---------------------------------------------------------------------

    def _restart_here(self, c: int, vm: str, leader_id: int) -> None:
        m = self.model
        agent = m.clusters[c]
        p = m.state_of(c).vms.get(vm)
        busy = {h for h, n in agent.restarts_on_host.items() if n >= m.shape.caps_per_host}
        host = None if p is None else agent.scheduler.place(p.cpu, p.memory_gib, exclude=busy)
        if p is None or host is None:
            self._tell_leader(c, vm, leader_id)
            return
        agent.restarts_on_host[host] = agent.restarts_on_host.get(host, 0) + 1
        agent.vms[vm] = LocalVM(host, p.cpu, p.memory_gib)
        if self.plant == "unrecorded-restart":  # planted bug: boots without recording the move
            m.raft.schedule(m.now_s + m.section.vm_restart_s,
                            partial(self._booted, agent, vm, host, leader_id, p.cluster))
            return
        data = FederationStateMachine.evacuate(m.new_command_id("evacuate"), vm, c, host)
        m.replicate(agent, data, on_applied=lambda: self._recorded(agent, vm, host, leader_id, p.cluster))

    def _recorded(self, agent: ClusterAgent, vm: str, host: int, leader_id: int, from_cluster: int) -> None:
        m = self.model
        now = m.state_of(agent.index).vms.get(vm)
        if now is None or now.cluster != agent.index or now.host != host:
            self._release(agent, vm, host)
            self._tell_leader(agent.index, vm, leader_id)
            return
        m.raft.schedule(m.now_s + m.section.vm_restart_s,
                        lambda: self._booted(agent, vm, host, leader_id, from_cluster))

    def _booted(self, agent: ClusterAgent, vm: str, host: int, leader_id: int, from_cluster: int) -> None:
        m = self.model
        agent.restarts_on_host[host] -= 1
        if not agent.alive or vm not in agent.vms:
            return
        agent.vms[vm].running = True
        from_dc = from_cluster // m.section.clusters_per_datacenter
        placed = m.state_of(agent.index).vms.get(vm)
        m.emit(VMEvacuated, vm_id=vm, from_datacenter=m.dc_name(from_dc), datacenter=m.dc_name(agent.datacenter),
               cluster_id=agent.name, host_id=f"{agent.name}/h{host:03d}", ha_group=placed.group if placed else "")
        self._tell_leader(agent.index, vm, leader_id)

    def _tell_leader(self, c: int, vm: str, leader_id: int) -> None:
        """Cluster ``c`` is done with ``vm``'s restart (booted, refused or superseded)."""
        self.model.send(c, leader_id - 1, MESSAGE_BYTES, partial(self._done, vm, leader_id))

    def _release(self, agent: ClusterAgent, vm: str, host: int) -> None:
        local = agent.vms.pop(vm, None)
        agent.restarts_on_host[host] -= 1
        if local is not None:
            agent.scheduler.release(local.host, local.cpu, local.memory_gib)

    def _done(self, vm: str, leader_id: int) -> None:
        duties = self.duties.get(leader_id)
        if duties is not None:
            duties.in_flight.pop(vm, None)
        self.pump(leader_id)

    # -- every sample --------------------------------------------------------------------------------

    def fence(self) -> None:
        """Stop local copies of VMs that this cluster's own replica records elsewhere."""
        m = self.model
        for agent in m.own_clusters():
            if not agent.alive:
                continue
            state = m.state_of(agent.index)
            for vm in sorted(agent.vms):
                local = agent.vms[vm]
                placed = state.vms.get(vm)
                if local.running and placed is not None and placed.cluster != agent.index:
                    agent.scheduler.release(local.host, local.cpu, local.memory_gib)
                    del agent.vms[vm]
                    m.emit(VMFenced, vm_id=vm, datacenter=m.dc_name(agent.datacenter))

    def sample(self) -> None:
        self.fence()
        for dc in range(len(self.model.matrix.datacenters)):
            self.sample_datacenter(dc)

    def sample_datacenter(self, dc: int) -> None:
        """One datacenter's utilisation sample (a partitioned run's datacenter samples only its own)."""
        m = self.model
        agents = [a for a in m.clusters if a.datacenter == dc]
        live = [a for a in agents if a.alive]
        cpu = sum(a.scheduler.utilisation_pct()[0] for a in live) / len(agents)
        memory = sum(a.scheduler.utilisation_pct()[1] for a in live) / len(agents)
        sent = m.network.wan_sent_bytes[dc]
        m.emit(DatacenterUtilisationSampled, datacenter=m.dc_name(dc), cpu_pct=cpu, memory_pct=memory,
               vms_running=sum(1 for a in live for v in a.vms.values() if v.running),
               wan_sent_bytes=sent - self._last_wan[dc])
        self._last_wan[dc] = sent

"""A federation of datacenters in simulation: clusters, the federation Raft group, the WAN.

Theory of operation
-------------------
Each datacenter holds ``clusters_per_datacenter`` clusters; each cluster has its own scheduler
(``novacron.federation.placement.ClusterScheduler``) and one representative in the federation
Raft group (node ``c + 1`` for cluster ``c``, a ``sim.raft.cluster.RaftCluster`` over a
``WanNetwork``): a voter, or with more clusters than the group should have voters a learner
(``FederationSection.voter_clusters``: one voter per datacenter in turn), which holds the same
replica but neither votes nor counts towards a commit. The group's event queue is the
federation's clock: requests, gossip rounds, the leader's duties and the faults are scheduled on
it, and every message between clusters -- Raft, gossip, delegation, evacuation -- goes through
the WAN model (its delay, bandwidth and partitions). Datacenters are thus coupled only by WAN
messages; a runner that partitions a run by datacenter has the WAN's smallest one-way delay as
lookahead.

A request arrives at a cluster of its users' datacenter (the origin), whose global scheduler
ranks the clusters from its gossiped view and delegates to the best; the target's scheduler
picks a host or refuses (the origin then tries the next; no answer within
``REQUEST_TIMEOUT_S`` counts as a refusal). The placement becomes cluster state in the
federation group: with ``sync`` replication the VM starts only once its ``place`` command
committed (applied by the target's own replica); with ``async`` it starts at once and the
representative ships its changes every ``async_interval_s``. Changes are retried to whichever
leader the representative knows until its replica applies them.

What stays global in this model, and what a runner partitioned by datacenter (issue 22) would
have to turn into WAN messages: the origin learns a delegation's outcome from the shared
``Request`` (the refusal is a message, the acceptance is not), HA groups' datacenters are kept
where the requests are made (``group_datacenters``), and the cross-datacenter moves count the
global admission cap in one place. Everything else a cluster or a leader decides reads only its
own replica, its own gossiped view and its own Raft node.

Datacenter failure (``sim.federation.recovery``): the datacenter's clusters stop, their
representatives crash; the leader -- after a new election if it was there -- declares the
datacenter lost once its view has heard nothing from it for ``failure_detection_s``, commits
``lose``, and evacuates the VMs the committed state records there, at most
``max_concurrent_global`` restarts at once and ``max_concurrent_per_host`` per destination host
(the migration admission caps).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass, field
from functools import partial
from random import Random
from typing import Any

from novacron.federation.config import FederationSection, wan_timing
from novacron.federation.events import (
    FederationFormed,
    FederationLeaderElected,
    FederationLeadershipTransferred,
    FederationViewSampled,
    FederationVMPlaced,
    FederationVMRejected,
    FederationVMRequested,
    VMFenced,
)
from novacron.federation.gossip import ClusterSummary, MetricsView
from novacron.federation.placement import ClusterScheduler, GlobalPolicy, PlacementRequest, rank_clusters
from novacron.federation.state import FederationStateMachine, Placement
from novacron.raft.messages import Entry
from novacron.raft.node import LEADER, RaftConfig, RaftNode
from novacron.statemachine import decode_command
from sim.federation.wan_network import WanNetwork
from sim.raft.cluster import ClusterSettings, Hook, Manager, RaftCluster

Emit = Callable[..., object]
"""``emit(EventClass, **fields)``: the run's recorder (or a test's list)."""

REQUEST_TIMEOUT_S = 10.0
"""An origin that hears nothing from a delegate for this long tries the next cluster (covers a
leader election plus a commit over the slowest WAN path)."""
RETRY_S = 1.0
"""How often a representative re-sends changes its replica has not applied yet."""
MESSAGE_BYTES = 256
GOSSIP_ENTRY_BYTES = 96
SNAPSHOT_EVERY = 500
TRANSFER_WAIT_S = 5.0
"""A leadership transfer not done by then is forgotten (another may start)."""


@dataclass
class LocalVM:
    host: int
    cpu: float
    memory_gib: float
    running: bool = False


@dataclass
class Pending:
    """A change waiting for the federation group: ``visible`` once its effect already shows (an
    async placement's VM runs), so it is data lost if the datacenter dies first."""

    data: bytes
    created_s: float
    on_applied: Callable[[], None] | None = None
    visible: bool = False


@dataclass
class ClusterAgent:
    index: int
    datacenter: int
    name: str
    scheduler: ClusterScheduler
    view: MetricsView = field(default_factory=MetricsView)
    vms: dict[str, LocalVM] = field(default_factory=dict)
    pending: dict[str, Pending] = field(default_factory=dict)
    version: int = 0
    alive: bool = True
    restarts_on_host: dict[int, int] = field(default_factory=dict)

    @property
    def node_id(self) -> int:
        return self.index + 1


@dataclass
class Request:
    req: PlacementRequest
    requested_s: float
    origin: int
    tried: set[int] = field(default_factory=set)
    attempts: int = 0
    token: int = 0
    done: bool = False


@dataclass(frozen=True, slots=True)
class HostShape:
    cpu: float
    memory_gib: float
    headroom_cpu_pct: float
    headroom_memory_pct: float
    flavours: tuple[tuple[int, float], ...]
    caps_per_host: int
    caps_global: int


def request_stream(section: FederationSection, flavours: tuple[tuple[int, float], ...], rng: Random,
                   users: Collection[int] | None = None) -> Iterator[tuple[float, PlacementRequest]]:
    """The federation's requests in the order drawn: arrival time, users' datacenter (weighted by
    ``user_share``) and flavour from ``rng``; HA groups of ``ha_group_size`` consecutive requests.
    With ``users``, every request is still drawn (the stream is the same) but only those of
    these datacenters' users are built and yielded (a partitioned run's share)."""
    s = section
    n = len(s.datacenters)
    weights = list(s.user_share) if s.user_share and sum(s.user_share) > 0 else [1.0] * n
    for k in range(s.vms):
        at_s = s.start_s + rng.random() * s.arrival_window_s
        user = rng.choices(range(n), weights=weights)[0]
        cores, memory = rng.choice(flavours)
        if users is not None and user not in users:
            continue
        group = f"g{k // s.ha_group_size}" if s.ha_group_size > 1 else ""
        yield at_s, PlacementRequest(vm_id=f"fvm-{k:05d}", cpu=float(cores), memory_gib=memory,
                                     user_datacenter=user, data_datacenter=user, group=group)


class FederationModel(Hook):
    def __init__(self, section: FederationSection, shape: HostShape, *, seed_rng: Callable[[str], Random],
                 emit: Emit, hooks: list[Hook] | None = None,
                 node_class: Callable[..., RaftNode] = RaftNode) -> None:
        self.section = section
        self.shape = shape
        self.emit = emit
        self.matrix = section.matrix()
        self.policy = GlobalPolicy(section.policy, self.matrix, section.cost_per_vcpu_h)
        self.network = WanNetwork(section, self.matrix, seed_rng("federation.network"))
        self.rng = seed_rng("federation.model")
        self.workload_rng = seed_rng("federation.workload")
        self.moves_rng = seed_rng("federation.moves")
        self.clusters = [self._agent(c) for c in range(section.cluster_count)]
        timing = wan_timing(self.matrix.max_rtt_ms, section.tick_ms)
        raft = RaftConfig(node_id=1, heartbeat_ticks=timing.heartbeat_ticks,
                          election_ticks_min=timing.election_ticks_min, election_ticks_max=timing.election_ticks_max)
        voters = section.voter_clusters()
        learners = tuple(a.node_id for a in self.clusters if a.index not in voters)
        settings = ClusterSettings(managers=len(self.clusters), learners=learners, tick_s=section.tick_ms / 1000,
                                   snapshot_every=SNAPSHOT_EVERY, raft=raft)
        self.raft = self._raft_cluster(settings, seed_rng("federation.raft"), hooks=[self, *(hooks or [])],
                                       node_class=node_class)
        self.requests: dict[str, Request] = {}
        self.group_datacenters: dict[str, set[int]] = {}
        self.formed = False
        self.transfer_to = 0
        self._tokens = 0
        self._commands = 0
        self.recovery: Any = None
        """``sim.federation.recovery.Recovery``, attached by ``start`` (it needs the model)."""

    def _agent(self, c: int) -> ClusterAgent:
        dc = c // self.section.clusters_per_datacenter
        name = f"{self.matrix.datacenters[dc]}/c{c % self.section.clusters_per_datacenter}"
        s = self.shape
        scheduler = ClusterScheduler(self.section.hosts_per_cluster, s.cpu, s.memory_gib,
                                     headroom_cpu_pct=s.headroom_cpu_pct, headroom_memory_pct=s.headroom_memory_pct)
        return ClusterAgent(index=c, datacenter=dc, name=name, scheduler=scheduler)

    def _raft_cluster(self, settings: ClusterSettings, rng: Random, *, hooks: list[Hook],
                      node_class: Callable[..., RaftNode],
                      cluster_class: Callable[..., RaftCluster] = RaftCluster) -> RaftCluster:
        """The federation group (a partitioned run builds only its datacenter's members here)."""
        shape, per_dc = self.shape, self.section.clusters_per_datacenter
        return cluster_class(settings, self.network, rng,
                             state_machine=lambda: FederationStateMachine(shape.cpu, shape.memory_gib, per_dc),
                             hooks=hooks, node_class=node_class)

    # -- helpers -----------------------------------------------------------------------------------

    @property
    def now_s(self) -> float:
        return self.raft.now_s

    def dc_name(self, dc: int) -> str:
        return self.matrix.datacenters[dc]

    def state_of(self, c: int) -> FederationStateMachine:
        sm = self.raft.managers[c + 1].state_machine
        assert isinstance(sm, FederationStateMachine)
        return sm

    def send(self, src: int, dst: int, size_bytes: int, deliver: Callable[[], None]) -> bool:
        """Send a message between cluster representatives; ``deliver`` runs on arrival at a live
        destination. False if the WAN dropped it (partition, loss)."""
        deliveries = self.network.transmit(src + 1, dst + 1, size_bytes, self.now_s)

        def arrive() -> None:
            if self.clusters[dst].alive:
                deliver()

        for at_s in deliveries[:1]:
            self.raft.schedule(at_s, arrive)
        return bool(deliveries)

    def every(self, first_s: float, interval_s: float, action: Callable[[], None]) -> None:
        def fire() -> None:
            action()
            self.raft.schedule(self.now_s + interval_s, fire)

        self.raft.schedule(first_s, fire)

    def new_command_id(self, kind: str) -> str:
        self._commands += 1
        return f"{kind}-{self._commands}"

    # -- workload ------------------------------------------------------------------------------------

    def schedule_workload(self) -> None:
        self.schedule_arrivals(request_stream(self.section, self.shape.flavours, self.workload_rng))

    def schedule_arrivals(self, arrivals: Iterable[tuple[float, PlacementRequest]]) -> None:
        """Queue each request for its arrival time (a partitioned datacenter gets its users' share)."""
        for at_s, req in arrivals:
            self.raft.schedule(at_s, partial(self.request, req))

    def request(self, req: PlacementRequest) -> None:
        origin = self._origin_for(req.user_datacenter)
        self.emit(FederationVMRequested, vm_id=req.vm_id, user_datacenter=self.dc_name(req.user_datacenter))
        request = Request(req, self.now_s, origin)
        self.requests[req.vm_id] = request
        self._try_next(request)

    def _origin_for(self, dc: int) -> int:
        """A live cluster of the users' datacenter, else the nearest live one."""
        live = [a for a in self.clusters if a.alive]
        if not live:
            return self.clusters[0].index
        return min(live, key=lambda a: (self.matrix.rtt(dc, a.datacenter), a.index)).index

    def _try_next(self, request: Request) -> None:
        origin = self.clusters[request.origin]
        if not origin.alive or request.done:
            return
        state = self.state_of(origin.index)
        ranking = [c for c in rank_clusters(request.req, origin.view.snapshot(), self.policy, lost=state.lost,
                                            avoid_datacenters=self._avoid_datacenters(request))
                   if c not in request.tried]
        if not ranking:
            request.done = True
            self.emit(FederationVMRejected, vm_id=request.req.vm_id,
                      user_datacenter=self.dc_name(request.req.user_datacenter),
                      reason="no cluster of the view can take it" if not request.tried else
                      f"refused by {len(request.tried)} cluster(s)")
            return
        target = ranking[0]
        request.tried.add(target)
        request.attempts += 1
        self._tokens += 1
        request.token = token = self._tokens
        self._delegate(origin.index, target, request, token)
        self.raft.schedule(self.now_s + REQUEST_TIMEOUT_S, lambda: self._timed_out(request, token))

    def _avoid_datacenters(self, request: Request) -> set[int]:
        """The datacenters already holding a member of the request's HA group."""
        return self.group_datacenters.get(request.req.group, set()) if request.req.group else set()

    def _delegate(self, origin: int, target: int, request: Request, token: int) -> None:
        self.send(origin, target, MESSAGE_BYTES, lambda: self._delegated(target, request, token))

    def _timed_out(self, request: Request, token: int) -> None:
        if request.token == token and not request.done:
            self._try_next(request)

    def _delegated(self, c: int, request: Request, token: int) -> None:
        agent = self.clusters[c]
        if request.token != token or request.done:
            return
        req = request.req
        host = agent.scheduler.place(req.cpu, req.memory_gib)
        if host is None:
            self._refuse(c, request, token)
            return
        if req.group:
            self.group_datacenters.setdefault(req.group, set()).add(agent.datacenter)
        agent.vms[req.vm_id] = LocalVM(host, req.cpu, req.memory_gib)
        data = FederationStateMachine.place(self.new_command_id("place"), req.vm_id,
                                            Placement(c, host, req.cpu, req.memory_gib, req.group))
        if self.section.state_replication == "async":
            self._start_vm(agent, request)
        self.replicate(agent, data, on_applied=lambda: self._committed_placement(agent, request),
                       visible=self.section.state_replication == "async")

    def _refuse(self, c: int, request: Request, token: int) -> None:
        self.send(c, request.origin, MESSAGE_BYTES, lambda: self._refused(request, token))

    def _refused(self, request: Request, token: int) -> None:
        if request.token == token and not request.done:
            self._try_next(request)

    def _committed_placement(self, agent: ClusterAgent, request: Request) -> None:
        """The agent's replica applied its ``place``: start the VM, or -- if the group refused it
        (placed elsewhere first, or this datacenter was given up on meanwhile) -- give the room
        back. A refused sync placement never ran, so the origin tries the next cluster; a refused
        async one already ran and is stopped (fenced)."""
        vm_id = request.req.vm_id
        placed = self.state_of(agent.index).vms.get(vm_id)
        local = agent.vms.get(vm_id)
        if local is None:
            return
        if placed is not None and placed.cluster == agent.index:
            if not local.running:
                self._start_vm(agent, request)
            return
        agent.scheduler.release(local.host, local.cpu, local.memory_gib)
        del agent.vms[vm_id]
        if local.running:
            self.emit(VMFenced, vm_id=vm_id, datacenter=self.dc_name(agent.datacenter))
        elif not request.done:
            self._retry_elsewhere(agent, request)

    def _retry_elsewhere(self, agent: ClusterAgent, request: Request) -> None:
        self.send(agent.index, request.origin, MESSAGE_BYTES, lambda: self._try_next(request))

    def _start_vm(self, agent: ClusterAgent, request: Request) -> None:
        request.done = True
        agent.vms[request.req.vm_id].running = True
        self.emit(FederationVMPlaced, vm_id=request.req.vm_id, datacenter=self.dc_name(agent.datacenter),
                  cluster_id=agent.name, host_id=f"{agent.name}/h{agent.vms[request.req.vm_id].host:03d}",
                  ha_group=request.req.group,
                  user_datacenter=self.dc_name(request.req.user_datacenter),
                  user_rtt_ms=self.matrix.rtt(request.req.user_datacenter, agent.datacenter),
                  attempts=request.attempts, placement_latency_ms=(self.now_s - request.requested_s) * 1000)

    # -- cluster state to the federation group -------------------------------------------------------

    def replicate(self, agent: ClusterAgent, data: bytes, *, on_applied: Callable[[], None] | None = None,
                  visible: bool = False) -> None:
        cmd_id = str(decode_command(data)["id"])
        agent.pending[cmd_id] = Pending(data, self.now_s, on_applied, visible)
        if not visible:
            self.ship(agent)

    def ship(self, agent: ClusterAgent) -> None:
        """Send every change the agent's replica has not applied to the leader it knows."""
        node = self.raft.node(agent.node_id)
        if not agent.alive or node is None or not agent.pending or node.leader == 0:
            return
        self._ship_batch(agent.index, node.leader - 1, [p.data for p in agent.pending.values()])

    def _ship_batch(self, c: int, leader: int, batch: list[bytes]) -> None:
        self.send(c, leader, MESSAGE_BYTES + sum(len(d) for d in batch), lambda: self._propose(leader, batch))

    def _propose(self, c: int, batch: list[bytes]) -> None:
        node = self.raft.node(c + 1)
        if node is None or node.role != LEADER:
            return
        for data in batch:
            self.raft.propose(c + 1, data)

    # -- Hook: the federation group ----------------------------------------------------------------

    def applied(self, cluster: RaftCluster, manager: Manager, entry: Entry) -> None:
        node = manager.node
        if not self.formed and node is not None and node.role == LEADER and entry.term == node.term:
            self.formed = True
            self.emit(FederationFormed, formation_s=self.now_s)
        if not entry.data:
            return
        agent = self.clusters[manager.node_id - 1]
        cmd = decode_command(entry.data)
        pending = agent.pending.pop(str(cmd["id"]), None)
        if pending is not None and pending.on_applied is not None:
            pending.on_applied()
        if cmd["op"] == "lose" and node is not None and node.role == LEADER and self.recovery is not None:
            self.recovery.pump(node.id)

    def role_changed(self, cluster: RaftCluster, manager: Manager, old_role: str, old_leader: int) -> None:
        node = manager.node
        if node is None or node.role != LEADER or old_role == LEADER:
            return
        dc = self.clusters[node.id - 1].datacenter
        self.emit(FederationLeaderElected, manager_id=node.id, term=node.term, datacenter=self.dc_name(dc))
        if self.transfer_to == node.id:
            self.emit(FederationLeadershipTransferred, manager_id=node.id, datacenter=self.dc_name(dc))
            self.transfer_to = 0

    # -- periodic duties -------------------------------------------------------------------------------

    def gossip_round(self, agent: ClusterAgent) -> None:
        if not agent.alive:
            return
        agent.version += 1
        agent.view.write(agent.scheduler.summary(agent.index, agent.datacenter, agent.version, self.now_s,
                                                 sum(1 for v in agent.vms.values() if v.running)))
        lost = self.state_of(agent.index).lost
        peers = [a.index for a in self.clusters if a.index != agent.index and a.datacenter not in lost]
        if peers:
            peer = self.clusters[self.rng.choice(peers)]
            self.send_gossip(agent, peer, agent.view.snapshot())
        ages = [self.now_s - s.written_s for s in agent.view.snapshot()
                if s.cluster != agent.index and s.datacenter not in lost]
        if ages:
            self.emit(FederationViewSampled, cluster_id=agent.name, datacenter=self.dc_name(agent.datacenter),
                      staleness_max_s=max(ages), staleness_mean_s=sum(ages) / len(ages))

    def send_gossip(self, agent: ClusterAgent, peer: ClusterAgent, entries: tuple[ClusterSummary, ...]) -> None:
        self.send(agent.index, peer.index, MESSAGE_BYTES + GOSSIP_ENTRY_BYTES * len(entries),
                  partial(self._merge, peer, entries))

    @staticmethod
    def _merge(peer: ClusterAgent, entries: tuple[ClusterSummary, ...]) -> None:
        peer.view.merge(entries)

    def own_clusters(self) -> list[ClusterAgent]:
        """The clusters this process simulates (all; a partitioned run's datacenter only its own)."""
        return self.clusters

    def own_datacenter(self, dc: int) -> bool:
        """Whether this process records datacenter ``dc``'s own events (all; a partitioned run's only its own)."""
        return True

    def retry_round(self) -> None:
        for agent in self.own_clusters():
            if any(not p.visible for p in agent.pending.values()):
                self.ship(agent)

    def async_round(self) -> None:
        for agent in self.own_clusters():
            self.ship(agent)

    def acting_leaders(self) -> list[RaftNode]:
        """The representatives that believe they lead (each acts on its own knowledge only)."""
        return [m.node for m in self.raft.managers.values() if m.node is not None and m.node.role == LEADER]

    def prefer_leader(self) -> None:
        for leader in self.acting_leaders():
            self._prefer_leader(leader)

    def _prefer_leader(self, leader: RaftNode) -> None:
        """WAN-aware leadership: hand leadership to the most preferred datacenter that is not lost
        and whose representative has caught up (Raft's leadership transfer, dissertation 3.10)."""
        if not self.section.leader_preference or self.transfer_to:
            return
        lost = self.state_of(leader.id - 1).lost
        for name in self.section.leader_preference:
            dc = self.matrix.datacenters.index(name)
            if dc in lost:
                continue
            if self.clusters[leader.id - 1].datacenter == dc:
                return
            target = next((a.node_id for a in self.clusters if a.datacenter == dc and a.node_id in leader.voters), 0)
            if target and self._caught_up(leader, target):
                self.transfer_to = target
                self.raft.transfer_leadership(leader.id, target)
                self.raft.schedule(self.now_s + TRANSFER_WAIT_S, self._forget_transfer)
            return

    def _caught_up(self, leader: RaftNode, target: int) -> bool:
        """The target is alive and holds the leader's whole log."""
        return self.raft.node(target) is not None and leader.progress[target].match == leader.log.last_index()

    def _forget_transfer(self) -> None:
        self.transfer_to = 0

    def describe(self) -> str:
        return (f"{len(self.matrix.datacenters)} datacenters x {self.section.clusters_per_datacenter} cluster(s) "
                f"x {self.section.hosts_per_cluster} hosts, WAN {self.matrix.source}")

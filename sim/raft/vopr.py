"""Deterministic simulation testing of the Raft core ("vopr", after TigerBeetle's simulator).

Theory of operation
-------------------
One seed is one experiment, and everything in it derives from the seed (``RunSeeds(seed)``).
Three plan generators turn a seed into a cluster and a fault schedule:

- ``swarm`` (the default, ``sim.raft.swarm``): each seed turns on a random subset of fault
  kinds -- crash storms with snapshots every few entries, partitions and one-way cuts aimed at
  the leader held for seconds, membership changes during partitions and leaders removing
  themselves, clock rates of 0.5-1.5x, pauses followed by bursts, duplication storms -- on 1
  to 7 voters;
  ``swarm1`` replays its version 1 (the seeds in ``tests/vopr_regressions.txt`` were found with
  it), ``swarm`` draws the latest version;
- ``classic`` (``VoprPlan``): the first generator, 3 to 7 managers, rates drawn per seed;
- ``learners`` (``sim.raft.learners``): the latest swarm plan of the seed, draw for draw, plus
  learners -- booted with the cluster, added, promoted, removed, crashed and cut off, probed for
  what a leader must refuse -- from streams of their own, so no other generator's seed changes.

Checks, all of them on every seed:

- after every step of every node that handled a Ready (a step without one changes nothing
  checked), the five properties of Figure 3 of the Raft paper (an entry counts as committed in
  the term of the leader's commit point), section 5.2's one vote per server and term across
  restarts, the state machine's contents and every snapshot compared across nodes at each
  index and the applied sequence without gaps (``SafetyChecker``); and who counts: a learner
  is never pre-candidate, candidate or leader, a leader was voted for by a majority of its
  configuration's voters, and a leader's new commit point is on the disks of a majority of its
  voters (``RaftCluster.holds``);
- every read and write of ``CLIENTS`` clients, each with up to ``IN_FLIGHT`` requests in flight:
  writes go to the leader, reads either to the leader (ReadIndex) or to a follower, which gets a
  read index from its leader and serves once it has applied that far (dissertation 6.4.1).
  At the end the history is checked for linearizability per key, with a budget of
  ``LINEARIZABILITY_BUDGET`` configurations per key; a key over budget is *unknown*: the seed
  passes its other checks but is counted and listed (``SeedResult.unknown_keys``), never
  reported as linearizable;
- liveness (only when PreVote or CheckQuorum is on: without both a server removed from the
  configuration that never learns it disrupts every leader, dissertation 4.2.3): with the swarm
  generator, ``LIVENESS_BOUND_S`` after every heal that no new fault follows, some leader must
  have committed an entry of its term; and after the final calm period (network healed, every
  manager up) also every voter and every learner must have caught up with it.

A violation is returned with the seed and the last events before it; ``write_full_trace`` runs
the seed again with every message, fault and client operation traced and writes that to a file
(the run is deterministic, so the second run is the failing run). ``novacron vopr --seed S``
replays a seed exactly (same cluster, same faults, same trace).
"""

from __future__ import annotations

import math
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path
from random import Random
from typing import ClassVar

from novacron.raft.invariants import SafetyChecker, SafetyViolation
from novacron.raft.linearizability import GET, PUT, Operation, check_history
from novacron.raft.log import RaftSafetyError
from novacron.raft.messages import NO_NODE, ConfChange, Entry, Message, ReadState
from novacron.raft.node import LEADER, RaftNode, Stored
from novacron.seeding import RunSeeds
from novacron.statemachine import KeyValueStateMachine, encode_command
from sim.network import PROFILES
from sim.raft.cluster import ClusterSettings, Hook, Manager, RaftCluster
from sim.raft.learners import LearnerFaults, with_learners
from sim.raft.swarm import (
    CLIENT_KEYS,
    LIVENESS_BOUND_S,
    MAX_MANAGERS,
    SWARM_VERSION,
    SWARM_VERSIONS,
    ClusterPlan,
    SwarmFaults,
    SwarmNetwork,
    SwarmPlan,
)
from sim.vopr_seeds import SeedOutcome, SeedTotals, run_until_failure, write_trace_file

GENERATORS = ("swarm", *(f"swarm{v}" for v in SWARM_VERSIONS), "classic", "learners")
"""``swarm`` is the latest version of the swarm generator, ``swarmN`` its version N; ``learners``
is the latest swarm plus the learners workload (``sim.raft.learners``)."""
CLIENTS = 6
IN_FLIGHT = 3
CLIENT_TIMEOUT_S = 2.0
LINEARIZABILITY_BUDGET = 200_000
TRACE_TAIL_LINES = 40


class LivenessViolation(AssertionError):
    pass


@dataclass(frozen=True)
class VoprPlan(ClusterPlan):
    """The classic generator: everything a seed decides up front."""

    loss: float
    duplicate: float
    reorder: float
    crash_rate_s: float
    partition_rate_s: float
    membership_rate_s: float
    transfer_rate_s: float
    generator: str = "classic"

    @classmethod
    def draw(cls, seed: int) -> VoprPlan:
        rng = RunSeeds(seed).python("vopr.plan")
        return cls(seed=seed, managers=rng.randint(3, MAX_MANAGERS),
                   profile=rng.choice(("lan", "lan", "wan30", "wan80", "wan150")),
                   loss=rng.choice((0.0, rng.uniform(0, 0.05), rng.uniform(0, 0.3))),
                   duplicate=rng.choice((0.0, rng.uniform(0, 0.1))), reorder=rng.choice((0.0, rng.uniform(0, 0.3))),
                   pre_vote=rng.random() < 0.8, check_quorum=rng.random() < 0.8,
                   crash_rate_s=rng.choice((0.0, rng.uniform(0, 0.5), rng.uniform(0, 3.0))),
                   partition_rate_s=rng.choice((0.0, rng.uniform(0, 0.5), rng.uniform(0, 2.0))),
                   membership_rate_s=rng.choice((0.0, rng.uniform(0, 1.0))),
                   transfer_rate_s=rng.choice((0.0, rng.uniform(0, 1.0))),
                   snapshot_every=rng.choice((0, 4, 16, 64)), max_entries_per_message=rng.choice((1, 2, 64)),
                   client_interval_s=rng.uniform(0.01, 0.1),
                   fault_window_s=rng.uniform(2.0, 6.0), calm_s=3.0, client_keys=len(CLIENT_KEYS), reread_share=0.0)

    def describe(self) -> str:
        return (f"classic: {self.managers} managers, {self.profile} loss={self.loss:.3f} dup={self.duplicate:.3f} "
                f"reorder={self.reorder:.3f} prevote={self.pre_vote} checkquorum={self.check_quorum} "
                f"crash/s={self.crash_rate_s:.2f} partition/s={self.partition_rate_s:.2f} "
                f"membership/s={self.membership_rate_s:.2f} transfer/s={self.transfer_rate_s:.2f} "
                f"snapshot_every={self.snapshot_every} batch={self.max_entries_per_message} "
                f"faults for {self.fault_window_s:.1f} s")

    def network(self, rng: Random, trace: Callable[[str], None] | None) -> SwarmNetwork:
        profile = PROFILES[self.profile].with_faults(loss=self.loss, duplicate=self.duplicate, reorder=self.reorder)
        return SwarmNetwork(profile, rng, trace=trace)


Plan = VoprPlan | SwarmPlan
"""A seed's plan from either generator."""


def draw_plan(seed: int, generator: str = "swarm") -> Plan:
    if generator not in GENERATORS:
        raise ValueError(f"generator {generator!r}: allowed: {', '.join(GENERATORS)}")
    if generator == "classic":
        return VoprPlan.draw(seed)
    if generator == "learners":
        return with_learners(SwarmPlan.draw(seed))
    return SwarmPlan.draw(seed, version=int(generator.removeprefix("swarm") or SWARM_VERSION))


@dataclass
class SeedResult(SeedOutcome[Plan]):
    operations: int = 0
    reads: int = 0
    follower_reads: int = 0
    messages: int = 0
    liveness_checks: int = 0
    learner_events: Counter[str] = field(default_factory=Counter)
    """With the learners workload: how often each of its changes, faults and probes happened."""

    COUNTED: ClassVar[tuple[str, ...]] = ("steps", "operations", "reads", "follower_reads", "liveness_checks")

    def replay_command(self) -> str:
        command = f"novacron vopr --seed {self.seed}"
        if self.plan.generator != "swarm":
            command += f" --generator {self.plan.generator}"
        return command + (f" --plant {self.plant}" if self.plant else "")


class VoprTracer:
    """Collects trace lines: the last ``TRACE_TAIL_LINES`` always, every line when ``full``."""

    def __init__(self, full: bool) -> None:
        self.full = full
        self.tail: deque[str] = deque(maxlen=TRACE_TAIL_LINES)
        self.lines: list[str] = []
        self.now: Callable[[], float] = lambda: 0.0

    def __call__(self, line: str) -> None:
        self.tail.append(line)
        if self.full:
            self.lines.append(line)

    def detail(self, line: str) -> None:
        """A line only the full trace keeps (messages, applies): too many for the tail."""
        if self.full:
            self.lines.append(f"{self.now():8.3f} {line}")


class SafetyCheckingHook(Hook):
    def __init__(self, checker: SafetyChecker, trace: VoprTracer) -> None:
        self.checker = checker
        self.trace = trace
        self._checked_at: dict[int, tuple[int, int]] = {}
        """Per manager, (incarnation, Readys handled) when it was last checked."""

    def stepped(self, cluster: RaftCluster, manager: Manager) -> None:
        # Half the steps are ticks that change nothing the checker reads (no Ready came of
        # them): checking the node again would find what the last check found.
        if manager.node is None:
            return
        seen = (manager.incarnation, manager.readies)
        if self._checked_at.get(manager.node_id) != seen:
            self._checked_at[manager.node_id] = seen
            self.checker.check(manager.node)

    def applied(self, cluster: RaftCluster, manager: Manager, entry: Entry) -> None:
        node = manager.node
        base = node.log.snapshot.index if node is not None else 0
        self.checker.check_applied(manager.node_id, entry, manager.state_machine.snapshot(), base)
        self.trace.detail(f"node {manager.node_id} applied {entry.index} (term {entry.term}, {entry.data[:60]!r})")

    def role_changed(self, cluster: RaftCluster, manager: Manager, old_role: str, old_leader: int) -> None:
        node = manager.node
        if node is not None:
            self.trace(f"{cluster.now_s:8.3f} node {node.id} {old_role} -> {node.role} term {node.term} "
                       f"leader {node.leader} last {node.log.last_index()} commit {node.log.committed} "
                       f"voters {list(node.voters)}"
                       + (f" learners {list(node.learners)}" if node.learners else ""))

    def crashed(self, cluster: RaftCluster, manager: Manager, was_leader: bool) -> None:
        self.checker.forget_node(manager.node_id)
        self.trace(f"{cluster.now_s:8.3f} node {manager.node_id} crashed (leader={was_leader})")

    def restarted(self, cluster: RaftCluster, manager: Manager) -> None:
        self.trace(f"{cluster.now_s:8.3f} node {manager.node_id} restarted")

    def snapshot_installed(self, cluster: RaftCluster, manager: Manager, index: int) -> None:
        self.checker.installed_snapshot(manager.node_id, index)
        self.trace(f"{cluster.now_s:8.3f} node {manager.node_id} installed snapshot {index}")


@dataclass
class _Request:
    client: int
    key: str
    kind: str
    value: str | None
    invoke_s: float
    leader: int
    """The manager that proposes the write or hands out the read index."""
    server: int
    """The manager whose state machine answers the read (the leader, or a follower)."""
    index: int = 0
    term: int = 0
    read_at: int = -1


class _Clients(Hook):
    """Clients that write unique values and read at leaders and followers, recording a history."""

    def __init__(self, rng: Random, trace: VoprTracer, plan: Plan) -> None:
        self.rng = rng
        self.keys = CLIENT_KEYS[:plan.client_keys]
        self.reread_share = plan.reread_share
        self.last_written: dict[int, str] = {}
        """Each client's key of its last completed write (a read may read it back)."""
        self.trace = trace
        self.history: list[Operation] = []
        self.pending: dict[int, _Request] = {}
        self.in_flight: dict[int, int] = dict.fromkeys(range(CLIENTS), 0)
        self.follower_reads = 0
        self.waiting: dict[int, set[int]] = {}
        """Follower reads that have their read index, by serving manager, until it has applied that far."""
        self._counter = 0

    def issue(self, cluster: RaftCluster, client: int) -> None:
        if self.in_flight[client] >= IN_FLIGHT:
            return
        reachable = [m for m in cluster.alive() if not m.paused(cluster.now_s)]
        if not reachable:
            return
        contact = self.rng.choice(reachable).node
        assert contact is not None
        leader = contact if contact.role == LEADER else self._known_leader(cluster, contact.leader)
        key = self.rng.choice(self.keys)
        self._counter += 1
        rid = self._counter
        if leader is None:
            return
        # Registered before the call: a single-voter leader commits, applies and answers within it.
        if self.rng.random() < 0.5:
            value = f"{client}.{rid}"
            request = _Request(client, key, PUT, value, cluster.now_s, leader.id, leader.id,
                               index=leader.log.last_index() + 1, term=leader.term)
            self._start(rid, request)
            placed = cluster.propose(leader.id, encode_command(op="put", key=key, value=value))
            if placed is None:
                self._finish(rid)
                return
            assert placed == (request.index, request.term), "a leader appends at last index + 1 in its term"
        else:
            if self.reread_share and client in self.last_written and self.rng.random() < self.reread_share:
                key = self.last_written[client]  # read your own write: is it there?
            at_follower = contact.id != leader.id and self.rng.random() < 0.5
            server = contact.id if at_follower else leader.id
            request = _Request(client, key, GET, None, cluster.now_s, leader.id, server)
            self._start(rid, request)
            if not cluster.read_index(leader.id, f"r{rid}".encode()):
                self._finish(rid)
                return
        self.trace.detail(f"client {client} invokes #{rid} {request.kind}({key}, {request.value}) at leader "
                          f"{request.leader}, served by {request.server}")

    @staticmethod
    def _known_leader(cluster: RaftCluster, leader_id: int) -> RaftNode | None:
        if leader_id == NO_NODE or leader_id not in cluster.managers:
            return None
        manager = cluster.managers[leader_id]
        return manager.node if manager.node is not None and not manager.paused(cluster.now_s) else None

    def applied(self, cluster: RaftCluster, manager: Manager, entry: Entry) -> None:
        for rid, request in list(self.pending.items()):
            if request.kind == PUT and request.leader == manager.node_id and request.index == entry.index:
                self._finish(rid)
                if entry.term == request.term:
                    self._record(rid, request, request.value, cluster.now_s)
                # else: another leader's entry took the slot, so this put never took effect

    def read_ready(self, cluster: RaftCluster, manager: Manager, read: ReadState) -> None:
        rid = int(read.context[1:])
        request = self.pending.get(rid)
        if request is None or request.kind != GET or request.leader != manager.node_id:
            return
        request.read_at = read.index
        if not self._maybe_serve(cluster, rid, request):
            self.waiting.setdefault(request.server, set()).add(rid)

    def stepped(self, cluster: RaftCluster, manager: Manager) -> None:
        waiting = self.waiting.get(manager.node_id)
        if not waiting or manager.node is None:
            return
        for rid in sorted(waiting):
            self._maybe_serve(cluster, rid, self.pending[rid])

    def _maybe_serve(self, cluster: RaftCluster, rid: int, request: _Request) -> bool:
        server = cluster.managers[request.server]
        if server.node is None or server.paused(cluster.now_s) or server.node.log.applied < request.read_at:
            return False
        state_machine = server.state_machine
        assert isinstance(state_machine, KeyValueStateMachine)
        self._finish(rid)
        if request.server != request.leader:
            self.follower_reads += 1
        self._record(rid, request, state_machine.get(request.key), cluster.now_s)
        return True

    def _start(self, rid: int, request: _Request) -> None:
        self.pending[rid] = request
        self.in_flight[request.client] += 1

    def _finish(self, rid: int) -> None:
        request = self.pending.pop(rid)
        self.in_flight[request.client] -= 1
        waiting = self.waiting.get(request.server)
        if waiting is not None:
            waiting.discard(rid)

    def _record(self, rid: int, request: _Request, value: str | None, response_s: float) -> None:
        op = Operation(request.client, request.key, request.kind, value, request.invoke_s, response_s)
        self.history.append(op)
        if op.kind == PUT:
            self.last_written[op.client] = op.key
        self.trace.detail(f"client {request.client} #{rid} done: {op.describe()}")

    def expire(self, now_s: float, *, all_pending: bool = False) -> None:
        for rid, request in list(self.pending.items()):
            if all_pending or now_s - request.invoke_s > CLIENT_TIMEOUT_S:
                self._give_up(rid, request)

    def crashed(self, cluster: RaftCluster, manager: Manager, was_leader: bool) -> None:
        for rid, request in list(self.pending.items()):
            lost_leader = request.leader == manager.node_id and request.read_at < 0
            if lost_leader or (request.kind == GET and request.server == manager.node_id):
                self._give_up(rid, request)

    def _give_up(self, rid: int, request: _Request) -> None:
        self._finish(rid)
        if request.kind == PUT:  # it may still take effect: its response time is unknown
            self.history.append(Operation(request.client, request.key, PUT, request.value, request.invoke_s,
                                          math.inf))
        # a read with an unknown outcome tells nothing: left out


NodeFactory = type[RaftNode]


def _traced(node_class: NodeFactory, tracer: VoprTracer) -> NodeFactory:
    """A subclass of ``node_class`` that writes every message it steps into the full trace."""

    class Traced(node_class):  # type: ignore[valid-type,misc]
        def step(self, m: Message) -> None:
            tracer.detail(f"node {self.id} (term {self.term} {self.role}) steps {m.describe()}"
                          + (f" commit={m.commit}" if m.commit else ""))
            super().step(m)

    return Traced


def run_seed(seed: int, *, node_class: NodeFactory = RaftNode, generator: str = "swarm",
             full_trace: bool = False, plant: str | None = None, commit_broadcast: bool = True) -> SeedResult:
    """One seed's plan, faults and clients, checked. ``commit_broadcast=False`` runs the same plan
    with ``RaftConfig.commit_broadcast`` off (the generator's draws are unchanged)."""
    plan = draw_plan(seed, generator)
    seeds = RunSeeds(seed)
    tracer = VoprTracer(full_trace)
    network = plan.network(seeds.python("vopr.network"), tracer.detail if full_trace else None)
    checker = SafetyChecker(check_gaps=True, check_votes=True,
                            holds=lambda node_id, index, term: cluster.holds(node_id, index, term))
    clients = _Clients(seeds.python("vopr.clients"), tracer, plan)
    result = SeedResult(seed, True, plan, plant=plant)
    live = plan.pre_vote or plan.check_quorum
    node_class = _traced(node_class, tracer) if full_trace else node_class
    faults: SwarmFaults | None = None
    if isinstance(plan, SwarmPlan):
        faults = SwarmFaults(network, plan, seeds.python("vopr.faults"), tracer,
                             on_heal=lambda: _check_liveness_later(cluster, faults, result) if live else None)
        node_class = faults.node_class(node_class)
    try:
        cluster = RaftCluster(_with_commit_broadcast(plan.settings(), commit_broadcast), network,
                              seeds.python("vopr.cluster"),
                              hooks=[SafetyCheckingHook(checker, tracer), clients], node_class=node_class)
        tracer.now = lambda: cluster.now_s
        tracer(f"{0.0:8.3f} plan: {plan.describe()}")
        if faults is not None:
            faults.schedule(cluster)
            _schedule_learner_faults(faults, seeds, result)
        else:
            _schedule_classic_faults(cluster, plan, seeds.python("vopr.faults"), tracer)  # type: ignore[arg-type]
        _schedule_clients(cluster, plan, clients)
        cluster.run_until(plan.fault_window_s)
        _calm_down(cluster, tracer)
        cluster.run_until(plan.fault_window_s + plan.calm_s)
        clients.expire(cluster.now_s, all_pending=True)
        result.steps, result.messages = cluster.steps, network.sent
        verdict = check_history(clients.history, budget=LINEARIZABILITY_BUDGET)
        result.unknown_keys = verdict.unknown_keys
        stuck = _liveness_problem(cluster, catch_up=True) if live else None
        if not verdict.ok:
            result.ok = False
            result.violation = f"Linearizability: the history of key {verdict.key!r} is not linearizable"
            for op in verdict.history[-TRACE_TAIL_LINES:]:
                tracer(op.describe())
        elif stuck is not None:
            result.ok = False
            result.violation = f"Liveness: {stuck}, {plan.calm_s:g} s after the faults stopped"
    except (SafetyViolation, RaftSafetyError, LivenessViolation) as exc:
        result.ok = False
        result.violation = str(exc)
    result.operations = len(clients.history)
    result.reads = sum(1 for op in clients.history if op.kind == GET)
    result.follower_reads = clients.follower_reads
    result.trace = tracer.lines if full_trace else list(tracer.tail)
    return result


def _schedule_learner_faults(faults: SwarmFaults, seeds: RunSeeds, result: SeedResult) -> None:
    """The learners workload's own faults, if the plan has it; ``result`` shares their counts."""
    if faults.plan.learners is None:
        return
    learner_faults = LearnerFaults(faults, faults.plan.learners, seeds.python("vopr.learners.faults"))
    result.learner_events = learner_faults.events
    learner_faults.schedule(faults.cluster)


def _check_liveness_later(cluster: RaftCluster, faults: SwarmFaults | None, result: SeedResult) -> None:
    """The cluster is whole again: unless a new fault starts first, it must be live within the bound."""
    assert faults is not None
    healed_at = faults.state.changes

    def check() -> None:
        if faults.state.changes != healed_at:
            return
        result.liveness_checks += 1
        problem = _liveness_problem(cluster, catch_up=False)
        if problem is not None:
            raise LivenessViolation(f"Liveness: {problem}, {LIVENESS_BOUND_S:g} s after the last fault healed "
                                    f"at {cluster.now_s - LIVENESS_BOUND_S:.3f} s")
    cluster.schedule(cluster.now_s + LIVENESS_BOUND_S, check)


def _liveness_problem(cluster: RaftCluster, *, catch_up: bool) -> str | None:
    """Some leader must have committed in its term; with ``catch_up`` every voter and learner caught up too."""
    leader = cluster.leader()
    if leader is None:
        return "no leader"
    if leader.log.term(leader.log.committed) != leader.term:
        return f"leader {leader.id} has not committed an entry of its term {leader.term}"
    if not catch_up:
        return None
    commit = leader.log.committed
    behind = [v for v in leader.members() if (node := cluster.node(v)) is None or node.log.committed < commit]
    if behind:
        kind = "members" if leader.learners else "voters"
        return f"{kind} {behind} are behind leader {leader.id} (commit {commit})"
    return None


def _schedule_clients(cluster: RaftCluster, plan: Plan, clients: _Clients) -> None:
    end_s = plan.fault_window_s + plan.calm_s - CLIENT_TIMEOUT_S / 2

    def tick(client: int, at_s: float) -> None:
        def fire() -> None:
            clients.expire(cluster.now_s)
            clients.issue(cluster, client)
            nxt = cluster.now_s + clients.rng.expovariate(1 / plan.client_interval_s)
            if nxt < end_s:
                tick(client, nxt)
        cluster.schedule(at_s, fire)

    for client in range(CLIENTS):
        tick(client, 0.5 + client * 0.01)


# -- the classic generator's faults ------------------------------------------------------------------


def _schedule_classic_faults(cluster: RaftCluster, plan: VoprPlan, rng: Random, trace: VoprTracer) -> None:
    kinds: list[tuple[float, Callable[[RaftCluster, Random, VoprTracer], None]]] = [
        (plan.crash_rate_s, _crash_one), (plan.partition_rate_s, _partition),
        (plan.membership_rate_s, _change_membership), (plan.transfer_rate_s, _transfer)]
    for rate, action in kinds:
        if rate <= 0:
            continue
        at_s = rng.expovariate(rate)
        while at_s < plan.fault_window_s:
            cluster.schedule(at_s, lambda act=action: act(cluster, rng, trace))  # type: ignore[misc]
            at_s += rng.expovariate(rate)


def _crash_one(cluster: RaftCluster, rng: Random, trace: VoprTracer) -> None:
    alive = cluster.alive()
    if not alive:
        return
    leader = cluster.leader()
    # Half the crashes hit the leader: the histories of Figure 8 need leaders to die mid-replication.
    victim = leader.id if leader is not None and rng.random() < 0.5 else rng.choice(alive).node_id
    cluster.crash(victim)
    cluster.schedule(cluster.now_s + rng.uniform(0.05, 2.0), lambda: cluster.restart(victim))


def _partition(cluster: RaftCluster, rng: Random, trace: VoprTracer) -> None:
    ids = sorted(cluster.managers)
    rng.shuffle(ids)
    cut = rng.randint(1, len(ids) - 1)
    groups = [ids[:cut], ids[cut:]]
    symmetric = rng.random() < 0.7
    cluster.network.partition(groups, symmetric=symmetric)
    trace(f"{cluster.now_s:8.3f} partition {groups} symmetric={symmetric}")

    def heal() -> None:
        cluster.network.heal()
        trace(f"{cluster.now_s:8.3f} network healed")
    cluster.schedule(cluster.now_s + rng.uniform(0.1, 2.5), heal)


def _change_membership(cluster: RaftCluster, rng: Random, trace: VoprTracer) -> None:
    leader = cluster.leader()
    if leader is None:
        return
    voters = leader.voters
    outside = [i for i in range(1, MAX_MANAGERS + 1) if i not in voters]
    if outside and (len(voters) <= 3 or rng.random() < 0.5):
        change = ConfChange("add", rng.choice(outside))
        if change.node_id not in cluster.managers:
            cluster.add_manager(change.node_id, Stored())
    else:
        change = ConfChange("remove", rng.choice(voters))
    if cluster.propose_conf_change(leader.id, change) is not None:
        trace(f"{cluster.now_s:8.3f} leader {leader.id} proposes {change.action} {change.node_id}")


def _transfer(cluster: RaftCluster, rng: Random, trace: VoprTracer) -> None:
    leader = cluster.leader()
    if leader is None or len(leader.voters) < 2:
        return
    target = rng.choice([v for v in leader.voters if v != leader.id] or [leader.id])
    if cluster.transfer_leadership(leader.id, target):
        trace(f"{cluster.now_s:8.3f} leader {leader.id} transfers to {target}")


def _calm_down(cluster: RaftCluster, trace: VoprTracer) -> None:
    cluster.network.heal()
    cluster.network.set_profile(PROFILES["lan"])
    for node_id in sorted(cluster.managers):
        cluster.restart(node_id)
    trace(f"{cluster.now_s:8.3f} calm: network healed and fault-free, every manager up")


# -- running many seeds ---------------------------------------------------------------------------------


def _with_commit_broadcast(settings: ClusterSettings, commit_broadcast: bool) -> ClusterSettings:
    if settings.raft.commit_broadcast == commit_broadcast:
        return settings
    return replace(settings, raft=replace(settings.raft, commit_broadcast=commit_broadcast))


def run_seeds(seeds: list[int], *, progress: bool = True, node_class: NodeFactory = RaftNode,
              generator: str = "swarm", plant: str | None = None, trace_dir: Path = Path("vopr-traces"),
              out: Callable[[str], None] = print) -> int:
    """Run seeds in order; stop at the first violation, print it, write its full trace, return 1."""

    def describe(totals: SeedTotals) -> str:
        n = totals.counts
        return (f"{generator} generator; {n['steps']} steps checked, {n['operations']} client operations "
                f"linearizable, {n['reads']} reads of which {n['follower_reads']} at followers, "
                f"{n['liveness_checks']} liveness checks after heals; {totals.seeds / totals.wall_s:.1f} seeds/s")

    return run_until_failure(
        seeds, lambda seed: run_seed(seed, node_class=node_class, generator=generator, plant=plant), tool="vopr",
        progress=progress, write_trace=lambda result: write_full_trace(result, trace_dir, node_class),
        describe=describe, out=out)


def write_full_trace(result: SeedResult, directory: Path, node_class: NodeFactory = RaftNode) -> Path:
    """Run the failing seed again with every event traced; write it to a file and return its path."""
    again = run_seed(result.seed, node_class=node_class, generator=result.plan.generator, full_trace=True,
                     plant=result.plant)
    return write_trace_file(directory, f"seed-{result.seed}-{result.plan.generator}", again)

"""Deterministic simulation testing of the Raft core ("vopr", after TigerBeetle's simulator).

Theory of operation
-------------------
One seed is one experiment, and everything in it derives from the seed (``RunSeeds(seed)``):
the cluster size (3 to 7 managers), the network profile and its fault rates (loss, duplication,
reordering), whether PreVote/CheckQuorum are on, how often managers crash and restart, how
often the network partitions (symmetric, asymmetric or one node isolated) and heals, how often
the leader is asked to transfer leadership or to add or remove a voter, and how often state
machines compact into snapshots. Each seed draws its own *rates*, so some seeds are calm and
some are storms (TigerBeetle's "swarm testing", ``docs/internals/vopr.md``).

After every step of every node the ``SafetyChecker`` checks the five properties of Figure 3 of
the Raft paper. Clients write unique values and read keys through the leader (reads use
ReadIndex); at the end the history is checked for linearizability per key. A seed ends with a
calm period (network healed, every manager restarted) so pending operations can finish.

After the calm period the cluster must also be live: one leader that has committed an entry of
its term, every voter caught up with it. (Only when PreVote or CheckQuorum is on: without both, a
server removed from the configuration that never learns it was removed disrupts every leader
with ever higher terms -- a known limitation, dissertation section 4.2.3.)

A violation is returned with the seed and the last events before it; ``novacron vopr --seed S``
replays that seed exactly (same cluster, same faults, same trace).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from random import Random

from novacron.raft.invariants import SafetyChecker, SafetyViolation
from novacron.raft.linearizability import GET, PUT, Operation, check_history
from novacron.raft.log import RaftSafetyError
from novacron.raft.messages import NO_NODE, ConfChange, Entry, ReadState
from novacron.raft.node import LEADER, RaftNode, Stored
from novacron.seeding import RunSeeds
from novacron.statemachine import KeyValueStateMachine, encode_command
from sim.network import PROFILES, NetworkModel
from sim.raft.cluster import ClusterSettings, Hook, Manager, RaftCluster

MAX_MANAGERS = 7
KEYS = ("a", "b", "c")
CLIENTS = 3
CLIENT_TIMEOUT_S = 2.0


@dataclass(frozen=True)
class VoprPlan:
    """Everything a seed decides up front."""

    seed: int
    managers: int
    profile: str
    loss: float
    duplicate: float
    reorder: float
    pre_vote: bool
    check_quorum: bool
    crash_rate_s: float
    partition_rate_s: float
    membership_rate_s: float
    transfer_rate_s: float
    snapshot_every: int
    max_entries_per_message: int
    client_interval_s: float
    fault_window_s: float
    calm_s: float

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
                   fault_window_s=rng.uniform(2.0, 6.0), calm_s=3.0)

    def describe(self) -> str:
        return (f"{self.managers} managers, {self.profile} loss={self.loss:.3f} dup={self.duplicate:.3f} "
                f"reorder={self.reorder:.3f} prevote={self.pre_vote} checkquorum={self.check_quorum} "
                f"crash/s={self.crash_rate_s:.2f} partition/s={self.partition_rate_s:.2f} "
                f"membership/s={self.membership_rate_s:.2f} transfer/s={self.transfer_rate_s:.2f} "
                f"snapshot_every={self.snapshot_every} batch={self.max_entries_per_message} "
                f"faults for {self.fault_window_s:.1f} s")


@dataclass
class SeedResult:
    seed: int
    ok: bool
    plan: VoprPlan
    violation: str | None = None
    trace: list[str] = field(default_factory=list)
    steps: int = 0
    operations: int = 0
    messages: int = 0


class _Checking(Hook):
    def __init__(self, checker: SafetyChecker, trace: deque[str]) -> None:
        self.checker = checker
        self.trace = trace

    def stepped(self, cluster: RaftCluster, manager: Manager) -> None:
        if manager.node is not None:
            self.checker.check(manager.node)

    def applied(self, cluster: RaftCluster, manager: Manager, entry: Entry) -> None:
        self.checker.check_applied(manager.node_id, entry)

    def role_changed(self, cluster: RaftCluster, manager: Manager, old_role: str, old_leader: int) -> None:
        node = manager.node
        if node is not None:
            self.trace.append(f"{cluster.now_s:8.3f} node {node.id} {old_role} -> {node.role} term {node.term} "
                              f"leader {node.leader} last {node.log.last_index()} commit {node.log.committed}")

    def crashed(self, cluster: RaftCluster, manager: Manager, was_leader: bool) -> None:
        self.trace.append(f"{cluster.now_s:8.3f} node {manager.node_id} crashed (leader={was_leader})")

    def restarted(self, cluster: RaftCluster, manager: Manager) -> None:
        self.checker.forget_node(manager.node_id)
        self.trace.append(f"{cluster.now_s:8.3f} node {manager.node_id} restarted")

    def snapshot_installed(self, cluster: RaftCluster, manager: Manager, index: int) -> None:
        self.trace.append(f"{cluster.now_s:8.3f} node {manager.node_id} installed snapshot {index}")


@dataclass
class _Pending:
    client: int
    key: str
    kind: str
    value: str | None
    invoke_s: float
    manager: int
    index: int = 0
    term: int = 0


class _Clients(Hook):
    """Clients that write unique values and read through ReadIndex, recording a history."""

    def __init__(self, rng: Random, trace: deque[str]) -> None:
        self.rng = rng
        self.trace = trace
        self.history: list[Operation] = []
        self.pending: dict[int, _Pending] = {}
        self._counter = 0

    def issue(self, cluster: RaftCluster, client: int) -> None:
        if client in self.pending:
            return
        alive = cluster.alive()
        if not alive:
            return
        node = self.rng.choice(alive).node
        assert node is not None
        if node.role != LEADER and node.leader != NO_NODE and cluster.node(node.leader) is not None:
            node = cluster.node(node.leader)
            assert node is not None
        key = self.rng.choice(KEYS)
        self._counter += 1
        if self.rng.random() < 0.5:
            value = f"{client}.{self._counter}"
            op = _Pending(client, key, PUT, value, cluster.now_s, node.id)
            placed = cluster.propose(node.id, encode_command(op="put", key=key, value=value))
            if placed is None:
                return
            op.index, op.term = placed
        else:
            op = _Pending(client, key, GET, None, cluster.now_s, node.id)
            if not cluster.read_index(node.id, f"r{self._counter}".encode()):
                return
            op.index = self._counter
        self.pending[client] = op

    def applied(self, cluster: RaftCluster, manager: Manager, entry: Entry) -> None:
        for client, op in list(self.pending.items()):
            if op.kind == PUT and op.manager == manager.node_id and op.index == entry.index:
                del self.pending[client]
                if entry.term == op.term:
                    self.history.append(Operation(client, op.key, PUT, op.value, op.invoke_s, cluster.now_s))
                # else: another leader's entry took the slot, so this put never took effect

    def read_ready(self, cluster: RaftCluster, manager: Manager, read: ReadState) -> None:
        for client, op in list(self.pending.items()):
            if op.kind == GET and op.manager == manager.node_id and read.context == f"r{op.index}".encode():
                del self.pending[client]
                state_machine = manager.state_machine
                assert isinstance(state_machine, KeyValueStateMachine)
                self.history.append(Operation(client, op.key, GET, state_machine.get(op.key), op.invoke_s,
                                              cluster.now_s))

    def expire(self, now_s: float, *, all_pending: bool = False) -> None:
        for client, op in list(self.pending.items()):
            if all_pending or now_s - op.invoke_s > CLIENT_TIMEOUT_S:
                self._give_up(client, op)

    def crashed(self, cluster: RaftCluster, manager: Manager, was_leader: bool) -> None:
        for client, op in list(self.pending.items()):
            if op.manager == manager.node_id:
                self._give_up(client, op)

    def _give_up(self, client: int, op: _Pending) -> None:
        del self.pending[client]
        if op.kind == PUT:  # it may still take effect: its response time is unknown
            self.history.append(Operation(client, op.key, PUT, op.value, op.invoke_s, math.inf))


NodeFactory = Callable[..., RaftNode]


def run_seed(seed: int, *, node_class: NodeFactory = RaftNode, trace_lines: int = 25) -> SeedResult:
    plan = VoprPlan.draw(seed)
    seeds = RunSeeds(seed)
    trace: deque[str] = deque(maxlen=trace_lines)
    profile = PROFILES[plan.profile].with_faults(loss=plan.loss, duplicate=plan.duplicate, reorder=plan.reorder)
    network = NetworkModel(profile, seeds.python("vopr.network"))
    checker = SafetyChecker()
    clients = _Clients(seeds.python("vopr.clients"), trace)
    settings = ClusterSettings(managers=plan.managers, pre_vote=plan.pre_vote, check_quorum=plan.check_quorum,
                               snapshot_every=plan.snapshot_every,
                               max_entries_per_message=plan.max_entries_per_message)
    result = SeedResult(seed, True, plan)
    try:
        cluster = RaftCluster(settings, network, seeds.python("vopr.cluster"),
                              hooks=[_Checking(checker, trace), clients], node_class=node_class)
        _schedule_faults(cluster, plan, seeds.python("vopr.faults"), trace)
        _schedule_clients(cluster, plan, clients)
        cluster.run_until(plan.fault_window_s)
        _calm_down(cluster, trace)
        cluster.run_until(plan.fault_window_s + plan.calm_s)
        clients.expire(cluster.now_s, all_pending=True)
        verdict = check_history(clients.history)
        stuck = _liveness_problem(cluster) if plan.pre_vote or plan.check_quorum else None
        if not verdict.ok:
            result.ok = False
            result.violation = f"Linearizability: the history of key {verdict.key!r} is not linearizable"
            trace.extend(op.describe() for op in verdict.history[-trace_lines:])
        elif stuck is not None:
            result.ok = False
            result.violation = f"Liveness: {stuck}, {plan.calm_s:g} s after the faults stopped"
        result.steps, result.messages = cluster.steps, network.sent
    except (SafetyViolation, RaftSafetyError) as exc:
        result.ok = False
        result.violation = str(exc)
    result.operations = len(clients.history)
    result.trace = list(trace)
    return result


def _liveness_problem(cluster: RaftCluster) -> str | None:
    """After the calm period one leader must have committed in its term and every voter caught up."""
    leader = cluster.leader()
    if leader is None:
        return "no leader"
    if leader.log.term(leader.log.committed) != leader.term:
        return f"leader {leader.id} has not committed an entry of its term {leader.term}"
    commit = leader.log.committed
    behind = [v for v in leader.voters if (node := cluster.node(v)) is None or node.log.committed < commit]
    if behind:
        return f"voters {behind} are behind leader {leader.id} (commit {commit})"
    return None


def _schedule_clients(cluster: RaftCluster, plan: VoprPlan, clients: _Clients) -> None:
    def tick(client: int, at_s: float) -> None:
        def fire() -> None:
            clients.expire(cluster.now_s)
            clients.issue(cluster, client)
            nxt = cluster.now_s + clients.rng.expovariate(1 / plan.client_interval_s)
            if nxt < plan.fault_window_s + plan.calm_s - CLIENT_TIMEOUT_S / 2:
                tick(client, nxt)
        cluster.schedule(at_s, fire)

    for client in range(CLIENTS):
        tick(client, 0.5 + client * 0.01)


def _schedule_faults(cluster: RaftCluster, plan: VoprPlan, rng: Random, trace: deque[str]) -> None:
    kinds: list[tuple[float, Callable[[RaftCluster, Random, deque[str]], None]]] = [
        (plan.crash_rate_s, _crash_one), (plan.partition_rate_s, _partition),
        (plan.membership_rate_s, _change_membership), (plan.transfer_rate_s, _transfer)]
    for rate, action in kinds:
        if rate <= 0:
            continue
        at_s = rng.expovariate(rate)
        while at_s < plan.fault_window_s:
            cluster.schedule(at_s, lambda act=action: act(cluster, rng, trace))  # type: ignore[misc]
            at_s += rng.expovariate(rate)


def _crash_one(cluster: RaftCluster, rng: Random, trace: deque[str]) -> None:
    alive = cluster.alive()
    if not alive:
        return
    leader = cluster.leader()
    # Half the crashes hit the leader: the histories of Figure 8 need leaders to die mid-replication.
    victim = leader.id if leader is not None and rng.random() < 0.5 else rng.choice(alive).node_id
    cluster.crash(victim)
    cluster.schedule(cluster.now_s + rng.uniform(0.05, 2.0), lambda: cluster.restart(victim))


def _partition(cluster: RaftCluster, rng: Random, trace: deque[str]) -> None:
    ids = sorted(cluster.managers)
    rng.shuffle(ids)
    cut = rng.randint(1, len(ids) - 1)
    groups = [ids[:cut], ids[cut:]]
    symmetric = rng.random() < 0.7
    cluster.network.partition(groups, symmetric=symmetric)
    trace.append(f"{cluster.now_s:8.3f} partition {groups} symmetric={symmetric}")

    def heal() -> None:
        cluster.network.heal()
        trace.append(f"{cluster.now_s:8.3f} network healed")
    cluster.schedule(cluster.now_s + rng.uniform(0.1, 2.5), heal)


def _change_membership(cluster: RaftCluster, rng: Random, trace: deque[str]) -> None:
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
        trace.append(f"{cluster.now_s:8.3f} leader {leader.id} proposes {change.action} {change.node_id}")


def _transfer(cluster: RaftCluster, rng: Random, trace: deque[str]) -> None:
    leader = cluster.leader()
    if leader is None or len(leader.voters) < 2:
        return
    target = rng.choice([v for v in leader.voters if v != leader.id] or [leader.id])
    if cluster.transfer_leadership(leader.id, target):
        trace.append(f"{cluster.now_s:8.3f} leader {leader.id} transfers to {target}")


def _calm_down(cluster: RaftCluster, trace: deque[str]) -> None:
    cluster.network.heal()
    cluster.network.set_profile(PROFILES["lan"])
    for node_id in sorted(cluster.managers):
        cluster.restart(node_id)
    trace.append(f"{cluster.now_s:8.3f} calm: network healed and fault-free, every manager up")


def run_seeds(seeds: list[int], *, progress: bool = True, node_class: NodeFactory = RaftNode,
              out: Callable[[str], None] = print) -> int:
    """Run seeds in order; stop at the first violation, print it and return 1 (else 0)."""
    from tqdm import tqdm

    steps = operations = 0
    with tqdm(seeds, unit="seed", disable=not progress, leave=False, desc="vopr") as bar:
        for done, seed in enumerate(bar, start=1):
            result = run_seed(seed, node_class=node_class)
            steps += result.steps
            operations += result.operations
            if not progress and done % 1000 == 0:
                out(f"vopr: {done}/{len(seeds)} seeds passed")
            if not result.ok:
                bar.close()
                report_failure(result, out)
                return 1
    out(f"vopr: {len(seeds)} seeds passed ({steps} steps checked, {operations} client operations "
        "linearizable)")
    return 0


def report_failure(result: SeedResult, out: Callable[[str], None] = print) -> None:
    out(f"vopr: seed {result.seed} FAILED: {result.violation}")
    out(f"  plan: {result.plan.describe()}")
    out("  last events:")
    for line in result.trace:
        out(f"    {line}")
    out(f"  replay: novacron vopr --seed {result.seed}")

"""Deterministic simulation testing of the PBFT core under Byzantine faults (the Byzantine vopr).

Theory of operation
-------------------
One seed is one experiment: ``BftPlan.draw(seed)`` decides the cluster (4-7 replicas, a network
profile, checkpoint interval, batch size, signature scheme) and, swarm-style (``sim.raft.swarm``:
each fault kind on with probability one half, intensities drawn), the faults:

- network and crash faults, through ``sim.raft.swarm.SwarmNetwork``: ``crash`` (any replica, down
  for up to 1.5 s; correct ones restart from their stored log), ``partition`` (random splits,
  symmetric or one-way), ``primary-cut`` (the current primary isolated), ``pause``, ``duplication``
  storms, steady ``loss``, ``jitter`` (late and reordered messages), ``clock`` rates of 0.5-1.5x;
- Byzantine replicas: if any of ``sim.bft.byzantine.BYZANTINE_KINDS`` is on, 1 to ``f`` replicas
  (half the time including the first primary) lie in those ways for the whole run.

Clients (``CLIENTS`` of them, one request at a time each, ``put``/``get`` on a few keys) multicast
signed requests and resend them every ``CLIENT_RETRY_S``; a client accepts a result at ``f + 1``
matching replies (``BftClient``).

Checks on every seed:

- after every execution and stable checkpoint on a correct replica, agreement, validity and
  exactly-once (``BftSafetyChecker``);
- every forged message is rejected: no correct replica may ever accept one (the forgeries are
  counted, and a planted bug that accepts them shows up as an agreement violation);
- every client's history of accepted results is linearizable per key (``novacron.raft.linearizability``,
  the Raft vopr's checker): a result accepted at ``f + 1`` matching replies is one that a sequential
  execution gives;
- liveness after stabilisation: after the fault window the network heals, every replica restarts,
  the Byzantine replicas (at most ``f``) keep lying; within ``LIVENESS_BOUND_S`` every client
  request issued since must complete, and by the end every correct replica must have executed what
  the most advanced one had executed ``LIVENESS_BOUND_S`` earlier.

``novacron bft-vopr --seed S`` replays a seed exactly; a failure prints the seed, the plan, the
last trace lines and the replay command, and writes the full trace to a file.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from random import Random
from typing import ClassVar

from novacron.bft.checker import BftSafetyChecker, BftSafetyViolation
from novacron.bft.client import BftClient
from novacron.bft.crypto import SIGNATURE_SCHEMES, make_keyring
from novacron.bft.messages import Signed
from novacron.bft.replica import Executed, Replica, StableCheckpoint, state_digest
from novacron.raft.linearizability import GET, PUT, Operation, check_history
from novacron.seeding import RunSeeds
from sim.bft.byzantine import BYZANTINE_KINDS, Liar
from sim.bft.cluster import SIM_REPLICA, BftCluster, BftSettings, Hook, Member
from sim.network import PROFILES
from sim.raft.swarm import FaultState, SwarmNetwork
from sim.raft.vopr import VoprTracer
from sim.vopr_seeds import SeedOutcome, SeedTotals, run_until_failure, write_trace_file

NETWORK_KINDS = ("crash", "partition", "primary-cut", "pause", "duplication", "loss", "jitter", "clock")
REPLICA_COUNTS = (4, 4, 4, 5, 6, 7, 7)
CLIENTS = 3
CLIENT_BASE_ID = 100
CLIENT_RETRY_S = 1.0
LIVENESS_BOUND_S = 5.0
CALM_S = 8.0
KEYS = (b"a", b"b", b"c")
LINEARIZABILITY_BUDGET = 200_000


class BftLivenessViolation(AssertionError):
    pass


@dataclass(frozen=True)
class BftPlan:
    seed: int
    replicas: int
    profile: str
    kinds: frozenset[str]
    byzantine: tuple[int, ...]
    byzantine_kinds: frozenset[str]
    lie_share: float
    silent_to: tuple[int, ...]
    view_change_delay_s: float
    crash_rate_s: float
    partition_rate_s: float
    cut_rate_s: float
    pause_rate_s: float
    storm_rate_s: float
    loss: float
    jitter_s: float
    clock_rates: tuple[float, ...]
    checkpoint_interval: int
    max_batch: int
    client_interval_s: float
    fault_window_s: float
    signatures: str

    @property
    def faulty(self) -> int:
        return (self.replicas - 1) // 3

    @classmethod
    def draw(cls, seed: int, signatures: str = "simulated") -> BftPlan:
        if signatures not in SIGNATURE_SCHEMES:
            raise ValueError(f"signatures {signatures!r}: allowed: {', '.join(SIGNATURE_SCHEMES)}")
        rng = RunSeeds(seed).python("bft-vopr.plan")
        kinds = frozenset(k for k in NETWORK_KINDS if rng.random() < 0.5)
        liar_kinds = frozenset(k for k in BYZANTINE_KINDS if rng.random() < 0.5)
        replicas = rng.choice(REPLICA_COUNTS)
        f = (replicas - 1) // 3
        count = rng.randint(1, f) if liar_kinds else 0
        # Half the time the first primary lies: equivocation needs a Byzantine primary.
        pool = list(range(2, replicas + 1))
        first = [1] if count and rng.random() < 0.5 else []
        byzantine = tuple(sorted(first + rng.sample(pool, count - len(first))))
        silent_to = tuple(sorted(rng.sample(range(1, replicas + 1), rng.randint(1, replicas))))

        def rate(kind: str, low: float, high: float) -> float:
            value = rng.uniform(low, high)
            return value if kind in kinds else 0.0

        clocks = tuple(rng.uniform(0.5, 1.5) for _ in range(replicas))
        return cls(seed=seed, replicas=replicas, profile=rng.choice(("lan", "lan", "wan30", "wan80")), kinds=kinds,
                   byzantine=byzantine, byzantine_kinds=liar_kinds if count else frozenset(),
                   lie_share=rng.uniform(0.2, 1.0), silent_to=silent_to,
                   view_change_delay_s=rng.uniform(0.1, 3.0), crash_rate_s=rate("crash", 0.1, 2.0),
                   partition_rate_s=rate("partition", 0.2, 1.0), cut_rate_s=rate("primary-cut", 0.2, 1.0),
                   pause_rate_s=rate("pause", 0.2, 1.0), storm_rate_s=rate("duplication", 0.2, 1.0),
                   loss=rate("loss", 0.0, 0.1), jitter_s=rate("jitter", 0.002, 0.1),
                   clock_rates=clocks if "clock" in kinds else (1.0,) * replicas,
                   checkpoint_interval=rng.choice((2, 4, 8)), max_batch=rng.choice((1, 4, 8)),
                   client_interval_s=rng.uniform(0.005, 0.1), fault_window_s=rng.uniform(3.0, 6.0),
                   signatures=signatures)

    def settings(self) -> BftSettings:
        replica = replace(SIM_REPLICA, replicas=self.replicas, checkpoint_interval=self.checkpoint_interval,
                          log_window=4 * self.checkpoint_interval, max_batch=self.max_batch)
        return BftSettings(bft=replica)

    def describe(self) -> str:
        kinds = ",".join(k for k in NETWORK_KINDS if k in self.kinds) or "none"
        liars = ",".join(k for k in BYZANTINE_KINDS if k in self.byzantine_kinds) or "none"
        return (f"{self.replicas} replicas (f={self.faulty}), {self.profile}, faults [{kinds}] for "
                f"{self.fault_window_s:.1f} s, byzantine {list(self.byzantine)} [{liars}] lie={self.lie_share:.2f} "
                f"silent_to={list(self.silent_to)} checkpoint_every={self.checkpoint_interval} "
                f"batch={self.max_batch} signatures={self.signatures}")


@dataclass
class BftSeedResult(SeedOutcome[BftPlan]):
    executions: int = 0
    completed: int = 0
    rejected: int = 0
    forged: int = 0
    view_changes: int = 0

    COUNTED: ClassVar[tuple[str, ...]] = ("executions", "completed", "rejected", "forged")

    def replay_command(self) -> str:
        command = f"novacron bft-vopr --seed {self.seed}"
        if self.plan.signatures != "simulated":
            command += f" --signatures {self.plan.signatures}"
        return command + (f" --plant {self.plant}" if self.plant else "")


class _Checking(Hook):
    def __init__(self, checker: BftSafetyChecker, trace: VoprTracer) -> None:
        self.checker = checker
        self.trace = trace

    def executed(self, cluster: BftCluster, member: Member, executed: Executed) -> None:
        if member.byzantine:
            return
        self.checker.executed(member.replica_id, executed)
        self.trace.detail(f"replica {member.replica_id} executed seq {executed.seq} view {executed.view} "
                          f"{executed.digest.hex()[:8]} ({len(executed.requests)} requests)")

    def checkpointed(self, cluster: BftCluster, member: Member, checkpoint: StableCheckpoint) -> None:
        if not member.byzantine:
            self.checker.checkpointed(member.replica_id, checkpoint, state_digest(checkpoint.state))

    def crashed(self, cluster: BftCluster, member: Member) -> None:
        self.trace(f"{cluster.now_s:8.3f} replica {member.replica_id} crashed")

    def restarted(self, cluster: BftCluster, member: Member) -> None:
        self.checker.restarted(member.replica_id, member.storage.checkpoint.seq)
        self.trace(f"{cluster.now_s:8.3f} replica {member.replica_id} restarted")


class _Clients:
    """Clients with one request in flight each, resending until ``f + 1`` replicas agree."""

    def __init__(self, cluster: BftCluster, plan: BftPlan, rng: Random, checker: BftSafetyChecker,
                 trace: VoprTracer) -> None:
        self.cluster, self.plan, self.rng, self.checker, self.trace = cluster, plan, rng, checker, trace
        keyring = cluster.keyring
        self.clients = {c: BftClient(c, keyring.signer(c), keyring, plan.faulty, plan.replicas)
                        for c in range(CLIENT_BASE_ID, CLIENT_BASE_ID + CLIENTS)}
        self.issued_s: dict[int, float] = {}
        self.current: dict[int, Operation] = {}
        """Each client's operation in flight (its value is the one written, or None for a read)."""
        self.history: list[Operation] = []
        self.completed = 0

    def start(self, end_s: float) -> None:
        for client in self.clients:
            self.cluster.schedule(0.2 + self.rng.random() * 0.1, functools.partial(self._issue, client, end_s))

    def _issue(self, client_id: int, end_s: float) -> None:
        client = self.clients[client_id]
        if client.pending is not None or self.cluster.now_s >= end_s:
            return
        key = self.rng.choice(KEYS)
        value = b"%d.%d" % (client_id, client.timestamp + 1)
        put = self.rng.random() < 0.6
        op = b"put " + key + b" " + value if put else b"get " + key
        self.current[client_id] = Operation(client_id, key.decode(), PUT if put else GET,
                                            value.decode() if put else None, self.cluster.now_s)
        request = client.request(op)
        self.checker.issued_request(client_id, client.timestamp, op)
        self.issued_s[client_id] = self.cluster.now_s
        self.cluster.send_request(client_id, request)
        self._retry_later(client_id, client.timestamp, end_s)

    def _retry_later(self, client_id: int, timestamp: int, end_s: float) -> None:
        def retry() -> None:
            client = self.clients[client_id]
            if client.pending is not None and client.timestamp == timestamp:
                self.cluster.send_request(client_id, client.pending)
                self._retry_later(client_id, timestamp, end_s)
        self.cluster.schedule(self.cluster.now_s + CLIENT_RETRY_S, retry)

    def inbox(self, client_id: int, message: Signed) -> None:
        client = self.clients[client_id]
        result = client.on_reply(message)
        if result is None:
            return
        invoked = self.current.pop(client_id)
        read = (result.decode() or None) if invoked.kind == GET else invoked.value
        self.history.append(Operation(client_id, invoked.key, invoked.kind, read, invoked.invoke_s,
                                      self.cluster.now_s))
        self.completed += 1
        self.issued_s.pop(client_id, None)
        self.trace.detail(f"client {client_id} #{client.timestamp} completed")
        end_s = self.plan.fault_window_s + CALM_S - LIVENESS_BOUND_S
        next_s = self.cluster.now_s + self.rng.expovariate(1 / self.plan.client_interval_s)
        self.cluster.schedule(next_s, lambda: self._issue(client_id, end_s))

    def final_history(self) -> list[Operation]:
        """The history, with the puts still in flight as maybe-taken-effect (reads in flight tell nothing)."""
        return self.history + [op for op in self.current.values() if op.kind == PUT]

    def overdue(self, now_s: float, since_s: float) -> list[int]:
        """Clients whose request, issued after ``since_s``, is still open ``LIVENESS_BOUND_S`` later."""
        return [c for c, at_s in self.issued_s.items() if at_s >= since_s and now_s - at_s > LIVENESS_BOUND_S]


class _Faults:
    """The plan's network and crash faults during the fault window (the Byzantine ones are ``Liar``s)."""

    def __init__(self, cluster: BftCluster, network: SwarmNetwork, plan: BftPlan, rng: Random,
                 trace: VoprTracer) -> None:
        self.cluster, self.network, self.plan, self.rng, self.trace = cluster, network, plan, rng, trace
        self.state = FaultState()

    def schedule(self) -> None:
        plan = self.plan
        for replica_id, member in self.cluster.members.items():
            member.clock_rate = plan.clock_rates[replica_id - 1]
        if plan.jitter_s:
            self.network.jitter = (0.5, plan.jitter_s)
        for rate_s, action in ((plan.crash_rate_s, self.crash), (plan.partition_rate_s, self.partition),
                               (plan.cut_rate_s, self.cut_primary), (plan.pause_rate_s, self.pause),
                               (plan.storm_rate_s, self.storm)):
            if rate_s <= 0:
                continue
            at_s = self.rng.expovariate(rate_s)
            while at_s < plan.fault_window_s:
                self.cluster.schedule(at_s, action)
                at_s += self.rng.expovariate(rate_s)

    def _now(self) -> str:
        return f"{self.cluster.now_s:8.3f}"

    def crash(self) -> None:
        alive = self.cluster.alive()
        if not alive:
            return
        primary = self.cluster.primary()
        victim = primary if self.rng.random() < 0.5 else self.rng.choice(alive).replica_id
        self.cluster.crash(victim)
        self.cluster.schedule(self.cluster.now_s + self.rng.uniform(0.05, 1.5), lambda: self.cluster.restart(victim))

    def _cut(self, pairs: set[tuple[int, int]], what: str, seconds: float) -> None:
        cut = self.network.add_cut(pairs)
        self.trace(f"{self._now()} cut {cut}: {what} for {seconds:.2f} s")
        self.cluster.schedule(self.cluster.now_s + seconds, lambda: self.network.heal_cut(cut))

    def partition(self) -> None:
        ids = list(range(1, self.plan.replicas + 1))
        self.rng.shuffle(ids)
        cut = self.rng.randint(1, len(ids) - 1)
        side, rest = ids[:cut], ids[cut:]
        pairs = {(a, b) for a in side for b in rest}
        if self.rng.random() < 0.6:
            pairs |= {(b, a) for a, b in pairs}
        self._cut(pairs, f"{sorted(side)} | {sorted(rest)}", self.rng.uniform(0.3, 3.0))

    def cut_primary(self) -> None:
        primary = self.cluster.primary()
        others = [i for i in range(1, self.plan.replicas + 1) if i != primary]
        pairs = {(primary, o) for o in others} | {(o, primary) for o in others}
        self._cut(pairs, f"primary {primary} isolated", self.rng.uniform(0.5, 3.0))

    def pause(self) -> None:
        victim = self.rng.randint(1, self.plan.replicas)
        seconds = min(self.rng.uniform(0.5, 2.0), self.plan.fault_window_s - self.cluster.now_s)
        if seconds > 0.05:
            self.cluster.pause(victim, self.cluster.now_s + seconds)
            self.trace(f"{self._now()} replica {victim} paused for {seconds:.2f} s")

    def storm(self) -> None:
        if self.network.storm is None:
            self.network.storm = (self.rng.randint(2, 3), self.rng.uniform(0.005, 0.08))
            self.cluster.schedule(self.cluster.now_s + self.rng.uniform(0.5, 2.0), self._end_storm)

    def _end_storm(self) -> None:
        self.network.storm = None

    def calm_down(self) -> None:
        self.network.heal()
        self.network.set_profile(PROFILES[self.plan.profile])
        for member in self.cluster.members.values():
            member.paused_until_s = 0.0
            self.cluster.restart(member.replica_id)
        self.trace(f"{self._now()} calm: network healed, every replica up (byzantine ones still lie)")


NodeFactory = Callable[..., Replica]


def run_seed(seed: int, *, replica_class: NodeFactory = Replica, plant: str | None = None,
             signatures: str = "simulated", full_trace: bool = False) -> BftSeedResult:
    plan = BftPlan.draw(seed, signatures)
    seeds = RunSeeds(seed)
    tracer = VoprTracer(full_trace)
    profile = PROFILES[plan.profile].with_faults(loss=plan.loss)
    network = SwarmNetwork(profile, seeds.python("bft-vopr.network"))
    keyring = make_keyring(signatures, seed, [*range(1, plan.replicas + 1),
                                              *range(CLIENT_BASE_ID, CLIENT_BASE_ID + CLIENTS)])
    checker = BftSafetyChecker()
    result = BftSeedResult(seed, True, plan, plant=plant)
    cluster = BftCluster(plan.settings(), network, seeds.python("bft-vopr.cluster"), keyring,
                         hooks=[_Checking(checker, tracer)], replica_class=replica_class)
    tracer.now = lambda: cluster.now_s
    tracer(f"{0.0:8.3f} plan: {plan.describe()}")
    liars = _make_liars(cluster, plan, seeds.python("bft-vopr.byzantine"))
    clients = _Clients(cluster, plan, seeds.python("bft-vopr.clients"), checker, tracer)
    cluster.client_inbox = clients.inbox
    faults = _Faults(cluster, network, plan, seeds.python("bft-vopr.faults"), tracer)
    end_s = plan.fault_window_s + CALM_S
    try:
        faults.schedule()
        clients.start(end_s - LIVENESS_BOUND_S)
        _schedule_forgeries(cluster, liars, plan, seeds.python("bft-vopr.forge"))
        cluster.run_until(plan.fault_window_s)
        faults.calm_down()
        calm_s = cluster.now_s
        cluster.run_until(end_s - LIVENESS_BOUND_S)
        marks = max(m.replica.executed for m in cluster.correct() if m.replica is not None)
        cluster.run_until(end_s)
        _check_liveness(cluster, clients, calm_s, marks)
        verdict = check_history(clients.final_history(), budget=LINEARIZABILITY_BUDGET)
        result.unknown_keys = verdict.unknown_keys
        if not verdict.ok:
            raise BftSafetyViolation(f"Linearizability: the history of key {verdict.key!r} is not linearizable "
                                     "(a client accepted a result no sequential execution gives)")
    except (BftSafetyViolation, BftLivenessViolation) as exc:
        result.ok = False
        result.violation = str(exc)
    result.steps = cluster.steps
    result.executions = checker.checks
    result.completed = clients.completed
    result.rejected = sum(m.replica.rejected for m in cluster.correct() if m.replica is not None)
    result.forged = sum(liar.forged for liar in liars)
    result.view_changes = max((m.replica.view for m in cluster.correct() if m.replica is not None), default=0)
    result.trace = tracer.lines if full_trace else list(tracer.tail)
    return result


def _make_liars(cluster: BftCluster, plan: BftPlan, rng: Random) -> list[Liar]:
    liars = []
    for replica_id in plan.byzantine:
        liar = Liar(plan.byzantine_kinds, Random(rng.getrandbits(64)), cluster.keyring.signer(replica_id),
                    silent_to=frozenset(plan.silent_to) if "silence" in plan.byzantine_kinds else frozenset(),
                    lie_share=plan.lie_share, view_change_delay_s=plan.view_change_delay_s)
        cluster.members[replica_id].behaviour = liar
        liars.append(liar)
    return liars


def _schedule_forgeries(cluster: BftCluster, liars: list[Liar], plan: BftPlan, rng: Random) -> None:
    end_s = plan.fault_window_s + CALM_S
    for liar, replica_id in zip(liars, plan.byzantine, strict=True):
        if "forge" not in liar.kinds:
            continue
        at_s = rng.expovariate(5.0)
        while at_s < end_s:
            cluster.schedule(at_s, functools.partial(liar.forge_noise, cluster, cluster.members[replica_id]))
            at_s += rng.expovariate(5.0)


def _check_liveness(cluster: BftCluster, clients: _Clients, calm_s: float, marks: int) -> None:
    overdue = clients.overdue(cluster.now_s, calm_s)
    if overdue:
        raise BftLivenessViolation(f"Liveness: clients {overdue} still wait for a request issued after the calm "
                                   f"began at {calm_s:.3f} s, more than {LIVENESS_BOUND_S:g} s ago")
    behind = {m.replica_id: m.replica.executed for m in cluster.correct()
              if m.replica is not None and m.replica.executed < marks}
    if behind:
        raise BftLivenessViolation(f"Liveness: correct replicas {behind} (executed) have not caught up with seq "
                                   f"{marks} within {LIVENESS_BOUND_S:g} s")


# -- running many seeds ------------------------------------------------------------------------------------


def run_seeds(seeds: list[int], *, progress: bool = True, replica_class: NodeFactory = Replica,
              plant: str | None = None, signatures: str = "simulated", trace_dir: Path = Path("vopr-traces"),
              out: Callable[[str], None] = print) -> int:
    """Run seeds in order; stop at the first violation, print it, write its full trace, return 1."""

    def describe(totals: SeedTotals) -> str:
        n = totals.counts
        return (f"{n['executions']} executions checked, {n['completed']} client requests completed, "
                f"{n['forged']} forged messages sent, {n['rejected']} messages rejected by correct replicas; "
                f"{totals.seeds / max(totals.cpu_s, 1e-9):.1f} seeds per CPU-second, {totals.wall_s:.1f} s wall")

    return run_until_failure(
        seeds, lambda seed: run_seed(seed, replica_class=replica_class, plant=plant, signatures=signatures),
        tool="bft-vopr", progress=progress, describe=describe, out=out,
        write_trace=lambda result: write_full_trace(result, trace_dir, replica_class))


def write_full_trace(result: BftSeedResult, directory: Path, replica_class: NodeFactory = Replica) -> Path:
    again = run_seed(result.seed, replica_class=replica_class, plant=result.plant,
                     signatures=result.plan.signatures, full_trace=True)
    return write_trace_file(directory, f"bft-seed-{result.seed}", again)


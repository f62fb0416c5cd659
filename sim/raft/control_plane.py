"""A control plane whose decisions go through the managers' replicated log (``[raft] control_plane = "raft"``).

Theory of operation
-------------------
In production the scheduler, rebalancer and migration controller run on the Raft leader and a
decision becomes real only once its log entry is committed (Ongaro and Ousterhout, "In Search of
an Understandable Consensus Algorithm", USENIX ATC 2014, section 8: clients send commands to the
leader and retry on another server when it fails). ``RaftControlPlane`` models exactly that on
the simulated managers of ``sim.raft.cluster``:

- ``place``, ``restart_elsewhere`` and ``commit_move`` create a *decision* (a SimPy event, the
  seam's contract, ``sim.control_plane``) with a unique id and propose it to the current leader;
  every decision waiting when the leader is given work goes into one entry (a batch: a host
  crash's restarts commit together, as a real leader batches the proposals of one loop);
- the decision is *taken when the entry is applied* -- the first time any manager applies it,
  i.e. once it is committed: it is then evaluated against the allocation state at that instant by
  ``DirectControlPlane`` (the scheduler as a deterministic state machine over the log), and the
  SimPy event triggers with its result. Deciding at apply time rather than before proposing
  means a decision never acts on a stale view of the cluster;
- a proposal that is not applied when leadership changes (a crash, a partition, a term change)
  is proposed again to the new leader; with no leader nothing is proposed and the decision
  waits. A re-proposed command may commit twice (the first copy may have reached a quorum before
  the leader died), so decisions are deduplicated by id: never lost, never applied twice;
- ``release``, ``claim_room`` and ``release_claim`` stay immediate: a stopped VM or a crashed
  host frees its room as a host-local fact, which the seam's contract requires (the model records
  ``VMStopped``/``VMFailed`` at once), and a claim is a mover's hold, re-checked at commit.

Faults: the capacity model's ``manager_crash`` hook of ``manager-<k>`` crashes manager ``k`` (and
restarts it when the fault ends; a scenario whose faults name a manager beyond ``[raft] managers``
is refused when loaded); ``network_partition`` of zone ``z`` isolates the ``z``-th manager, mod
their number, from the others. ``[raft] leader_crash_at_s`` / ``partition_at_s`` (scripted)
crash or isolate whoever leads at that time (``ScriptedFaults``, also used by the stand-alone
managers of ``sim.raft.component``).

Health (``[raft] leader_min_health``): the managers' ``NodeHealthScored`` (``sim.health``) feed
``novacron.health.leadership_target``; a leader scoring below the minimum is asked to transfer
leadership to the healthiest manager (Raft's transfer, so safety is the transfer's).

Speed: 5 managers ticking every 10 ms cost ~10^6 node steps per simulated hour. The driver
therefore *freezes* the cluster while it is idle and stable -- no decision pending, no fault in
progress (every manager up, no partition), one leader that every manager follows in the same
term, the leader has applied its whole log, and neither formation nor a partition recovery is
being measured -- and resumes it, shifted in time, when a decision or fault arrives. Followers
may still be behind on the commit index when it freezes (they learn it from the next
heartbeat, after the thaw): that changes nothing the control plane observes, because a
decision is taken at its first apply, which is the leader's. This is sound: a Raft node sees
only ticks and messages, never absolute time, so shifting every pending tick and delivery by
the same amount (the offset between SimPy time and cluster time) preserves their order and
hence the cluster's behaviour; and in the skipped interval an unfrozen cluster would have
changed nothing that the control plane can observe (term, leader, the leader's log and commit
index): with no loss and no partition, heartbeats keep arriving well inside the election
timeout (the network profiles' one-way latencies are far below ``election_ticks_min *
tick_ms``), so no follower times out and check-quorum keeps the leader. Safety properties (one
leader per term, log matching, committed entries never lost) hold for any schedule of message
delays, so they hold for the shifted schedule too.

While decisions flow through a *steady* cluster (stable as above, and the leader streaming to
every follower, none probing or awaiting a snapshot) the managers' clocks are held as well
(``RaftCluster.hold_ticks``): a proposal is sent at once, acknowledged and committed by
messages alone, so the ticks in between (5 managers every 10 ms, most of the steps) change no
decision; they resume, shifted, as soon as anything is unsteady (a fault, a lagging follower),
so elections and recoveries run on real timeouts. Held ticks are the schedule in which the
held interval's messages took no clock time, valid for the same reason as the freeze.

The driver also steps the cluster *ahead of SimPy's clock*: when the next Raft message or tick
lands before any other SimPy event (``env.peek()``), nothing else in the model can act in
between, so the driver steps it without a SimPy timeout and wake-up per message (the managers see
the same messages and ticks in the same order at the same cluster times). What those steps do
that SimPy sees -- the decisions they apply, the events the reporter records (an election, a
snapshot installed) -- waits, in order, in ``_effects`` and is done once SimPy's clock is at the
step's time (one wait per commit instead of one per message), so each decision is taken against
the same allocation state and every event recorded at the same time and in the same order as
before: the event log is bit for bit the one of waiting (``tests/test_raft_control_plane.py``).
Anything else recorded during a step ahead would carry the wrong time, so the driver raises.
(Until 2026-12-01 only a steady cluster, ticks held, stepped ahead; while arrivals kept a
follower probing, most steps waited for SimPy.)
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Generator
from dataclasses import dataclass
from functools import partial
from typing import Any

import simpy

from novacron.cluster.events import InjectedFaultEnded, InjectedFaultStarted, NodeHealthScored
from novacron.events import Event
from novacron.health import leadership_target
from novacron.raft.events import LeadershipTransferRequested
from novacron.raft.messages import NO_NODE, Entry, EntryKind
from novacron.raft.node import LEADER, RaftNode
from novacron.raft.progress import REPLICATE
from sim.allocation import AllocationStore, Claim, VMRequest
from sim.context import SimContext
from sim.control_plane import Decision, DirectControlPlane, Placer
from sim.network import PROFILES, NetworkModel
from sim.raft.cluster import Hook, Manager, RaftCluster
from sim.raft.reporter import RaftReporter
from sim.raft.scripted_faults import ScriptedFaults, settings_for

STEP_EPSILON_S = 1e-9
TAKEN_ENTRIES_KEPT = 1024


def decision_id_of(number: int) -> str:
    """The id of the control plane's ``number``-th decision (issued in order, from 0)."""
    return f"d-{number:07d}"


def decision_number(decision_id: str) -> int:
    return int(decision_id[2:])


def encode_decisions(decision_ids: list[str]) -> bytes:
    """One log entry's command: the ids of the decisions it carries, comma-separated (a batch:
    every decision waiting when the leader is given work goes in one entry)."""
    return ",".join(decision_ids).encode()


def decision_ids(data: bytes) -> list[str]:
    return data.decode().split(",")


class DecisionLog:
    """The managers' state machine: which decisions have been applied.

    Decision numbers are issued in order and every one is eventually applied (never lost), so
    the applied set is kept as a low watermark -- every number below ``below`` is applied -- plus
    the applied numbers above it (``above``: those that overtook a decision still in flight, e.g.
    one re-proposed after a failover). Both the state and its snapshot are bounded by the
    decisions in flight, not by the decisions made so far: a snapshot is ``below`` and the
    sorted ``above``, so taking one (every ``snapshot_every`` entries, on every manager) and
    restoring one (every snapshot install) cost the same at the millionth decision as at the
    tenth, and a snapshot sent to a lagging follower stays a few bytes on the simulated network.
    (Keeping every id applied made each install re-split all of them, and the snapshot's MBs on
    the wire left the follower behind the next compaction on arrival: it installed snapshot after
    snapshot, which dominated scale-10000.)"""

    def __init__(self) -> None:
        self.below = 0
        self.above: set[int] = set()

    def __contains__(self, decision_id: str) -> bool:
        number = decision_number(decision_id)
        return number < self.below or number in self.above

    def apply(self, entry: Entry) -> object:
        if entry.kind == EntryKind.NORMAL and entry.data:
            for decision_id in decision_ids(entry.data):
                self._mark(decision_number(decision_id))
        return None

    def _mark(self, number: int) -> None:
        if number < self.below:
            return  # applied before: a re-proposed copy
        if number != self.below:
            self.above.add(number)
            return
        self.below += 1
        above = self.above
        while self.below in above:  # the gap closed: the watermark moves past what overtook it
            above.discard(self.below)
            self.below += 1

    def snapshot(self) -> bytes:
        if not self.above:
            return str(self.below).encode()
        return f"{self.below};{','.join(map(str, sorted(self.above)))}".encode()

    def restore(self, data: bytes) -> None:
        below, _, above = data.decode().partition(";")
        self.below = int(below) if below else 0
        self.above = {int(number) for number in above.split(",")} if above else set()


@dataclass
class Pending:
    kind: str
    vm: VMRequest
    argument: int
    mover: str
    decision: simpy.Event
    asked_s: float
    proposed_term: int = -1


class RaftControlPlane(Hook):
    """``ControlPlane`` over simulated Raft managers; see the module docstring.

    ``freeze_when_idle`` (default on) freezes an idle, stable cluster; off only to measure what
    freezing saves (``benchmarks/bench_raft_control_plane.py``)."""

    def __init__(self, ctx: SimContext, store: AllocationStore, placer: Placer | None, *,
                 freeze_when_idle: bool = True, hold_ticks_when_steady: bool = True,
                 run_ahead: bool = True) -> None:
        self._ctx, self._env = ctx, ctx.env
        self.store = store
        self._direct = DirectControlPlane(ctx, store, placer)
        self._freeze_when_idle = freeze_when_idle
        self._hold_ticks = hold_ticks_when_steady
        section = ctx.scenario.raft
        self.reporter = RaftReporter(ctx.recorder)
        self.cluster = RaftCluster(settings_for(section), NetworkModel(PROFILES[section.network],
                                                                       ctx.seeds.python("raft.control.network")),
                                   ctx.seeds.python("raft.control.cluster"), state_machine=DecisionLog,
                                   hooks=[self.reporter, self])
        ScriptedFaults(self.cluster, self.reporter, section, at=self._at, now_s=lambda: float(self._env.now)).schedule()
        self.pending: dict[str, Pending] = {}
        self.decided: set[str] = set()
        self._next_id = 0
        self._offset_s = 0.0
        """SimPy time minus cluster time: grows by every frozen interval."""
        self._frozen = False
        self._sleeping = False
        self._never: simpy.Event = self._env.event()
        """What the driver waits on when only a poke can wake it (a poke interrupts the wait)."""
        self._pumped_term = -1
        self._run_ahead = run_ahead
        self._ahead_s: float | None = None
        """While the driver steps the cluster ahead of SimPy (``_may_run_ahead``): the time it is at."""
        self._effects: list[Callable[[], None]] | None = None
        """While ahead of SimPy: what the steps did that SimPy must see (decisions taken, events
        recorded), in order, to be done when its clock gets there (``_take``)."""
        self._taken_entries: set[tuple[int, int]] = set()
        self._taken_order: deque[tuple[int, int]] = deque()
        """(index, term) of the entries applied last (``applied``), oldest first."""
        self.frozen_s = 0.0
        self.steps_ahead = 0
        self.proposals = 0
        self._process = self._env.process(self._drive())
        ctx.log.subscribe(InjectedFaultStarted, self.fault)
        ctx.log.subscribe(InjectedFaultEnded, self.fault)
        self.health: dict[int, float] = {}
        """Each manager's last health score, by node id (``sim.health``), for the leadership preference."""
        self.transfers_requested = 0
        self._fault_partitions: dict[str, int] = {}
        """The fault model's partitions that are on: the network's number of each, by its fault's target."""
        if section.leader_min_health > 0:
            ctx.log.subscribe(NodeHealthScored, self._on_health)

    # --- the ControlPlane seam -------------------------------------------------------------------

    def place(self, vm: VMRequest) -> Decision:
        return self._propose("place", vm)

    def restart_elsewhere(self, vm: VMRequest, failed_host: int) -> Decision:
        return self._propose("restart", vm, failed_host)

    def commit_move(self, vm: VMRequest, to_host: int, mover: str = "controller") -> Decision:
        return self._propose("move", vm, to_host, mover)

    def release(self, vm_id: str) -> None:
        self._direct.release(vm_id)

    def claim_room(self, vm_id: str, host: int) -> Claim | None:
        return self._direct.claim_room(vm_id, host)

    def release_claim(self, claim: Claim) -> None:
        self._direct.release_claim(claim)

    # --- proposals and applies --------------------------------------------------------------------

    def _propose(self, kind: str, vm: VMRequest, argument: int = -1, mover: str = "controller") -> Decision:
        decision_id = decision_id_of(self._next_id)
        self._next_id += 1
        decision = self._env.event()
        self.pending[decision_id] = Pending(kind, vm, argument, mover, decision, float(self._env.now))
        self._pumped_term = -1  # something new to propose
        self._poke()
        return decision

    def _pump(self) -> None:
        """Propose, as one entry, every pending decision the current leader has not been given.

        Only needed after something changed (a new decision, a fault, a role change: each resets
        ``_pumped_term``), so the common case returns before looking for the leader."""
        if not self.pending or self._pumped_term != -1:
            return
        leader = self.cluster.leader()
        if leader is None or leader.leader == NO_NODE:
            return
        batch = [decision_id for decision_id, pending in self.pending.items() if pending.proposed_term != leader.term]
        if batch:
            if self.cluster.propose(leader.id, encode_decisions(batch)) is None:
                return
            for decision_id in batch:
                pending = self.pending.get(decision_id)
                if pending is not None:  # a lone manager commits and applies inside propose: decided already
                    pending.proposed_term = leader.term
            self.proposals += 1
        self._pumped_term = leader.term

    def role_changed(self, cluster: RaftCluster, manager: Manager, old_role: str, old_leader: int) -> None:
        self._pumped_term = -1  # a new leader (or none): what it has not been given must be proposed again

    def applied(self, cluster: RaftCluster, manager: Manager, entry: Entry) -> None:
        if entry.kind != EntryKind.NORMAL or not entry.data:
            return
        # Every manager applies every entry; only the first apply of an entry can take a decision.
        # An entry is one (index, term) everywhere (Log Matching, section 5.3), so the later
        # applies of the recent ones skip the decoding; an older one just finds nothing pending.
        key = (entry.index, entry.term)
        if key in self._taken_entries:
            return
        self._taken_entries.add(key)
        self._taken_order.append(key)
        if len(self._taken_order) > TAKEN_ENTRIES_KEPT:
            self._taken_entries.discard(self._taken_order.popleft())
        for decision_id in decision_ids(entry.data):
            pending = self.pending.pop(decision_id, None)
            if pending is None:  # applied before (by another manager, or an earlier copy): decided once
                continue
            self.decided.add(decision_id)
            if self._effects is not None:
                self._effects.append(partial(self._take_decision, pending))  # ahead of SimPy: at the step's time
            else:
                self._take_decision(pending)

    def _take_decision(self, pending: Pending) -> None:
        pending.decision.succeed(self._decide(pending))

    def _decide(self, pending: Pending) -> int | None:
        if pending.kind == "place":
            return self._direct.decide_placement(pending.vm)
        if pending.kind == "restart":
            return self._direct.decide_restart(pending.vm)
        return self._direct.decide_move(pending.vm, pending.argument, pending.mover)

    # --- faults -----------------------------------------------------------------------------------

    def _node_of(self, manager_name: str) -> int:
        """The node a fault's or a health score's ``manager-<k>`` names: manager ``k``, as the
        managers number themselves (``novacron.scenario.fault_managers_error`` refuses a scenario
        whose faults name more managers than there are)."""
        node_id = int(manager_name.rsplit("-", 1)[1])
        if node_id not in self.cluster.managers:
            raise ValueError(f"{manager_name} names no manager; the managers are {sorted(self.cluster.managers)}")
        return node_id

    def _node_of_zone(self, zone_name: str) -> int:
        """The manager a partition of zone ``zone-<z>`` cuts off: the ``z``-th, mod their number
        (zones may outnumber the managers; each manager stands in for every zone of its residue)."""
        managers = sorted(self.cluster.managers)
        return managers[int(zone_name.rsplit("-", 1)[1]) % len(managers)]

    def _on_health(self, ev: NodeHealthScored) -> None:
        """Leadership preference: a leader less healthy than a peer hands over (``leadership_target``)."""
        if not ev.node_id.startswith("manager-"):
            return
        self.health[self._node_of(ev.node_id)] = ev.health_score
        leader = self.cluster.leader()  # reading needs no thaw: a frozen cluster changes nothing
        section = self._ctx.scenario.raft
        if leader is None:
            return
        target = leadership_target(self.health, leader.id, min_score=section.leader_min_health,
                                   margin=section.leader_health_margin)
        if target is None or self.cluster.node(target) is None or leader.transfer_target == target:
            return
        self._thaw()  # the transfer is an input: the cluster's clock must be now first (and a thaw needs a poke)
        if self.cluster.transfer_leadership(leader.id, target):
            self.transfers_requested += 1
            self._ctx.recorder.emit(LeadershipTransferRequested, source=f"manager-{leader.id}",
                                    manager_id=leader.id, target_id=target, reason="health")
        self._pumped_term = -1
        self._poke()

    def fault(self, ev: Event) -> None:
        """The fault model's manager crashes and partitions (pushed by the log's subscription)."""
        if not isinstance(ev, InjectedFaultStarted | InjectedFaultEnded):
            return
        self._thaw()
        started = isinstance(ev, InjectedFaultStarted)
        managers = sorted(self.cluster.managers)
        if ev.fault_kind == "manager_crash":
            node_id = self._node_of(ev.fault_target)
            (self.cluster.crash if started else self.cluster.restart)(node_id)
        elif ev.fault_kind == "network_partition":
            node_id = self._node_of_zone(ev.fault_target)
            groups = [[node_id], [m for m in managers if m != node_id]]
            if started:
                self._fault_partitions[ev.fault_target] = self.cluster.network.partition(groups)
                self.reporter.partitioned(self.cluster, groups, True)
            elif (number := self._fault_partitions.pop(ev.fault_target, None)) is not None:
                # this partition only: the scripted one ([raft] partition_at_s) may still be on
                self.cluster.network.heal_partition(number)
                self.reporter.healed(self.cluster, groups)
        self._pumped_term = -1
        self._poke()

    # --- the driver -------------------------------------------------------------------------------

    def _poke(self) -> None:
        """Wake the driver if it sleeps (it re-reads everything after each step anyway)."""
        if self._sleeping:
            self._sleeping = False
            self._process.interrupt()

    def _thaw(self) -> None:
        """Bring the cluster's clock to now before acting on it (a no-op unless frozen)."""
        if self._frozen:
            self.frozen_s += self._env.now - self._offset_s - self.cluster.now_s
            self._offset_s = self._env.now - self.cluster.now_s
            self._frozen = False

    def _stable_leader(self) -> RaftNode | None:
        """The leader, if every manager is up and follows it in its term, no partition is on and
        neither formation nor a partition recovery is being measured; else None.

        Read after every step of the driver, so one pass: every manager names the same leader in
        the same term and that node leads. This is ``cluster.leader()`` followed by the check
        that everyone follows it (two leaders of one term cannot both be followed by all)."""
        cluster = self.cluster
        if cluster.network.is_partitioned() or self.reporter.formed_at_s is None or self.reporter.heal_at_s is not None:
            return None
        leader_id, term = NO_NODE, -1
        for manager in cluster.managers.values():
            node = manager.node
            if node is None:
                return None
            if leader_id == NO_NODE:
                leader_id, term = node.leader, node.term
                if leader_id == NO_NODE:
                    return None
            elif node.leader != leader_id or node.term != term:
                return None
        leader = cluster.managers[leader_id].node if leader_id in cluster.managers else None
        return leader if leader is not None and leader.role == LEADER else None

    def idle_and_stable(self, leader: RaftNode | None) -> bool:
        """``leader`` is ``_stable_leader()``, read once per step of the driver."""
        return not self.pending and leader is not None and leader.log.applied == leader.log.last_index()

    @staticmethod
    def steady(leader: RaftNode | None) -> bool:
        """Stable, and the leader streams to every follower (no probe, no snapshot): commits need
        no tick, so the managers' clocks may be held (``RaftCluster.hold_ticks``). Not while a
        leadership transfer is under way: its TimeoutNow starts an election by message alone, and
        the leader gives the transfer up only after an election timeout of its own ticks."""
        if leader is None or leader.transfer_target != NO_NODE:
            return False
        for peer, pr in leader.progress.items():  # a loop, not all(): read after every step
            if pr.state != REPLICATE and peer != leader.id:
                break
        else:
            return True
        return False

    def _drive(self) -> Generator[Any, Any, None]:
        env, cluster = self._env, self.cluster
        while True:
            now_s = float(env.now) if self._ahead_s is None else self._ahead_s
            if self._frozen:  # both checked here first: this loop runs once per Raft message
                self._thaw()
            if self._pumped_term == -1:
                self._pump()
            if self._effects:  # ahead of SimPy, the proposal recorded something (or took a decision)
                yield from self._take(now_s)
                continue
            leader = self._stable_leader()
            if self._hold_ticks and self.steady(leader):
                cluster.hold_ticks()
            else:
                cluster.release_ticks()
            next_s = cluster.next_time_s()
            if next_s is None or (self._freeze_when_idle and self.idle_and_stable(leader)):
                self._frozen = True  # the cluster's clock stops until something arrives
                yield from self._sleep(None)
                continue
            at_s = next_s + self._offset_s
            if at_s > now_s:
                wake_s = now_s + (at_s - now_s)
                """When the wait below would end: the one float sum SimPy computes for it."""
                if self._may_run_ahead(wake_s):
                    self._ahead_s = now_s = wake_s
                    if self._effects is None:
                        self._effects = self.reporter.defer_to = []
                    if at_s > wake_s:
                        continue
                # After a wait that ran out (no poke), nothing the checks above read has changed:
                # only a poke changes the cluster or the pending decisions while the driver
                # waits. So the step follows at once instead of a second round of the same checks.
                elif not ((yield from self._sleep_until(now_s, at_s)) and at_s <= env.now):
                    continue
                else:
                    now_s = float(env.now)
            self._step(now_s)
            if self._effects:
                yield from self._take(now_s)

    def _may_run_ahead(self, wake_s: float) -> bool:
        """May the driver step the cluster at ``wake_s`` without waiting for SimPy to get there?

        Only while no other SimPy event comes first (``env.peek()``: nothing else in the model
        can act in between), the cluster is not frozen, and SimPy can later be brought to
        exactly ``wake_s`` from now (one float sum). Stepping there early is then the same run:
        a Raft node sees only messages and ticks; what the steps do that SimPy sees (decisions
        applied, events the reporter records) waits in ``_effects`` until SimPy is at ``wake_s``
        (``_take``)."""
        env = self._env
        if not self._run_ahead or self._frozen or wake_s >= env.peek():
            return False
        now = env.now
        return now + (wake_s - now) == wake_s

    def _step(self, now_s: float) -> None:
        """Step the cluster to ``now_s``. Ahead of SimPy, what SimPy must see waits in
        ``_effects``, to be done once SimPy's clock is at ``now_s`` (``_take``)."""
        if self._ahead_s is None:
            self.cluster.run_until(now_s - self._offset_s + STEP_EPSILON_S)
            return
        seq = self._ctx.log.next_seq
        self.steps_ahead += 1
        self.cluster.run_until(now_s - self._offset_s + STEP_EPSILON_S)
        if self._ctx.log.next_seq != seq:  # a tripwire: only the reporter may record here, and it defers
            raise RuntimeError(f"the Raft managers recorded an event ahead of SimPy's clock at {now_s} s")

    def _take(self, now_s: float) -> Generator[Any, Any, None]:
        """Wait for SimPy's clock to reach ``now_s``, then do what the steps ahead of it put
        aside, in order, as if the driver had waited for that step."""
        effects, self._effects = self._effects or [], None
        self.reporter.defer_to = None
        woke = yield from self._sleep(now_s - self._env.now)
        assert woke and self._env.now == now_s, "nothing can act before the driver's next step"
        for effect in effects:
            effect()

    def _sleep_until(self, now_s: float, at_s: float) -> Generator[Any, Any, bool]:
        """Wait as the driver at ``now_s`` would for a step at ``at_s``; False if poked."""
        env = self._env
        if self._ahead_s is None:
            return (yield from self._sleep(at_s - env.now))
        wake_s = now_s + (at_s - now_s)
        if env.now + (wake_s - env.now) == wake_s:
            return (yield from self._sleep(wake_s - env.now))
        if not (yield from self._sleep(now_s - env.now)):  # one float sum away, as run ahead
            return False
        return (yield from self._sleep(at_s - now_s))

    def _sleep(self, delay_s: float | None) -> Generator[Any, Any, bool]:
        """Wait ``delay_s`` (or until poked); a poke interrupts the wait. One timeout per wait,
        no condition event: the driver waits once per cluster event, so this is its hot path.
        True if the wait ran out, False if a poke ended it."""
        if self._effects:
            raise RuntimeError("the driver would wait with effects of a step ahead of SimPy not done")
        self._ahead_s = self._effects = self.reporter.defer_to = None
        self._sleeping = True
        try:
            yield self._never if delay_s is None else self._env.timeout(delay_s)
        except simpy.Interrupt:
            return False
        finally:
            self._sleeping = False
        return True

    def _at(self, at_s: float, action: Callable[[], None]) -> None:
        def run(_ev: simpy.Event) -> None:
            self._thaw()
            action()
            self._pumped_term = -1
            self._poke()
        self._env.timeout(max(at_s - self._env.now, 0.0)).callbacks.append(run)

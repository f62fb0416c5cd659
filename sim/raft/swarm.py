"""The vopr's swarm-testing plan generator: each seed draws which kinds of fault it injects.

Theory of operation
-------------------
Swarm testing (Groce et al., "Swarm Testing", ISSTA 2012) gives each test run a random *subset*
of the features a generator could use, instead of all of them at once: a run with only crashes
and small snapshots reaches deep crash histories that a run also busy with partitions and
clock skew dilutes away. ``SwarmPlan.draw(seed)`` turns every fault kind on with probability
one half and draws its intensity, so across seeds every combination and intensity occurs.

The kinds, each aimed at schedules that the earlier generator (``classic``) never drew:

- ``crash``: crash storms (up to several crashes a second, half of them the leader), with
  snapshots every few entries so restarts and InstallSnapshot mix with log repair; and crashes
  at the worst moments, right after a durable write. A leader crashes after persisting the
  Ready of its election, of new entries or of a commit-index advance, *in the middle of sending
  its messages*: only a random subset of its peers (maybe none) gets them
  (``SwarmNetwork.silenced``), or within 40 ms of its election;
  this leaves entries on a minority and commits nobody else heard of -- the histories of
  Figure 8. A voter crashes right after it granted a vote and is back within 50 ms or 0.5 s
  (version 1), still in that term, so a second candidate of the term may ask it again;
- ``partition``: a random split, symmetric or one-way, held for up to seconds;
- ``leader-cut``: cuts aimed at the current leader, held 0.5-4 s: it cannot send, cannot
  receive, or one link to or from it is cut one way;
- ``membership``: voters added and removed, often by a leader removing itself, and often right
  as a partition or cut starts (so the change and the partition overlap);
- ``clock``: per-manager clock rates of 0.5-1.5x (the heartbeat shortens where the spread would
  break Raft's timing requirement, ``heartbeat_ticks_under_skew``);
- ``pause``: a manager (often the leader), or several at once as when their host stalls,
  frozen for 1-3 s, then a burst of catch-up ticks and of the messages that queued up
  (``RaftCluster.pause``);
- ``duplication``: storms in which every message arrives 2-3 times, each copy delayed by up
  to tens of milliseconds (heavy reordering);
- ``loss``: steady message loss of up to 10 %;
- ``transfer``: leadership transfers;
- ``elections``: several voters time out at the same instant (as after a host hiccup), so
  candidates of one term compete and split votes.

Cluster sizes are 1 to 7 voters, weighted towards the small ones (1 and 2 voters are the
corner cases of quorums and of a leader removing itself).

Versions. A change to what a seed draws gives every seed another schedule, so the generator is
versioned and every version stays drawable: ``swarm1`` is version 1 (commit 1fa0145), draw for
draw, which ``tests/vopr_regressions.txt`` replays; ``swarm`` is the latest. Version 1 caught
only three of six planted bugs in 5 % of seeds; version 2 draws the other three's histories more
often, still as features of the general distribution, never as a script per bug (its draws come
after all of version 1's):

- CheckQuorum is off in half the seeds (0.3 before): a leader cut off from the others keeps
  leading and answering, the setting of stale reads;
- ``leader-cut`` also *isolates* the leader both ways, so it neither hears its successor's
  election nor steps down;
- clients use 3, 4 or 6 keys, and a share (0-90 %) of each client's reads reads back the key
  of its own last completed write (read-your-writes: a stale answer is then visible);
- ``jitter`` (on in 65 % of seeds): a share of messages arrives up to 2-100 ms late
  (log-uniform), so a request overtakes another or arrives after its target restarted;
- ``crash-before-send`` is a kind of its own with a share per moment (after an election, new
  entries, a commit advance), each 5-90 %: Figure 8 needs leaders that die at each of them;
- one entry per append in 3 of 5 seeds (1 of 2 before);
- wider shares for crashing a new leader (up to 50 %) and a voter right after its vote (20-90
  %), and that voter is back after 0.5 ms to 0.5 s (log-uniform): within a vote request's
  flight time, so a second candidate of the same term reaches the restarted voter, which must
  still remember its vote.

Version 3 (issue 13 item 2: stale-read, forget-vote and old-term-commit were still caught in
under 5 % of seeds) changes only what versions 1 and 2 do not draw, so both stay drawable:

- CheckQuorum is off in 65 % of seeds: most stale reads need a deposed leader that keeps
  leading (with CheckQuorum it steps down within 300-600 ms of losing its quorum);
- half the partitions are aimed at the leader (it ends up in a minority), and ``isolate`` is
  two of the six leader-cut shapes: the majority elects a successor while the old leader,
  hearing nothing, still answers clients;
- crash-before-send shares are log-uniform over 3-90 % (uniform 5-90 % before), so in many of
  these seeds leaders live long enough for the other faults to act on them;
- rolling restarts in half the seeds with crash-before-send: a leader that dies before
  sending stays down until the next one dies so (at most 1-2.5 s), and then half the time it
  reached none of its peers. One leader is down at a time, in turn -- Figure 8's sequence,
  which otherwise needs independent restart timers to line up;
- a third of the voters crashed right after granting a vote come back at once (before the
  next message), so a second candidate of the same term reaches a voter that only has what
  it persisted even on a LAN, where both requests arrive within 0.1 ms.

The ``learners`` generator (``sim.raft.learners``) is the latest version's plan plus learners,
drawn after and apart from it (``SwarmPlan.learners``; None in every swarm plan).

``FaultState`` tracks which faults are active; when the last one ends (a *heal*), the vopr checks
after ``LIVENESS_BOUND_S`` of quiet that the cluster is live again (``vopr._check_liveness_later``).
Simultaneous time-outs, membership changes and leadership transfers restart that bound too: each
may legitimately leave the cluster without a leader for an election's time.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from random import Random
from types import MappingProxyType

from novacron.raft.messages import NO_NODE, ConfChange, Ready
from novacron.raft.node import LEADER, RaftConfig, RaftNode, Stored
from novacron.seeding import RunSeeds, log_uniform
from sim.network import PROFILES, LinkProfile, NetworkModel
from sim.raft.cluster import ClusterSettings, Hook, Manager, RaftCluster
from sim.raft.learners import LearnerPlan

MAX_MANAGERS = 7
FAULT_KINDS_V1 = ("crash", "partition", "leader-cut", "membership", "clock", "pause", "duplication", "loss",
                  "transfer", "elections")
FAULT_KINDS = (*FAULT_KINDS_V1, "crash-before-send", "jitter")
SWARM_VERSIONS = (1, 2, 3)
SWARM_VERSION = 3
"""The version ``--generator swarm`` draws; ``swarm1`` replays the seeds version 1 found."""
V2_KIND_SHARES = MappingProxyType({"crash-before-send": 0.5, "jitter": 0.65})
"""How often version 2 turns on the kinds it added (late messages are the rule on real networks)."""
CRASH_MOMENTS = ("elected", "entries", "committed")
"""The moments at which a leader may crash between persisting a Ready and sending its messages."""
CLIENT_KEYS = ("a", "b", "c", "d", "e", "f")
CLIENT_KEY_COUNTS = (3, 4, 6)
"""Fewer than 3 keys put a few hundred operations on one key, past the linearizability budget."""
LEADER_CUT_SHAPES_V1 = ("mute", "deaf", "link-out", "link-in")
CLUSTER_SIZES = (1, 2, 2, 3, 3, 3, 4, 5, 5, 6, 7)
INSTANT_RESTART_SHARE = 1 / 3
"""Version 3: the share of voters crashed right after their vote that are back at once."""
LIVENESS_BOUND_S = 3.0
CLOCK_SKEW_MARGIN = 0.97
"""The share of a follower's shortest timeout a heartbeat interval may take (the rest: delays)."""


@dataclass(frozen=True)
class ClusterPlan:
    """What every plan generator decides about the cluster itself (the faults are the generator's)."""

    seed: int
    managers: int
    profile: str
    pre_vote: bool
    check_quorum: bool
    snapshot_every: int
    max_entries_per_message: int
    client_interval_s: float
    fault_window_s: float
    calm_s: float
    client_keys: int
    """How many keys the clients use (few keys: a read soon follows a write of the same key)."""
    reread_share: float
    """This share of a client's reads reads back the key of its last completed write."""

    def settings(self) -> ClusterSettings:
        raft = RaftConfig(node_id=1, pre_vote=self.pre_vote, check_quorum=self.check_quorum,
                          max_entries_per_message=self.max_entries_per_message)
        return ClusterSettings(managers=self.managers, snapshot_every=self.snapshot_every, raft=raft)


def heartbeat_ticks_under_skew(clock_rates: tuple[float, ...], raft: RaftConfig) -> int:
    """The heartbeat interval (at most ``raft``'s) that Raft's timing requirement allows under
    these clock rates: a heartbeat, sent by the leader's clock, must reach every follower before
    its shortest election timeout on the follower's clock runs out (section 5.6: broadcast time
    well below the election timeout). A timeout of ``m`` ticks can fire ``m - 1`` tick periods
    after the reset (the first tick may come at once), so with the slowest clock leading and the
    fastest following the condition is ``heartbeat / slowest < (m - 1) / fastest``, less
    ``CLOCK_SKEW_MARGIN`` for message delays. The default 5 ticks against 15 allows a spread of
    2.7x; the ``clock`` kind draws up to 3x, and then a follower timed out under a healthy leader
    every second or so, which without PreVote deposes it (vopr seed 76726 of swarm1: a leader at
    0.51x heartbeating every 98 ms, a follower at 1.44x timing out after 97 ms).
    """
    spread = max(clock_rates) / min(clock_rates)
    heartbeat_ticks = raft.heartbeat_ticks
    while heartbeat_ticks > 1 and heartbeat_ticks * spread >= CLOCK_SKEW_MARGIN * (raft.election_ticks_min - 1):
        heartbeat_ticks -= 1
    return heartbeat_ticks


@dataclass(frozen=True)
class SwarmPlan(ClusterPlan):
    """Everything a seed decides up front: the enabled fault kinds and their intensities."""

    kinds: frozenset[str]
    loss: float
    crash_rate_s: float
    crash_new_leader_share: float
    crash_after_vote_share: float
    crash_before_send: tuple[float, ...]
    """The share of a leader's Readys after which it crashes mid-send, per ``CRASH_MOMENTS``."""
    partition_rate_s: float
    cut_rate_s: float
    membership_rate_s: float
    remove_leader_share: float
    pause_rate_s: float
    storm_rate_s: float
    storm_copies: int
    storm_delay_s: float
    transfer_rate_s: float
    election_rate_s: float
    clock_rates: tuple[float, ...]
    """The clock rate of manager ``i`` is ``clock_rates[i - 1]``."""
    jitter_s: float
    jitter_share: float
    """This share of messages is delayed by up to ``jitter_s`` more (reordering, late requests)."""
    version: int
    rolling_restarts: bool = False
    """Version 3: a leader crashed before sending stays down until the next one crashes so."""
    learners: LearnerPlan | None = None
    """The ``learners`` workload's additions (``sim.raft.learners``); None in every other plan."""

    @property
    def generator(self) -> str:
        if self.learners is not None:
            return "learners"
        return "swarm" if self.version == SWARM_VERSION else f"swarm{self.version}"

    def settings(self) -> ClusterSettings:
        base = super().settings()
        heartbeat_ticks = heartbeat_ticks_under_skew(self.clock_rates, base.raft)
        base = replace(base, raft=replace(base.raft, heartbeat_ticks=heartbeat_ticks))
        return base if self.learners is None else self.learners.boot_with(base)

    @classmethod
    def draw(cls, seed: int, version: int = SWARM_VERSION) -> SwarmPlan:
        """The plan of ``seed``; ``version=1`` is the generator of commit 1fa0145, kept exactly (its
        draws come first, in the same order) for the seeds that generator found."""
        if version not in SWARM_VERSIONS:
            raise ValueError(f"swarm generator version {version}: allowed: {', '.join(map(str, SWARM_VERSIONS))}")
        rng = RunSeeds(seed).python("vopr.swarm.plan")
        kinds = frozenset(k for k in FAULT_KINDS_V1 if rng.random() < 0.5)
        # Version 2 leaves CheckQuorum off in half of the seeds: a deposed leader that keeps
        # leading while cut off is where reads go stale.
        on_share = {1: 0.7, 2: 0.5}.get(version, 0.35)

        def rate(kind: str, low: float, high: float) -> float:
            value = rng.uniform(low, high)  # drawn even when off, so plans stay comparable
            return value if kind in kinds else 0.0

        def log_rate(kind: str, low: float, high: float) -> float:
            value = log_uniform(rng, low, high)
            return value if kind in kinds else 0.0

        clock = tuple(rng.uniform(0.5, 1.5) for _ in range(MAX_MANAGERS))
        fields: dict[str, object] = dict(
            managers=rng.choice(CLUSTER_SIZES), profile=rng.choice(("lan", "lan", "wan30", "wan80")),
            pre_vote=rng.random() < 0.7, check_quorum=rng.random() < on_share,
            loss=rate("loss", 0.0, 0.1), crash_rate_s=log_rate("crash", 0.1, 3.0),
            # Version 2 widens these (one draw each either way, so version 1 is unchanged): a voter
            # that restarted after its vote, and leaders that die young, make second candidates
            # of a term.
            crash_new_leader_share=rate("crash", 0.0, 0.3 if version == 1 else 0.5),
            crash_after_vote_share=rate("crash", 0.0 if version == 1 else 0.2, 0.6 if version == 1 else 0.9),
            crash_before_send=(rate("crash", 0.0, 0.3),) * len(CRASH_MOMENTS),
            partition_rate_s=rate("partition", 0.2, 1.5), cut_rate_s=rate("leader-cut", 0.2, 1.5),
            membership_rate_s=rate("membership", 0.3, 2.0), remove_leader_share=rng.uniform(0.2, 0.6),
            pause_rate_s=rate("pause", 0.2, 1.0), storm_rate_s=rate("duplication", 0.2, 1.0),
            storm_copies=rng.randint(2, 3), storm_delay_s=rng.uniform(0.005, 0.08),
            transfer_rate_s=rate("transfer", 0.2, 1.5), election_rate_s=rate("elections", 0.5, 4.0),
            clock_rates=clock if "clock" in kinds else (1.0,) * MAX_MANAGERS,
            snapshot_every=rng.choice((2, 3, 5, 8) if "crash" in kinds else (0, 4, 16, 64)),
            # Version 2 sends one entry per append more often: an old entry then reaches a
            # follower one round trip before the new leader's own (Figure 8's window).
            max_entries_per_message=rng.choice((1, 1, 2, 64) if version == 1 else (1, 1, 1, 2, 64)),
            client_interval_s=rng.uniform(0.02, 0.15),
            fault_window_s=rng.uniform(3.0, 7.0))
        if version >= 2:
            fields.update(cls._draw_v2(rng, kinds, version))
        else:
            fields.update(kinds=kinds, client_keys=len(CLIENT_KEYS), reread_share=0.0, jitter_s=0.0, jitter_share=0.0)
        if version >= 3:
            kinds_drawn = fields["kinds"]
            assert isinstance(kinds_drawn, frozenset)
            fields.update(cls._draw_v3(rng, kinds_drawn))
        return cls(seed=seed, calm_s=LIVENESS_BOUND_S, version=version, **fields)  # type: ignore[arg-type]

    @staticmethod
    def _draw_v3(rng: Random, kinds: frozenset[str]) -> dict[str, object]:
        """What version 3 adds, drawn after everything version 2 draws."""
        rolling = rng.random() < 0.5
        return {"rolling_restarts": rolling and "crash-before-send" in kinds}

    @staticmethod
    def _draw_v2(rng: Random, kinds: frozenset[str], version: int) -> dict[str, object]:
        """What version 2 adds, drawn after everything version 1 draws."""
        kinds |= {k for k in FAULT_KINDS if k not in FAULT_KINDS_V1 and rng.random() < V2_KIND_SHARES[k]}
        jitter_s = log_uniform(rng, 0.002, 0.1)
        jitter_share = rng.uniform(0.1, 1.0)
        # Each moment of crash-before-send gets its own share (some seeds crash leaders right
        # after most commits but rarely after an election, ...): Figure 8 needs all three.
        moments = tuple(rng.uniform(0.05, 0.9) if version == 2 else log_uniform(rng, 0.03, 0.9)
                        for _ in CRASH_MOMENTS)
        before_send = moments if "crash-before-send" in kinds else (0.0,) * len(CRASH_MOMENTS)
        reread_share = rng.uniform(0.0, 0.9)
        return dict(kinds=frozenset(kinds), client_keys=rng.choice(CLIENT_KEY_COUNTS), reread_share=reread_share,
                    jitter_s=jitter_s if "jitter" in kinds else 0.0,
                    jitter_share=jitter_share if "jitter" in kinds else 0.0, crash_before_send=before_send)

    def describe(self) -> str:
        kinds = ",".join(k for k in FAULT_KINDS if k in self.kinds) or "none"
        rates = " ".join(f"{n}={v:.2f}" for n, v in (
            ("crash/s", self.crash_rate_s), ("crash-new-leader", self.crash_new_leader_share),
            ("crash-after-vote", self.crash_after_vote_share),
            *((f"crash-before-send-{m}", v) for m, v in zip(CRASH_MOMENTS, self.crash_before_send, strict=True)),
            ("jitter-ms", self.jitter_s * 1000), ("jitter-share", self.jitter_share),
            ("partition/s", self.partition_rate_s),
            ("cut/s", self.cut_rate_s),
            ("membership/s", self.membership_rate_s), ("pause/s", self.pause_rate_s),
            ("storm/s", self.storm_rate_s), ("transfer/s", self.transfer_rate_s),
            ("elections/s", self.election_rate_s), ("loss", self.loss)) if v)
        clocks = ",".join(f"{r:.2f}" for r in self.clock_rates[:self.managers])
        return (f"{self.generator}: {self.managers} managers, {self.profile}, faults [{kinds}] {rates} "
                f"prevote={self.pre_vote} checkquorum={self.check_quorum} clocks=[{clocks}] "
                f"copies={self.storm_copies} snapshot_every={self.snapshot_every} "
                f"batch={self.max_entries_per_message} keys={self.client_keys} reread={self.reread_share:.2f} "
                f"heartbeat={self.settings().raft.heartbeat_ticks}"
                f"{' rolling-restarts' if self.rolling_restarts else ''} faults for {self.fault_window_s:.1f} s"
                f"{'; ' + self.learners.describe() if self.learners is not None else ''}")

    def network(self, rng: Random, trace: Callable[[str], None] | None) -> SwarmNetwork:
        network = SwarmNetwork(PROFILES[self.profile].with_faults(loss=self.loss), rng, trace=trace)
        if self.jitter_s:
            network.jitter = (self.jitter_share, self.jitter_s)
        return network


class SwarmNetwork(NetworkModel):
    """``NetworkModel`` plus named one-way cuts (healed one by one) and duplication storms."""

    def __init__(self, default: LinkProfile, rng: Random, *, trace: Callable[[str], None] | None = None) -> None:
        super().__init__(default, rng)
        self.cuts: dict[int, set[tuple[int, int]]] = {}
        self.silenced: dict[int, frozenset[int]] = {}
        """Nodes about to crash, with the peers that still get what they send now (a crash in the
        middle of a broadcast): their other messages are lost."""
        self.storm: tuple[int, float] | None = None
        self.jitter: tuple[float, float] | None = None
        """(share, seconds): that share of messages arrives up to that much later, until the heal."""
        self.trace = trace
        self._rng_storm = rng
        self._cuts_made = 0

    def add_cut(self, pairs: set[tuple[int, int]]) -> int:
        """Drop what ``src`` sends ``dst`` for every (src, dst) in ``pairs`` until ``heal_cut``
        (or ``heal``); returns the cut's number: 1, 2, ... in the order the cuts are made."""
        self._cuts_made += 1
        self.cuts[self._cuts_made] = pairs
        return self._cuts_made

    def heal_cut(self, cut: int) -> None:
        self.cuts.pop(cut, None)

    def transmit(self, src: int, dst: int, size_bytes: int, now_s: float) -> list[float]:
        reaches = self.silenced.get(src)
        if (reaches is not None and dst not in reaches) or any((src, dst) in pairs for pairs in self.cuts.values()):
            self.sent += 1
            self.dropped += 1
            return []
        times = super().transmit(src, dst, size_bytes, now_s)
        if self.storm is not None and times:
            copies, delay_s = self.storm
            rng = self._rng_storm
            times = [t + rng.uniform(0.0, delay_s) for t in times]
            times += [times[0] + rng.uniform(0.0, delay_s) for _ in range(copies - len(times))]
        if self.jitter is not None and times:
            share, late_s = self.jitter
            rng = self._rng_storm
            times = [t + rng.uniform(0.0, late_s) if rng.random() < share else t for t in times]
        return times

    def heal(self) -> None:
        super().heal()
        self.cuts.clear()
        self.storm = None
        self.jitter = None


@dataclass
class FaultState:
    """Which faults are active now, and when the set last changed (for liveness after a heal)."""

    active: int = 0
    changes: int = 0

    def begin(self) -> None:
        self.active += 1
        self.changes += 1

    def end(self) -> bool:
        """One fault ended; True if none is left (the cluster is whole again)."""
        self.active -= 1
        self.changes += 1
        return self.active == 0


Trace = Callable[[str], None]
OnHeal = Callable[[], None]


class SwarmFaults(Hook):
    """Schedules a plan's faults on a cluster during its fault window (and, as a hook and through
    ``node_class``, crashes nodes right after they win an election, commit or grant a vote).

    Made before the cluster (the cluster needs ``node_class``); ``schedule(cluster)`` starts it."""

    def __init__(self, network: SwarmNetwork, plan: SwarmPlan, rng: Random, trace: Trace,
                 on_heal: OnHeal) -> None:
        self.network, self.plan, self.rng = network, plan, rng
        self.trace, self.on_heal = trace, on_heal
        self.state = FaultState()
        self._votes_seen: dict[int, tuple[int, int]] = {}
        self._rolling_down: list[int] = []
        """With rolling restarts: leaders crashed before sending that are still down, oldest first."""
        self._cluster: RaftCluster | None = None

    @property
    def cluster(self) -> RaftCluster:
        assert self._cluster is not None, "schedule(cluster) first"
        return self._cluster

    def node_class(self, base: type[RaftNode]) -> type[RaftNode]:
        """``base`` that may crash between persisting a Ready and sending its messages."""
        if not any(self.plan.crash_before_send):
            return base
        faults = self

        class CrashesBeforeSending(base):  # type: ignore[valid-type,misc]
            def ready(self) -> Ready:
                ready: Ready = super().ready()
                faults.maybe_crash_before_send(self, ready)
                return ready

        return CrashesBeforeSending

    def maybe_crash_before_send(self, node: RaftNode, ready: Ready) -> None:
        cluster = self._cluster
        if cluster is None or node.role != LEADER or cluster.now_s >= self.plan.fault_window_s:
            return
        elected = ready.soft_state is not None and node._prev_soft.role != LEADER
        committed = ready.hard_state is not None and ready.hard_state.commit > node._prev_hard.commit
        if not (elected or committed or ready.entries):
            return
        moment = 0 if elected else 2 if committed else 1
        share = self.plan.crash_before_send[moment]
        if not share or self.rng.random() >= share:
            return
        manager = cluster.managers[node.id]
        peers = [v for v in node.members() if v != node.id]
        reached = self.rng.sample(peers, self.rng.randint(0, len(peers)))
        if self.plan.rolling_restarts and self.rng.random() < 0.5:
            reached = []  # version 3: as often as not the crash beats every send
        self.network.silenced[node.id] = frozenset(reached)
        what = "elected" if elected else "committed" if committed else f"appended {len(ready.entries)} entries"
        down_s = self.rng.uniform(0.01, 1.0) if not self.plan.rolling_restarts else self.rng.uniform(1.0, 2.5)
        cluster.schedule(cluster.now_s, lambda: self._crash_before_send(manager, manager.incarnation, what, down_s))

    def _crash_before_send(self, manager: Manager, incarnation: int, what: str, down_s: float) -> None:
        """Crash the leader; with rolling restarts, the leaders crashed so before come back now (at
        the latest after ``down_s``): one leader down at a time, in turn, as Figure 8 goes -- the
        leader of term 2 is down while the leader of term 3 is elected and dies, comes back and
        wins term 4 while that one is down, and dies as the leader of term 3 returns."""
        if manager.node is None or manager.incarnation != incarnation:
            self.network.silenced.pop(manager.node_id, None)
            return
        if self.plan.rolling_restarts:
            for node_id in self._rolling_down:
                self.cluster.restart(node_id)
                self.trace(f"{self.now_text()} {node_id} back as {manager.node_id} goes down (rolling restart)")
            self._rolling_down = [manager.node_id]
        self._crash_if_same(manager, incarnation, f"leader ({what}, before sending)", down_s)

    def role_changed(self, cluster: RaftCluster, manager: Manager, old_role: str, old_leader: int) -> None:
        node = manager.node
        if (node is None or node.role != LEADER or cluster.now_s >= self.plan.fault_window_s
                or self.rng.random() >= self.plan.crash_new_leader_share):
            return
        incarnation = manager.incarnation
        at_s = cluster.now_s + self.rng.uniform(0.0, 0.04)
        down_s = self.rng.choice((self.rng.uniform(0.001, 0.05), self.rng.uniform(0.05, 1.0)))
        cluster.schedule(at_s, lambda: self._crash_if_same(manager, incarnation, "new leader", down_s))

    def stepped(self, cluster: RaftCluster, manager: Manager) -> None:
        node = manager.node
        if node is None or not self.plan.crash_after_vote_share:
            return
        vote = (node.term, node.vote)
        if self._votes_seen.get(manager.node_id) == vote:
            return
        self._votes_seen[manager.node_id] = vote
        if (node.vote in (NO_NODE, node.id) or cluster.now_s >= self.plan.fault_window_s
                or self.rng.random() >= self.plan.crash_after_vote_share):
            return
        incarnation = manager.incarnation
        # Back at once (a second candidate of this term asks again) or later (a laggard asks);
        # version 2 also restarts within a message's flight time (0.5 ms and up).
        if self.plan.version == 1:
            down_s = self.rng.choice((self.rng.uniform(0.001, 0.05), self.rng.uniform(0.05, 0.5)))
        elif self.plan.version >= 3 and self.rng.random() < INSTANT_RESTART_SHARE:
            down_s = 0.0  # back before the next message arrives: only what it persisted survives
        else:
            down_s = log_uniform(self.rng, 0.0005, 0.5)
        cluster.schedule(cluster.now_s, lambda: self._crash_if_same(manager, incarnation, "voter", down_s))

    def restarted(self, cluster: RaftCluster, manager: Manager) -> None:
        self.network.silenced.pop(manager.node_id, None)
        if manager.node_id in self._rolling_down:
            self._rolling_down.remove(manager.node_id)

    def _crash_if_same(self, manager: Manager, incarnation: int, who: str, down_s: float) -> None:
        if manager.node is None or manager.incarnation != incarnation:
            self.network.silenced.pop(manager.node_id, None)
            return
        self.cluster.crash(manager.node_id)
        self.trace(f"{self.now_text()} {who} {manager.node_id} crashed at a bad moment, back in {down_s * 1000:.0f} ms")
        self.hold(down_s, lambda: self.cluster.restart(manager.node_id))

    def schedule(self, cluster: RaftCluster) -> None:
        self._cluster = cluster
        plan = self.plan
        cluster.hooks.append(self)
        for node_id, manager in cluster.managers.items():
            manager.clock_rate = plan.clock_rates[node_id - 1]
        actions: list[tuple[float, Callable[[], None]]] = [
            (plan.crash_rate_s, self.crash), (plan.partition_rate_s, self.partition),
            (plan.cut_rate_s, self.cut_leader), (plan.membership_rate_s, self.change_membership),
            (plan.pause_rate_s, self.pause), (plan.storm_rate_s, self.storm), (plan.transfer_rate_s, self.transfer),
            (plan.election_rate_s, self.elections)]
        for rate_s, action in actions:
            if rate_s <= 0:
                continue
            at_s = self.rng.expovariate(rate_s)
            while at_s < plan.fault_window_s:
                cluster.schedule(at_s, action)
                at_s += self.rng.expovariate(rate_s)

    def now_text(self) -> str:
        return f"{self.cluster.now_s:8.3f}"

    def hold(self, seconds: float, undo: Callable[[], None]) -> None:
        """Count a fault as active until ``seconds`` from now, then undo it."""
        self.state.begin()

        def finish() -> None:
            undo()
            if self.state.end():
                self.on_heal()
        self.cluster.schedule(self.cluster.now_s + seconds, finish)

    # -- the fault kinds ---------------------------------------------------------------------------

    def _victim(self) -> int | None:
        """The leader half the time (when there is one), else any live manager; None if all are down."""
        alive = self.cluster.alive()
        if not alive:
            return None
        leader = self.cluster.leader()
        return leader.id if leader is not None and self.rng.random() < 0.5 else self.rng.choice(alive).node_id

    def crash(self) -> None:
        victim = self._victim()
        if victim is None:
            return
        self.cluster.crash(victim)
        self.hold(self.rng.uniform(0.05, 1.5), lambda: self.cluster.restart(victim))

    def _add_cut(self, pairs: set[tuple[int, int]], what: str, seconds: float) -> None:
        self.cut(pairs, what, seconds)
        if self.plan.membership_rate_s and self.rng.random() < 0.5:
            self.change_membership()

    def cut(self, pairs: set[tuple[int, int]], what: str, seconds: float) -> None:
        """Drop what ``src`` sends ``dst`` for each pair, for ``seconds`` (an active fault until then)."""
        cut = self.network.add_cut(pairs)
        self.trace(f"{self.now_text()} cut {cut}: {what} for {seconds:.2f} s")

        def heal() -> None:
            self.network.heal_cut(cut)
            self.trace(f"{self.now_text()} cut {cut} healed")
        self.hold(seconds, heal)

    def partition(self) -> None:
        ids = sorted(self.cluster.managers)
        if len(ids) < 2:
            return
        self.rng.shuffle(ids)
        cut = self.rng.randint(1, len(ids) - 1)
        side, rest = ids[:cut], ids[cut:]
        leader = self.cluster.leader()
        if self.plan.version >= 3 and leader is not None and self.rng.random() < 0.5:
            # Version 3 aims half the partitions at the leader: it ends up in a minority, and
            # the majority elects a successor while it may still lead and answer (CheckQuorum off).
            others = [i for i in ids if i != leader.id]
            keep = self.rng.randint(0, max(0, (len(ids) - 1) // 2 - 1))  # the leader's side stays a minority
            side, rest = [leader.id, *others[:keep]], others[keep:]
        pairs = {(a, b) for a in side for b in rest}
        symmetric = self.rng.random() < 0.6
        if symmetric:
            pairs |= {(b, a) for a, b in pairs}
        self._add_cut(pairs, f"{sorted(side)} {'<->' if symmetric else '->'} {sorted(rest)}",
                      self.rng.uniform(0.3, 3.0))

    def cut_leader(self) -> None:
        leader = self.cluster.leader()
        if leader is None:
            return
        others = [i for i in sorted(self.cluster.managers) if i != leader.id]
        if not others:
            return
        # Version 2 also isolates the leader both ways: it neither hears that it was deposed nor
        # stops leading (without CheckQuorum), while the others elect a successor.
        shapes = {1: LEADER_CUT_SHAPES_V1, 2: (*LEADER_CUT_SHAPES_V1, "isolate")}.get(
            self.plan.version, (*LEADER_CUT_SHAPES_V1, "isolate", "isolate"))
        shape = self.rng.choice(shapes)
        if shape == "isolate":
            pairs = {(leader.id, o) for o in others} | {(o, leader.id) for o in others}
        elif shape == "mute":
            pairs = {(leader.id, o) for o in others}
        elif shape == "deaf":
            pairs = {(o, leader.id) for o in others}
        else:
            chosen = self.rng.sample(others, self.rng.randint(1, len(others)))
            pairs = {(leader.id, o) if shape == "link-out" else (o, leader.id) for o in chosen}
        self._add_cut(pairs, f"leader {leader.id} {shape} {sorted(pairs)}", self.rng.uniform(0.5, 4.0))

    def change_membership(self) -> None:
        leader = self.cluster.leader()
        if leader is None:
            return
        voters = leader.voters
        outside = [i for i in range(1, MAX_MANAGERS + 1) if i not in voters]
        roll = self.rng.random()
        if roll < self.plan.remove_leader_share and len(voters) > 1:
            change = ConfChange("remove", leader.id)
        elif outside and (len(voters) <= 2 or roll < (1 + self.plan.remove_leader_share) / 2):
            change = ConfChange("add", self.rng.choice(outside))
            if change.node_id not in self.cluster.managers:
                manager = self.cluster.add_manager(change.node_id, Stored())
                manager.clock_rate = self.plan.clock_rates[change.node_id - 1]
        else:
            change = ConfChange("remove", self.rng.choice(voters))
        if self.cluster.propose_conf_change(leader.id, change) is not None:
            self.trace(f"{self.now_text()} leader {leader.id} proposes {change.action} {change.node_id}")
            self.disrupted()

    def pause(self) -> None:
        victim = self._victim()
        if victim is None:
            return
        victims = [victim]
        if self.rng.random() < 0.4:  # several managers on one stalled host
            alive = self.cluster.alive()
            victims = self.rng.sample([m.node_id for m in alive], self.rng.randint(1, len(alive)))
        # A pause ends within the fault window: the calm period after it must be calm.
        seconds = min(self.rng.uniform(1.0, 3.0), self.plan.fault_window_s - self.cluster.now_s)
        burst = self.rng.randint(0, 2 * self.cluster.settings.raft.election_ticks_max)
        if seconds < 0.1:
            return
        for node_id in victims:
            self.cluster.pause(node_id, self.cluster.now_s + seconds, burst_ticks=burst)
        self.trace(f"{self.now_text()} nodes {victims} paused for {seconds:.2f} s, then {burst} ticks at once")
        self.hold(seconds, lambda: None)

    def storm(self) -> None:
        if self.network.storm is not None:
            return
        self.network.storm = (self.plan.storm_copies, self.plan.storm_delay_s)
        seconds = self.rng.uniform(0.5, 3.0)
        self.trace(f"{self.now_text()} duplication storm ({self.plan.storm_copies} copies, up to "
                   f"{self.plan.storm_delay_s * 1000:.0f} ms apart) for {seconds:.2f} s")

        def calm() -> None:
            self.network.storm = None
        self.hold(seconds, calm)

    def transfer(self) -> None:
        leader = self.cluster.leader()
        if leader is None or len(leader.voters) < 2:
            return
        target = self.rng.choice([v for v in leader.voters if v != leader.id])
        if self.cluster.transfer_leadership(leader.id, target):
            self.trace(f"{self.now_text()} leader {leader.id} transfers to {target}")
            self.disrupted()

    def elections(self) -> None:
        followers = [m.node_id for m in self.cluster.alive() if m.node is not None and m.node.role != LEADER
                     and m.node.promotable()]
        if len(followers) < 2:
            return
        chosen = self.rng.sample(followers, self.rng.randint(2, len(followers)))
        self.trace(f"{self.now_text()} nodes {chosen} time out at once")
        for node_id in chosen:
            self.cluster.campaign(node_id)
        self.disrupted()

    def disrupted(self) -> None:
        """Not a fault that lasts, but leadership may change: the liveness bound starts again."""
        self.hold(0.0, lambda: None)

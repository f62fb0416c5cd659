"""The vopr's ``learners`` workload: the swarm's plans and faults, plus learners (non-voting members).

Theory of operation
-------------------
``--generator learners`` draws seed S's latest swarm plan (``SwarmPlan.draw``, every draw as
``--generator swarm`` makes it) and then, from streams of its own (``vopr.learners.*``), what
this module adds, so no other generator's seeds change:

- the cluster boots with 0-3 learners besides its voters (ids after the voters', up to
  ``MAX_MEMBERS``; voters stay at most 7, the core's limit);
- snapshots every 2-16 applied entries, so learners that lag or join empty catch up by
  InstallSnapshot, and snapshots carry learners;
- ``LearnerFaults``, at its own rates during the fault window: the leader adds a learner (a new
  manager with an empty disk, or a voter removed before: a demotion is a removal and an
  add-learner), promotes one, removes one, or removes a voter; learners crash or are cut off
  both ways for up to seconds. Before each change the leader is probed for what it must
  refuse -- a learner as leadership-transfer target, an ``add-learner`` of a voter -- and every
  live learner is told to campaign, which must leave it a follower.

The swarm's own faults act on learners as on anyone (crashes, partitions, pauses aim at any
manager), its membership changes may promote a learner (``add`` of a learner's id), and a
leader that crashes in the middle of a broadcast may reach some learners.

What the vopr checks on top (``novacron.raft.invariants``, after every step, in every workload):
a learner is never pre-candidate, candidate or leader; a leader was elected by a majority of its
configuration's voters; a committed entry is on the disks of a majority of the committing
leader's voters. And after the calm, every learner must have caught up with the leader as every
voter must. ``sim.raft.planted_bugs`` holds nodes that break these rules (``learner-quorum``,
``learner-votes``, ``learner-campaigns``); the workload must catch each.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, replace
from random import Random
from types import MappingProxyType
from typing import TYPE_CHECKING

from novacron.raft.invariants import SafetyViolation
from novacron.raft.messages import ConfChange
from novacron.raft.node import MAX_VOTERS, RaftNode, Stored
from novacron.seeding import RunSeeds, log_uniform
from sim.raft.cluster import ClusterSettings, Hook, Manager, RaftCluster

if TYPE_CHECKING:
    from sim.raft.swarm import SwarmFaults, SwarmPlan

MAX_MEMBERS = 9
"""Node ids 1..9: up to 7 voters (``node.MAX_VOTERS``) and learners beside them."""
MAX_BOOT_LEARNERS = 3
LEARNER_CHANGES = MappingProxyType({"add-learner": "add-learner", "promote": "add", "remove-learner": "remove",
                                    "remove-voter": "remove"})
"""The workload's membership changes, and the ``ConfChange`` action each proposes."""


@dataclass(frozen=True)
class LearnerPlan:
    """What the ``learners`` workload adds to a swarm plan, drawn from its own stream."""

    boot_learners: int
    change_rate_s: float
    """Learner membership changes per second (each preceded by the refusal probes)."""
    isolate_rate_s: float
    """Crashes and two-way cuts of a learner per second."""
    snapshot_every: int
    clock_rates: tuple[float, ...]
    """Clock rates of the ids a swarm plan has none for (8 and 9), used when its ``clock`` kind is on."""

    @classmethod
    def draw(cls, seed: int, voters: int) -> LearnerPlan:
        rng = RunSeeds(seed).python("vopr.learners.plan")
        return cls(boot_learners=rng.randint(0, min(MAX_BOOT_LEARNERS, MAX_MEMBERS - voters)),
                   change_rate_s=log_uniform(rng, 0.5, 4.0), isolate_rate_s=log_uniform(rng, 0.1, 1.5),
                   snapshot_every=rng.choice((2, 3, 5, 8, 16)),
                   clock_rates=tuple(rng.uniform(0.5, 1.5) for _ in range(MAX_MEMBERS - 7)))

    def boot_with(self, settings: ClusterSettings) -> ClusterSettings:
        """``settings``' voters (``1..managers``) and this plan's boot learners after them."""
        voters = settings.managers
        return replace(settings, managers=voters + self.boot_learners,
                       learners=tuple(range(voters + 1, voters + self.boot_learners + 1)))

    def describe(self) -> str:
        return (f"learners: {self.boot_learners} at boot, changes/s={self.change_rate_s:.2f} "
                f"isolate/s={self.isolate_rate_s:.2f}")


def with_learners(plan: SwarmPlan) -> SwarmPlan:
    """Seed ``plan.seed``'s swarm plan with the learners workload on top (the swarm draws unchanged)."""
    learners = LearnerPlan.draw(plan.seed, plan.managers)
    extra_clocks = learners.clock_rates if "clock" in plan.kinds else (1.0,) * len(learners.clock_rates)
    return replace(plan, learners=learners, snapshot_every=learners.snapshot_every,
                   clock_rates=plan.clock_rates + extra_clocks)


class LearnerFaults(Hook):
    """Learner membership changes, refusal probes and learner crashes and cuts, on top of a
    ``SwarmFaults`` (whose fault accounting -- the liveness bound after a heal -- they share).
    ``events`` counts what happened, so tests can tell the workload reached each case."""

    def __init__(self, faults: SwarmFaults, plan: LearnerPlan, rng: Random) -> None:
        self.faults, self.plan, self.rng = faults, plan, rng
        self.events: Counter[str] = Counter()

    @property
    def cluster(self) -> RaftCluster:
        return self.faults.cluster

    def schedule(self, cluster: RaftCluster) -> None:
        """Start after ``faults.schedule(cluster)``."""
        cluster.hooks.append(self)
        self.events["boot-learners"] = self.plan.boot_learners
        window_s = self.faults.plan.fault_window_s
        for rate_s, action in ((self.plan.change_rate_s, self.change), (self.plan.isolate_rate_s, self.isolate)):
            at_s = self.rng.expovariate(rate_s)
            while at_s < window_s:
                cluster.schedule(at_s, action)
                at_s += self.rng.expovariate(rate_s)

    # -- membership ----------------------------------------------------------------------------

    def change(self) -> None:
        leader = self.cluster.leader()
        if leader is None:
            return
        self._probe_refusals(leader)
        options = self._change_options(leader)
        action = self.rng.choice([a for a in LEARNER_CHANGES if options[a]])
        node_id = self.rng.choice(options[action])
        if action == "add-learner":
            self._ensure_manager(node_id)
        if self.cluster.propose_conf_change(leader.id, ConfChange(LEARNER_CHANGES[action], node_id)) is not None:
            self.events[action] += 1
            self.faults.trace(f"{self.faults.now_text()} leader {leader.id} proposes {action} {node_id}")
            self.faults.disrupted()

    @staticmethod
    def _change_options(leader: RaftNode) -> dict[str, list[int]]:
        """The ids each of ``LEARNER_CHANGES`` could apply to in the leader's configuration. One
        always can: with two voters or more one can go; with one, an id is free or a learner can go."""
        voters, learners = leader.voters, leader.learners
        return {"add-learner": [i for i in range(1, MAX_MEMBERS + 1) if i not in voters and i not in learners],
                "promote": list(learners) if len(voters) < MAX_VOTERS else [],
                "remove-learner": list(learners),
                "remove-voter": list(voters) if len(voters) > 1 else []}

    def _ensure_manager(self, node_id: int) -> None:
        """A new member's manager, with an empty disk, on the clock the plan gives its id."""
        if node_id not in self.cluster.managers:
            manager = self.cluster.add_manager(node_id, Stored())
            manager.clock_rate = self.faults.plan.clock_rates[node_id - 1]

    def _probe_refusals(self, leader: RaftNode) -> None:
        """What a leader must refuse, asked of the live leader; a learner told to campaign must not
        (``SafetyChecker``'s Learners Never Campaign sees it if it does)."""
        for learner in leader.learners:
            if self.cluster.transfer_leadership(leader.id, learner):
                raise SafetyViolation("Learner Rules", f"leader {leader.id} accepted learner {learner} as the "
                                      "target of a leadership transfer")
        voter = self.rng.choice(leader.voters)
        if self.cluster.propose_conf_change(leader.id, ConfChange("add-learner", voter)) is not None:
            raise SafetyViolation("Learner Rules", f"leader {leader.id} accepted demoting voter {voter} to a "
                                  "learner in one change")
        for manager in self._live_learners():
            self.cluster.campaign(manager.node_id)
        self.events["refusals-probed"] += 1

    def _live_learners(self) -> list[Manager]:
        """Live managers that their own latest configuration makes learners."""
        return [m for m in self.cluster.alive() if m.node is not None and m.node_id in m.node.learners]

    # -- learner faults ---------------------------------------------------------------------------

    def isolate(self) -> None:
        leader = self.cluster.leader()
        learners = [i for i in leader.learners if self.cluster.node(i) is not None] if leader is not None else []
        if not learners:
            return
        victim = self.rng.choice(learners)
        if self.rng.random() < 0.5:
            self.cluster.crash(victim)
            self.events["learner-crash"] += 1
            self.faults.hold(self.rng.uniform(0.05, 1.5), lambda: self.cluster.restart(victim))
            return
        others = [i for i in self.cluster.managers if i != victim]
        pairs = {(victim, o) for o in others} | {(o, victim) for o in others}
        self.events["learner-cut"] += 1
        self.faults.cut(pairs, f"learner {victim} isolated", self.rng.uniform(0.3, 3.0))

    # -- observations ---------------------------------------------------------------------------------

    def snapshot_installed(self, cluster: RaftCluster, manager: Manager, index: int) -> None:
        node = manager.node
        if node is not None and node.log.snapshot.learners:
            self.events["snapshot-with-learners-installed"] += 1

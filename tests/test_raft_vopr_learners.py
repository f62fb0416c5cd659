"""The vopr's ``learners`` workload (``sim.raft.learners``): its plans leave every other generator's
draws alone, its seeds pass, it reaches each learner case, and it catches the planted learner bugs;
and the three checks it relies on (Learners Never Campaign, Election Quorum, Commit Quorum)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from random import Random

import pytest

from novacron.app.cli import main
from novacron.raft.invariants import SafetyChecker, SafetyViolation
from novacron.raft.messages import Entry, HardState, Snapshot
from novacron.raft.node import CANDIDATE, LEADER, RaftConfig, RaftNode, Stored
from novacron.statemachine import encode_command
from sim.network import PROFILES, NetworkModel
from sim.raft.cluster import ClusterSettings, RaftCluster
from sim.raft.learners import MAX_MEMBERS
from sim.raft.planted_bugs import LEARNER_PLANTED_BUGS, PLANTED_BUGS
from sim.raft.swarm import SwarmPlan
from sim.raft.vopr import draw_plan, run_seed
from tests.test_raft_vopr import assert_seeds_pass

LEARNER_CI_SEEDS = 200
PLANT_SEED_BOUND = 30
"""Each planted learner bug must be caught within this many seeds (the first detecting seeds are 2,
1 and 0, and each is caught on 42-83 % of 1,000 seeds: benchmarks/RESULTS_raft.md)."""


# -- the checks ------------------------------------------------------------------------------------


def _node(node_id: int, term: int, vote: int, *, commit: int = 0, role: str = "follower",
          entries: tuple[Entry, ...] = ()) -> RaftNode:
    """A node of voters 1-3 and learners 4-5 whose hard state is (term, vote, commit)."""
    stored = Stored(HardState(term, vote, commit), Snapshot(0, 0, (1, 2, 3), learners=(4, 5)), list(entries))
    node = RaftNode(RaftConfig(node_id=node_id), Random(node_id), stored)
    node.role = role
    return node


def test_a_learner_that_campaigns_is_caught() -> None:
    with pytest.raises(SafetyViolation, match="Learners Never Campaign"):
        SafetyChecker().check(_node(4, 2, 4, role=CANDIDATE))


def test_a_leader_elected_by_learners_votes_is_caught_and_one_elected_by_voters_is_not() -> None:
    checker = SafetyChecker(check_votes=True)
    for learner in (4, 5):
        checker.check(_node(learner, 2, 1))  # the learners voted for 1 in term 2
    with pytest.raises(SafetyViolation, match=r"Election Quorum: node 1 leads term 2 with votes of voters \[1\]"):
        checker.check(_node(1, 2, 1, role=LEADER))
    checker = SafetyChecker(check_votes=True)
    checker.check(_node(2, 2, 1))
    checker.check(_node(1, 2, 1, role=LEADER))


def test_a_commit_that_only_learners_store_is_caught() -> None:
    entries = (Entry(1, 1), Entry(2, 2))

    def leader() -> RaftNode:
        return _node(1, 2, 1, commit=2, role=LEADER, entries=entries)

    on_disk = {1, 4, 5}
    checker = SafetyChecker(holds=lambda node_id, index, term: node_id in on_disk)
    with pytest.raises(SafetyViolation, match=r"Commit Quorum: leader 1 of term 2 committed 2 \(term 2\) held by "
                                              r"voters \[1\] only"):
        checker.check(leader())
    on_disk = {1, 2}
    SafetyChecker(holds=lambda node_id, index, term: node_id in on_disk).check(leader())


def test_a_simulated_cluster_boots_its_learners_and_replicates_to_them() -> None:
    network = NetworkModel(PROFILES["lan"], Random(1))
    cluster = RaftCluster(ClusterSettings(managers=5, learners=(4, 5)), network, Random(2))
    cluster.run_until(2.0)
    leader = cluster.leader()
    assert leader is not None and (leader.voters, leader.learners) == ((1, 2, 3), (4, 5))
    assert cluster.propose(leader.id, encode_command(op="put", key="k", value="v")) is not None
    cluster.run_until(2.5)
    assert all(cluster.managers[i].storage.holds(leader.log.committed, leader.term) for i in (4, 5))


# -- the workload ----------------------------------------------------------------------------------


def test_the_learners_plan_is_the_swarm_plan_of_the_seed_plus_learners() -> None:
    for seed in range(50):
        swarm, learners = SwarmPlan.draw(seed), draw_plan(seed, "learners")
        assert isinstance(learners, SwarmPlan) and learners.learners is not None
        assert learners.generator == "learners" and swarm.learners is None and swarm.generator == "swarm"
        assert replace(learners, learners=None, snapshot_every=swarm.snapshot_every,
                       clock_rates=learners.clock_rates[:7]) == swarm
        assert len(learners.clock_rates) == MAX_MEMBERS
        assert learners.managers + learners.learners.boot_learners <= MAX_MEMBERS
        voters, boot = learners.managers, learners.learners.boot_learners
        settings = learners.settings()
        assert (settings.managers, settings.learners) == (voters + boot, tuple(range(voters + 1, voters + boot + 1)))


@pytest.mark.slow
def test_learners_ci_seeds_pass_and_reach_every_learner_case() -> None:
    events = assert_seeds_pass([("learners", seed) for seed in range(LEARNER_CI_SEEDS)])
    for case in ("boot-learners", "add-learner", "promote", "remove-learner", "remove-voter", "learner-crash",
                 "learner-cut", "refusals-probed", "snapshot-with-learners-installed"):
        assert events[case] >= 10, f"{case} happened {events[case]} times in {LEARNER_CI_SEEDS} seeds"


@pytest.mark.parametrize("plant", LEARNER_PLANTED_BUGS)
def test_each_planted_learner_bug_is_caught_within_a_few_seeds(plant: str, capsys: pytest.CaptureFixture[str]) -> None:
    for seed in range(PLANT_SEED_BOUND):
        result = run_seed(seed, generator="learners", node_class=PLANTED_BUGS[plant], plant=plant)
        if not result.ok:
            with capsys.disabled():
                print(f"\n{plant}: caught on seed {seed}: {result.violation} ({result.replay_command()})")
            assert result.trace
            return
    pytest.fail(f"{plant} was not caught in seeds 0-{PLANT_SEED_BOUND - 1} of the learners workload")


def test_cli_vopr_runs_the_learners_workload_and_replays_a_planted_learner_bug(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["vopr", "--seeds", "3", "--generator", "learners", "--no-progress"]) == 0
    assert "3 seeds passed (learners generator" in capsys.readouterr().out
    assert main(["vopr", "--seed", "0", "--generator", "learners", "--plant", "learner-campaigns", "--no-progress",
                 "--trace-dir", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "Learners Never Campaign" in out
    assert "novacron vopr --seed 0 --generator learners --plant learner-campaigns" in out

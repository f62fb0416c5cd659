"""The vopr: CI seeds plus every seed that ever failed, exact replay, planted bugs it must catch,
and the checkers' new teeth (state machines, gaps, exact Leader Completeness, budgets)."""

from __future__ import annotations

from collections import Counter
from dataclasses import replace
from pathlib import Path
from random import Random

import pytest

from novacron.app.cli import main
from novacron.raft.invariants import SafetyChecker, SafetyViolation
from novacron.raft.linearizability import GET, PUT, Operation, check_history
from novacron.raft.messages import Entry, HardState, Snapshot
from novacron.raft.node import LEADER, RaftConfig, RaftNode, Stored
from sim.network import PROFILES, NetworkModel
from sim.raft.cluster import RaftCluster
from sim.raft.planted_bugs import PLANTED_BUGS
from sim.raft.swarm import FAULT_KINDS, SwarmFaults, SwarmPlan, heartbeat_ticks_under_skew
from sim.raft.vopr import VoprPlan, run_seed

CI_SEEDS = 300
REGRESSIONS = Path(__file__).with_name("vopr_regressions.txt")

# The first seeds (swarm generator, version 3) on which each planted bug is caught, from
# `python -m benchmarks.bench_vopr --plant NAME --seeds 1000` (benchmarks/RESULTS_raft.md).
# Runs are deterministic, so each of these must fail every time: a checker or generator change
# that loses one of them loses the bug there (a new generator version re-finds them).
PLANTED_FIRST_SEEDS: dict[str, tuple[int, ...]] = {
    "old-term-commit": (0, 2),
    "forget-vote": (2, 16),
    "no-election-restriction": (1, 10, 12),
    "stale-read": (1, 14, 21),
    "no-log-matching": (0, 2, 11),
    "leader-keeps-term": (0, 1, 3),
}


# The same with RaftConfig.commit_broadcast off (followers learn a commit from the next append or
# heartbeat; scale-10000's control plane runs so), on the same plans:
# `python -m benchmarks.bench_vopr --no-commit-broadcast --plant NAME --seeds 1000`.
PLANTED_FIRST_SEEDS_NO_COMMIT_BROADCAST: dict[str, tuple[int, ...]] = {
    "old-term-commit": (0, 2),
    "forget-vote": (2, 16),  # 13 until a candidate's loss was counted as etcd counts it (54 of seeds 0-399 now)
    "no-election-restriction": (1, 10, 12),
    "stale-read": (1, 10, 14),
    "no-log-matching": (0, 2, 11),
    "leader-keeps-term": (0, 1, 3),
}
NO_COMMIT_BROADCAST_CI_SEEDS = 150


def regression_seeds() -> list[tuple[str, int]]:
    """``generator seed  # why`` lines of tests/vopr_regressions.txt: every seed that ever failed."""
    seeds = []
    for line in REGRESSIONS.read_text().splitlines():
        fields = line.split("#", 1)[0].split()
        if fields:
            seeds.append((fields[0], int(fields[1])))
    return seeds


def assert_seeds_pass(runs: list[tuple[str, int]]) -> Counter[str]:
    """Run every (generator, seed); fail with the first replay commands and traces. Returns how
    often each of the learners workload's cases happened (empty for the other generators)."""
    failures, unknown = [], []
    events: Counter[str] = Counter()
    for generator, seed in runs:
        result = run_seed(seed, generator=generator)
        events.update(result.learner_events)
        if result.unknown_keys:
            unknown.append(seed)
        if not result.ok:
            failures.append(f"{result.replay_command()}: {result.violation}\n  " + "\n  ".join(result.trace[-12:]))
    assert not failures, "\n".join(failures[:3])
    assert not unknown, f"linearizability unknown (over budget) on seeds {unknown}"
    return events


@pytest.mark.slow
def test_vopr_ci_seeds_and_every_seed_that_ever_failed_pass() -> None:
    assert_seeds_pass([("swarm", seed) for seed in range(CI_SEEDS)] + regression_seeds())


def test_a_seed_replays_exactly() -> None:
    first, second = run_seed(42), run_seed(42)
    assert (first.steps, first.messages, first.operations, first.trace) == (
        second.steps, second.messages, second.operations, second.trace)
    assert first.steps > 1000 and first.operations > 0


def test_a_full_trace_replays_the_same_run() -> None:
    quiet, traced = run_seed(7), run_seed(7, full_trace=True)
    assert (quiet.steps, quiet.messages, quiet.operations) == (traced.steps, traced.messages, traced.operations)
    assert len(traced.trace) > 10 * len(quiet.trace)


def test_swarm_plans_cover_every_size_and_fault_kind() -> None:
    plans = [SwarmPlan.draw(seed) for seed in range(300)]
    assert {p.managers for p in plans} == set(range(1, 8))
    for kind in FAULT_KINDS:
        share = sum(kind in p.kinds for p in plans) / len(plans)
        assert 0.3 < share < 0.7, f"{kind} is on in {share:.0%} of plans"
    skewed = [r for p in plans if "clock" in p.kinds for r in p.clock_rates]
    assert min(skewed) < 0.6 and max(skewed) > 1.4
    assert {p.storm_copies for p in plans} == {2, 3}
    assert any(p.snapshot_every in (2, 3) for p in plans if "crash" in p.kinds)
    assert {p.client_keys for p in plans} == {3, 4, 6} and max(p.reread_share for p in plans) > 0.8
    assert sum(not p.check_quorum for p in plans) > 0.4 * len(plans)
    assert min(p.jitter_s for p in plans if p.jitter_s) < 0.005 and max(p.jitter_s for p in plans) > 0.05


def test_swarm_version_1_draws_the_plans_its_regression_seeds_were_found_with() -> None:
    """tests/vopr_regressions.txt replays `swarm1` seeds: their plans must not drift (values
    printed by the generator of commit 1fa0145)."""
    plan = SwarmPlan.draw(319, version=1)
    assert plan.generator == "swarm1" and plan.managers == 3
    assert plan.kinds == {"clock", "crash", "duplication", "elections", "membership"}
    assert (plan.pre_vote, plan.check_quorum, plan.snapshot_every, plan.max_entries_per_message) == (False, True, 8, 1)
    assert plan.crash_rate_s == pytest.approx(0.169375, abs=1e-6)
    assert plan.fault_window_s == pytest.approx(6.182218, abs=1e-6)
    assert (plan.client_keys, plan.reread_share, plan.jitter_s) == (6, 0.0, 0.0)
    assert SwarmPlan.draw(71, version=1).describe().startswith(
        "swarm1: 2 managers, wan80, faults [partition,membership,clock,pause,duplication] partition/s=0.80")
    assert SwarmPlan.draw(319).generator == "swarm"


def test_swarm_version_2_draws_the_plans_its_table_was_measured_with() -> None:
    """Version 3 draws after everything version 2 draws: version 2's plans do not drift (values
    printed by the generator of commit 2e4b5d0)."""
    plan = SwarmPlan.draw(23, version=2)
    assert plan.generator == "swarm2" and plan.managers == 7 and not plan.rolling_restarts
    assert plan.kinds == {"crash", "crash-before-send", "duplication", "jitter", "loss", "partition", "pause"}
    assert (plan.pre_vote, plan.check_quorum) == (True, True)
    assert plan.crash_before_send == pytest.approx((0.665183, 0.599809, 0.180136), abs=1e-6)
    assert plan.jitter_s == pytest.approx(0.093383, abs=1e-6)


def test_swarm_version_3_turns_checkquorum_off_more_often_and_rolls_its_restarts() -> None:
    plans = [SwarmPlan.draw(seed) for seed in range(300)]
    assert 0.55 < sum(not p.check_quorum for p in plans) / len(plans) < 0.75
    rolling = [p for p in plans if p.rolling_restarts]
    assert rolling and all("crash-before-send" in p.kinds for p in rolling)
    assert 0.3 < len(rolling) / sum("crash-before-send" in p.kinds for p in plans) < 0.7
    assert min(min(p.crash_before_send) for p in plans if "crash-before-send" in p.kinds) < 0.05
    seed = next(p.seed for p in rolling if p.managers >= 3)
    trace = run_seed(seed, full_trace=True).trace
    assert any("(rolling restart)" in line for line in trace)


def test_the_classic_generator_stays_selectable() -> None:
    assert VoprPlan.draw(3).managers >= 3
    result = run_seed(3, generator="classic")
    assert result.ok and result.plan.generator == "classic"


def test_clients_read_at_followers_with_several_requests_in_flight() -> None:
    results = [run_seed(seed) for seed in range(4)]
    assert sum(r.follower_reads for r in results) > 50
    assert sum(r.reads for r in results) > 100


@pytest.mark.slow
def test_vopr_plans_pass_with_commit_broadcast_off() -> None:
    failures = []
    for seed in range(NO_COMMIT_BROADCAST_CI_SEEDS):
        result = run_seed(seed, commit_broadcast=False)
        if not result.ok:
            trace = "\n  ".join(result.trace[-12:])
            failures.append(f"seed {seed} (commit_broadcast off): {result.violation}\n  {trace}")
    assert not failures, "\n".join(failures[:3])


@pytest.mark.parametrize("plant", sorted(PLANTED_FIRST_SEEDS_NO_COMMIT_BROADCAST))
def test_each_planted_bug_is_caught_with_commit_broadcast_off(plant: str) -> None:
    for seed in PLANTED_FIRST_SEEDS_NO_COMMIT_BROADCAST[plant]:
        result = run_seed(seed, node_class=PLANTED_BUGS[plant], plant=plant, commit_broadcast=False)
        assert not result.ok, f"{plant} is no longer caught on seed {seed} with commit_broadcast off"
        assert result.violation and result.trace


def test_commit_broadcast_off_changes_only_the_nodes_setting_not_the_plan() -> None:
    """The option runs the generator's plan as drawn; only the managers' commit propagation differs,
    so fewer messages for the same operations (a commit no longer costs an append and its answer)."""
    on, off = run_seed(3), run_seed(3, commit_broadcast=False)
    assert on.plan == off.plan and on.ok and off.ok
    assert off.messages < on.messages


@pytest.mark.parametrize("plant", sorted(PLANTED_FIRST_SEEDS))
def test_each_planted_bug_is_caught_on_its_known_seeds(plant: str) -> None:
    seeds = PLANTED_FIRST_SEEDS[plant]
    assert seeds, f"no detecting seed recorded for {plant}"
    for seed in seeds:
        result = run_seed(seed, node_class=PLANTED_BUGS[plant], plant=plant)
        assert not result.ok, f"{plant} is no longer caught on seed {seed}"
        assert result.violation and result.trace


def test_cli_vopr_reports_the_seed_writes_the_full_trace_and_exits_1(tmp_path: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    plant = "leader-keeps-term"
    seed = PLANTED_FIRST_SEEDS[plant][0]
    assert main(["vopr", "--seed", str(seed), "--plant", plant, "--no-progress", "--trace-dir", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert f"seed {seed} FAILED" in out and f"novacron vopr --seed {seed} --plant {plant}" in out
    trace_file = tmp_path / f"seed-{seed}-swarm-{plant}.txt"
    assert f"full trace: {trace_file}" in out
    assert trace_file.read_text().count("\n") > 100
    assert main(["vopr", "--seeds", "2", "--first-seed", "7", "--no-progress"]) == 0
    assert "2 seeds passed" in capsys.readouterr().out
    assert main(["vopr", "--seeds", "1", "--plant", "nonsense", "--no-progress"]) == 2


# -- the checkers --------------------------------------------------------------------------------------


def _leader(node_id: int, term: int, entries: list[Entry], commit: int = 0) -> RaftNode:
    stored = Stored(HardState(term, node_id, commit), Snapshot(0, 0, (1, 2, 3)), entries)
    node = RaftNode(RaftConfig(node_id=node_id), Random(node_id), stored)
    node.role = LEADER
    return node


def test_leader_completeness_is_exact_for_a_leader_elected_before_the_commit() -> None:
    """A leader of term 3 elected without entry 2; afterwards the leader of term 2 commits it.
    The first-observer bound missed this (the entry was registered after the election)."""
    checker = SafetyChecker()
    checker.check(_leader(1, 3, [Entry(1, 1)]))
    with pytest.raises(SafetyViolation, match="Leader Completeness"):
        checker.check(_leader(2, 2, [Entry(1, 1), Entry(2, 2)], commit=2))


def test_state_machines_are_compared_at_every_index_and_applied_without_gaps() -> None:
    checker = SafetyChecker(check_gaps=True)
    checker.check_applied(1, Entry(1, 1), b"x=1")
    with pytest.raises(SafetyViolation, match="state machine after applying 1"):
        checker.check_applied(2, Entry(1, 1), b"x=2")
    with pytest.raises(SafetyViolation, match="gap"):
        checker.check_applied(1, Entry(3, 1), b"x=1")
    checker.installed_snapshot(3, 5)
    checker.check_applied(3, Entry(6, 1), b"y")
    checker.forget_node(3)
    checker.check_applied(3, Entry(4, 1), b"z", base_index=3)


def test_linearizability_over_budget_is_unknown_not_linearizable() -> None:
    ops = [Operation(c, "k", PUT, f"v{c}", 0.0, 10.0) for c in range(12)]
    ops += [Operation(100 + c, "k", GET, f"v{c}", 10.5, 11.0 + c) for c in range(12)]
    assert not check_history(ops).ok  # a value cannot come back after another was read
    stuck = check_history([*ops[:12], Operation(99, "k", GET, "v3", 10.5, 11.0)], budget=5)
    assert stuck.ok and stuck.unknown_keys == ("k",) and stuck.verdict == "unknown"
    assert check_history([*ops[:12], Operation(99, "k", GET, "v3", 10.5, 11.0)]).verdict == "linearizable"


@pytest.mark.parametrize("rates", [(0.5, 1.5, 1.0), (0.51, 1.44, 1.02), (1.5, 0.5, 1.0)])
def test_a_slow_clock_leader_is_not_deposed_by_fast_clock_followers_under_the_swarm_settings(
        rates: tuple[float, float, float]) -> None:
    """Vopr seed 76726 (swarm1): a leader at 0.51x heartbeats every 98 ms while a follower at 1.44x
    can time out 14 of its 6.9 ms ticks (97 ms) after the last one, so without PreVote it deposed a
    healthy leader every second or so, and a liveness check that fell on one of those moments
    failed. The swarm plan's settings keep Raft's timing requirement (section 5.6) for the clock
    rates it draws by shortening the heartbeat; a fault-free LAN then keeps its leader even when
    every follower drew the shortest timeout (node 7 of that seed had)."""
    plan = replace(SwarmPlan.draw(76726, version=1), managers=3, pre_vote=False, check_quorum=True,
                   clock_rates=(*rates, 1.0, 1.0, 1.0, 1.0))
    cluster = RaftCluster(plan.settings(), NetworkModel(PROFILES["lan"], Random(1)), Random(2))
    for node_id, manager in cluster.managers.items():
        manager.clock_rate = plan.clock_rates[node_id - 1]
    slowest = min(cluster.managers, key=lambda node_id: plan.clock_rates[node_id - 1])
    cluster.campaign(slowest)
    cluster.run_until(1.0)
    leader = cluster.leader()
    assert leader is not None and leader.id == slowest
    for manager in cluster.managers.values():  # the worst draw, which a follower keeps while it follows
        assert manager.node is not None
        manager.node.randomized_timeout = manager.node.config.election_ticks_min
    term = leader.term
    cluster.run_until(31.0)
    assert cluster.leader() is leader and leader.term == term, "a follower timed out under a healthy leader"


def test_the_swarm_heartbeat_meets_the_timing_requirement_for_every_clock_spread() -> None:
    raft = RaftConfig(node_id=1)
    assert heartbeat_ticks_under_skew((1.0,) * 7, raft) == raft.heartbeat_ticks
    for spread in [1 + i / 100 for i in range(201)]:
        heartbeat_ticks = heartbeat_ticks_under_skew((0.5, 0.5 * spread), raft)
        assert 1 <= heartbeat_ticks <= raft.heartbeat_ticks
        assert heartbeat_ticks * spread < raft.election_ticks_min - 1 or heartbeat_ticks == 1


def test_swarm_version_3_aims_half_the_partitions_at_the_leader_leaving_it_in_a_minority() -> None:
    """With 3 managers a random split leaves the leader alone a third of the time; version 3 aims
    half the partitions at it (alone, the only minority of 3), so about two thirds. A leader left
    in the majority is no aim at all (the first version 3 did that half the time with 3-4)."""
    plan = replace(SwarmPlan.draw(0), managers=3)
    network = plan.network(Random(1), None)
    faults = SwarmFaults(network, plan, Random(2), lambda line: None, lambda: None)
    cluster = RaftCluster(plan.settings(), network, Random(3), node_class=faults.node_class(RaftNode))
    faults.schedule(cluster)
    cluster.campaign(1)
    cluster.run_until(0.5)
    leader = cluster.leader()
    assert leader is not None
    alone = 0
    for _ in range(300):
        faults.partition()
        pairs = network.cuts.pop(max(network.cuts))
        alone += all(leader.id in pair for pair in pairs)
    assert 0.58 < alone / 300 < 0.75, f"the leader was alone on its side in {alone} of 300 partitions"

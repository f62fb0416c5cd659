"""The vopr: 300 seeds in CI, exact replay, and planted bugs that it must catch."""

from __future__ import annotations

import pytest

from novacron.app.cli import main
from sim.raft.planted_bugs import IgnoresElectionRestriction
from sim.raft.vopr import VoprPlan, run_seed

CI_SEEDS = 300


@pytest.mark.slow
def test_vopr_300_seeds_pass() -> None:
    failures = []
    for seed in range(CI_SEEDS):
        result = run_seed(seed)
        if not result.ok:
            failures.append(f"seed {seed}: {result.violation}\n  " + "\n  ".join(result.trace))
    assert not failures, "replay with: novacron vopr --seed S\n" + "\n".join(failures[:3])


def test_a_seed_replays_exactly() -> None:
    first, second = run_seed(42), run_seed(42)
    assert (first.steps, first.messages, first.operations, first.trace) == (
        second.steps, second.messages, second.operations, second.trace)
    assert first.steps > 1000 and first.operations > 0


def test_seeds_draw_different_clusters_and_fault_rates() -> None:
    plans = [VoprPlan.draw(seed) for seed in range(50)]
    assert {p.managers for p in plans} == {3, 4, 5, 6, 7}
    assert len({p.loss for p in plans}) > 10 and len({p.crash_rate_s for p in plans}) > 10


@pytest.fixture(scope="module")
def planted_failure_seed() -> int:
    """The first seed on which a node that ignores section 5.4.1 is caught."""
    seed = next((s for s in range(120) if not run_seed(s, node_class=IgnoresElectionRestriction).ok), None)
    assert seed is not None, "a node that ignores the election restriction must be caught within 120 seeds"
    return seed


def test_the_vopr_catches_a_planted_election_restriction_bug(planted_failure_seed: int) -> None:
    result = run_seed(planted_failure_seed, node_class=IgnoresElectionRestriction)
    assert not result.ok and result.violation and result.trace


def test_cli_vopr_reports_the_seed_and_exits_1_on_a_violation(planted_failure_seed: int,
                                                              capsys: pytest.CaptureFixture[str]) -> None:
    seed = planted_failure_seed
    assert main(["vopr", "--seed", str(seed), "--plant", "no-election-restriction", "--no-progress"]) == 1
    out = capsys.readouterr().out
    assert f"seed {seed} FAILED" in out and f"novacron vopr --seed {seed}" in out
    assert main(["vopr", "--seeds", "3", "--first-seed", "7", "--no-progress"]) == 0
    assert "3 seeds passed" in capsys.readouterr().out


@pytest.mark.parametrize("seed", [8299])
def test_seeds_that_once_failed_pass(seed: int) -> None:
    """8299: InstallSnapshot left a deposed leader's stale suffix in storage; a restart revived it."""
    result = run_seed(seed)
    assert result.ok, f"seed {seed}: {result.violation}"

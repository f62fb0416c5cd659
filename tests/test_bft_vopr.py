"""The Byzantine vopr: CI seeds, exact replay, planted bugs it must catch, plans that cover every
fault kind, and the command line's exit codes."""

from __future__ import annotations

from pathlib import Path

import pytest

from novacron.app.cli import main
from sim.bft.byzantine import BYZANTINE_KINDS
from sim.bft.planted_bugs import PLANTED_BUGS
from sim.bft.vopr import NETWORK_KINDS, BftPlan, run_seed

CI_SEEDS = 200
# Seeds on which each planted bug is caught, from `novacron bft-vopr --plant NAME --seeds 100`
# (benchmarks/RESULTS_bft.md). Runs are deterministic, so each must fail every time: a change
# that loses one of them loses the bug there.
PLANTED_SEEDS: dict[str, tuple[int, ...]] = {
    "accept-unsigned": (19, 20),
    "quorum-2f": (10, 20),
    "new-view-drops-prepared": (0,),
}
# Seeds outside range(CI_SEEDS) that once failed, with the plan each was found with (a seed
# replays only while BftPlan.draw draws that plan; a drift would silently retire it).
REGRESSION_SEEDS: dict[int, str] = {
    # Both: laggards kept stale watermarks after a NEW-VIEW with a higher stable checkpoint (replica.py, _install).
    2923: "5 replicas (f=1), lan, faults [crash,partition,duplication,loss,clock] for 4.4 s, byzantine [4] "
          "[equivocate,conflicting-votes,silence,delay-view-change,spurious-view-change] lie=0.63 "
          "silent_to=[2, 3, 4] checkpoint_every=2 batch=4 signatures=simulated",
    5405: "5 replicas (f=1), lan, faults [loss,clock] for 3.6 s, byzantine [2] [equivocate,replay,silence] "
          "lie=0.40 silent_to=[1, 2, 3, 4] checkpoint_every=2 batch=1 signatures=simulated",
    # A VIEW-CHANGE for a later view did not count toward starting the view-change timer (replica.py, tick).
    3010: "4 replicas (f=1), lan, faults [partition,primary-cut,pause,duplication,loss,jitter] for 4.0 s, "
          "byzantine [2] [equivocate,silence,delay-view-change] lie=0.21 silent_to=[3, 4] checkpoint_every=4 "
          "batch=4 signatures=simulated",
    6482: "4 replicas (f=1), wan80, faults [crash,partition,primary-cut,pause,clock] for 3.6 s, byzantine [2] "
          "[equivocate,forge,replay,silence] lie=0.44 silent_to=[2, 3, 4] checkpoint_every=8 batch=4 "
          "signatures=simulated",
}


@pytest.mark.parametrize("seed", sorted(REGRESSION_SEEDS))
def test_bft_vopr_regression_seeds_pass(seed: int) -> None:
    result = run_seed(seed)
    assert result.plan.describe() == REGRESSION_SEEDS[seed], f"seed {seed} draws another plan now"
    assert result.ok, f"seed {seed}: {result.violation}\n" + "\n".join(result.trace) + \
        f"\nreplay: {result.replay_command()}"


@pytest.mark.slow
def test_bft_vopr_ci_seeds_pass() -> None:
    for seed in range(CI_SEEDS):
        result = run_seed(seed)
        assert result.ok, f"seed {seed}: {result.violation}\n" + "\n".join(result.trace) + \
            f"\nreplay: {result.replay_command()}"


def test_a_seed_replays_exactly() -> None:
    first, again = run_seed(7), run_seed(7)
    assert (first.steps, first.executions, first.completed, first.rejected) == \
        (again.steps, again.executions, again.completed, again.rejected)
    assert first.trace == again.trace


@pytest.mark.parametrize("plant", sorted(PLANTED_BUGS))
def test_each_planted_bug_is_caught_on_its_known_seeds(plant: str) -> None:
    for seed in PLANTED_SEEDS[plant]:
        result = run_seed(seed, replica_class=PLANTED_BUGS[plant], plant=plant)
        assert not result.ok, f"planted bug {plant} no longer caught on seed {seed}"
        assert result.violation is not None and "Agreement" in result.violation
        assert result.replay_command() == f"novacron bft-vopr --seed {seed} --plant {plant}"


def test_the_correct_replica_passes_the_seeds_that_catch_the_planted_bugs() -> None:
    for seed in sorted({s for seeds in PLANTED_SEEDS.values() for s in seeds}):
        assert run_seed(seed).ok


def test_plans_cover_every_size_fault_kind_and_byzantine_kind() -> None:
    plans = [BftPlan.draw(seed) for seed in range(300)]
    assert {p.replicas for p in plans} == {4, 5, 6, 7}
    assert set(NETWORK_KINDS) <= set().union(*(p.kinds for p in plans))
    assert set(BYZANTINE_KINDS) <= set().union(*(p.byzantine_kinds for p in plans))
    assert all(len(p.byzantine) <= p.faulty for p in plans), "never more than f Byzantine replicas"
    assert any(1 in p.byzantine for p in plans) and any(p.byzantine and 1 not in p.byzantine for p in plans)


def test_forgeries_are_sent_and_every_one_is_rejected() -> None:
    seed = next(s for s in range(100) if "forge" in BftPlan.draw(s).byzantine_kinds)
    result = run_seed(seed)
    assert result.ok and result.forged > 0 and result.rejected >= result.forged // 2


def test_cli_reports_the_seed_writes_the_full_trace_and_exits_1(tmp_path: Path,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["bft-vopr", "--seeds", "2", "--first-seed", "3", "--no-progress"]) == 0
    assert "2 seeds passed" in capsys.readouterr().out
    assert main(["bft-vopr", "--seed", "10", "--plant", "quorum-2f", "--no-progress",
                 "--trace-dir", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "seed 10 FAILED" in out and "replay: novacron bft-vopr --seed 10 --plant quorum-2f" in out
    assert (tmp_path / "bft-seed-10-quorum-2f.txt").read_text().startswith("seed 10: Agreement")
    for bad in (["--plant", "nonsense"], ["--signatures", "rsa"], ["--seeds", "0"], ["--seed", "-1"]):
        assert main(["bft-vopr", *bad, "--no-progress"]) == 2
        assert "allowed" in capsys.readouterr().err

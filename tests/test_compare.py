"""``novacron compare``: two simulated runs of one scenario (two calibration profiles, two seeds)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from novacron.app.analysis import load_run
from novacron.app.cli import main
from novacron.app.compare import compare_runs, load_pair, relative_difference
from tests.scenario_snippets import CACHE_AND_RAFT_OFF

SMALL = """
name = "compare-small"
duration_s = 900.0
[cluster]
hosts = 4
[workload]
vms = 12
arrival_window_s = 60.0
""" + CACHE_AND_RAFT_OFF + """[migration]
migrations = 6
start_s = 120.0
request_window_s = 120.0
calibration = "{calibration}"
"""


def _run(tmp_path: Path, name: str, seed: int = 7, calibration: str = "lab-tcg", extra: str = "") -> Path:
    scenario = tmp_path / f"{name}.toml"
    scenario.write_text(SMALL.format(calibration=calibration) + extra)
    out = tmp_path / name
    assert main(["run", str(scenario), "--seed", str(seed), "--out", str(out), "--no-progress"]) == 0
    return out


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    base = tmp_path_factory.mktemp("compare")
    return (_run(base, "tcg"), _run(base, "md", calibration="lab-md"),
            _run(base, "strict", extra='[targets]\n"cluster.peak_cpu_pct" = 0.001\n'))


def test_two_calibrations_match_every_migration_by_vm_and_agree(runs: tuple[Path, Path, Path], tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    tcg, md, _ = runs
    plot = tmp_path / "cmp.png"
    assert main(["compare", str(tcg), str(md), "--json", "--plot", str(plot)]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["verdicts_agree"] and out["disagreements"] == [] and out["scenario"] == "compare-small"
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    a, b = load_run(tcg), load_run(md)
    # same seed: the same VMs migrate; the profile changes how long each takes
    assert len(out["migrations"]) == len(a.of_type("MigrationFinished")) == len(b.of_type("MigrationFinished")) > 0
    row = out["migrations"][0]
    assert row["total_time_ms_a"] != row["total_time_ms_b"]
    assert row["total_time_rel_diff"] == pytest.approx((row["total_time_ms_b"] - row["total_time_ms_a"])
                                                       / row["total_time_ms_a"])
    metrics = {m["metric"]: m for m in out["metrics"]}
    assert set(metrics) == set(a.metrics) | set(b.metrics)
    assert {v["target"] for v in out["verdicts"]} == {r.target.name for r in a.verdict.results}


def test_a_disagreeing_verdict_exits_1_and_is_named(runs: tuple[Path, Path, Path],
                                                   capsys: pytest.CaptureFixture[str]) -> None:
    tcg, _, strict = runs
    assert main(["compare", str(tcg), str(strict), "--no-plot"]) == 1
    text = capsys.readouterr().out
    assert "DISAGREE  peak CPU utilisation: A pass, B fail" in text
    assert text.rstrip().endswith("verdicts disagree: peak CPU utilisation")


def test_two_seeds_compare_and_relative_differences_are_b_from_a(tmp_path: Path) -> None:
    a, b = _run(tmp_path, "s1", seed=1), _run(tmp_path, "s2", seed=2)
    comparison = compare_runs(*load_pair(a, b))
    for row in comparison.metrics.to_dict(orient="records"):
        expected = relative_difference(row["a"], row["b"])
        assert math.isnan(row["rel_diff"]) if expected is None else row["rel_diff"] == expected, row
    assert relative_difference(100.0, 80.0) == pytest.approx(-0.2)
    assert relative_difference(0.0, 1.0) is None and relative_difference(None, 1.0) is None


def test_bad_input_is_one_line_and_exit_2(runs: tuple[Path, Path, Path], tmp_path: Path,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    tcg, _, _ = runs
    assert main(["compare", str(tmp_path / "nowhere"), str(tcg)]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "RUN_A" in err and "nowhere" in err
    other = tmp_path / "other.toml"
    other.write_text(SMALL.format(calibration="lab-tcg").replace('name = "compare-small"', 'name = "elsewhere"'))
    assert main(["run", str(other), "--out", str(tmp_path / "other"), "--no-progress"]) == 0
    assert main(["compare", str(tcg), str(tmp_path / "other"), "--no-plot"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "'compare-small'" in err and "'elsewhere'" in err

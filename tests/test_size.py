"""`novacron size`: the search against brute force, on synthetic pass rates and on a real sweep."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from novacron.app.cli import main
from novacron.app.size import Probe, needed_passes, search
from sim.sweep import build_grid, run_sweep
from tests.scenario_snippets import ONLY_PLACEMENT

SMALL = """
name = "small-size"
duration_s = 600.0
[cluster]
hosts = 3
host_cpu_cores = 16
host_memory_gib = 64.0
[workload]
vms = 24
vm_cpu_cores = [2, 4]
vm_memory_gib = [4.0, 8.0]
arrival_window_s = 120.0
[faults]
enabled = false
""" + ONLY_PLACEMENT


def brute_force(passes: dict[int, int], needed: int, high: int) -> int | None:
    """The smallest value from which every value up to ``high`` passes."""
    answer = None
    for value in range(high, 0, -1):
        if passes[value] < needed:
            break
        answer = value
    return answer


@settings(max_examples=300, deadline=None)
@given(thresholds=st.lists(st.integers(1, 300), min_size=1, max_size=12), start=st.integers(1, 400),
       confidence=st.sampled_from([0.5, 0.8, 0.95, 1.0]), screened=st.booleans(), width=st.integers(1, 4))
def test_search_matches_brute_force_on_monotone_seeds(thresholds: list[int], start: int, confidence: float,
                                                      screened: bool, width: int) -> None:
    """Each seed passes from its own threshold on; the answer is an order statistic of them."""
    high = 400
    needed = needed_passes(len(thresholds), confidence)
    probed: list[int] = []

    def probe(value: int) -> Probe:
        probed.append(value)
        passed = sum(value >= t for t in thresholds)
        return Probe(value, len(thresholds), passed, len(thresholds), needed,
                     Counter({"t": len(thresholds) - passed}))

    def screen(values: list[int]) -> dict[int, bool]:
        return {v: v >= thresholds[0] for v in values}

    result = search(probe, start=start, low=1, high=high, screen=screen if screened else None, screen_width=width)
    expected = brute_force({v: sum(v >= t for t in thresholds) for v in range(1, high + 1)}, needed, high)
    assert result.answer == expected
    assert len(probed) == len(set(probed)), "a value was probed twice"
    assert len(probed) <= 40


def test_size_answer_matches_a_brute_force_sweep(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scenario = tmp_path / "small.toml"
    scenario.write_text(SMALL)
    seeds, confidence, high = [7, 8, 9], 0.66, 8
    grid = build_grid(SMALL, "small", [("cluster.hosts", list(range(1, high + 1)))], seeds)
    table = run_sweep(SMALL, "small", grid, workers=2).table
    passes = table[table["verdict"] == "pass"].groupby("param.cluster.hosts").size()
    needed = needed_passes(len(seeds), confidence)
    expected = brute_force({v: int(passes.get(v, 0)) for v in range(1, high + 1)}, needed, high)
    assert expected is not None and expected > 1, "the scenario should need more than one host"

    out = tmp_path / "size"
    assert main(["size", str(scenario), "--param", "cluster.hosts", "--seeds", "3", "--confidence",
                 str(confidence), "--max", str(high), "--workers", "2", "--out", str(out), "--no-progress"]) == 0
    printed = capsys.readouterr().out
    assert f"answer: cluster.hosts = {expected}" in printed
    report = json.loads((out / "size.json").read_text())
    assert report["answer"] == expected and (out / "size.png").stat().st_size > 0
    assert "VMs rejected" in report["binding"]


@pytest.mark.parametrize("argv", [
    ["--param", "cluster.host_memory_gib"], ["--param", "cluster.nope"], ["--param", "nosection.x"],
    ["--param", "cluster.hosts", "--seeds", "0"], ["--param", "cluster.hosts", "--confidence", "1.5"],
    ["--param", "cluster.hosts", "--min", "9", "--max", "3"], ["--param", "cluster.hosts", "--workers", "0"],
])
def test_size_bad_arguments_are_usage_errors(argv: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["size", "scale-3", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("novacron: error:") and "\n" not in err

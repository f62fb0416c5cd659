"""The run pipeline end to end: scenario in, event log, summary, report and target table out."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from novacron.app.analysis import RunNotFound, load_run
from novacron.app.cli import main
from novacron.app.eventstore import event_log_sha256, read_events
from novacron.cluster.state import project
from novacron.scenario import loads_scenario
from sim.run import run_scenario, simulate

SMALL = """
name = "small"
duration_s = 1200.0
[cluster]
hosts = 4
[workload]
vms = 40
arrival_window_s = 300.0
"""


def test_same_seed_gives_the_same_event_log() -> None:
    scenario = loads_scenario(SMALL, origin="small")
    first = event_log_sha256(simulate(scenario, 11).log)
    assert event_log_sha256(simulate(scenario, 11).log) == first
    assert event_log_sha256(simulate(scenario, 12).log) != first


def test_run_directory_has_log_summary_and_report(tmp_path: Path) -> None:
    scenario = loads_scenario(SMALL, origin="small")
    result = run_scenario(scenario, 3, tmp_path, SMALL)
    for name in ("events.parquet", "summary.json", "report.html", "report.md", "utilisation.png",
                 "scenario.toml"):
        assert (tmp_path / name).is_file(), name
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["seed"] == 3
    assert summary["events_sha256"] == event_log_sha256(read_events(tmp_path / "events.parquet"))
    assert any(row["metric"] == "cluster.peak_cpu_pct" and row["verdict"] == "pass"
               for row in summary["targets"])
    assert result.summary == summary


def test_replaying_the_log_reproduces_the_projection(tmp_path: Path) -> None:
    scenario = loads_scenario(SMALL, origin="small")
    result = run_scenario(scenario, 5, tmp_path, SMALL, report=False)
    replayed = project(read_events(tmp_path / "events.parquet"))
    assert replayed == project(result.events)
    placed = result.summary["metrics"]["cluster.vms_placed"]
    assert len(replayed.placements()) == placed > 0


def test_load_run_gives_dataframes(tmp_path: Path) -> None:
    scenario = loads_scenario(SMALL, origin="small")
    run_scenario(scenario, 5, tmp_path, SMALL, report=False)
    run = load_run(tmp_path)
    placed = run.of_type("VMPlaced")
    assert set(placed.columns) >= {"t_s", "seq", "source", "vm_id", "host_id"}
    assert len(placed) == run.metrics["cluster.vms_placed"]
    assert run.seed == 5
    with pytest.raises(RunNotFound):
        load_run(tmp_path / "missing")


def test_cli_run_prints_seed_first_and_the_target_table(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--seed", "7", "--out", str(tmp_path / "a"), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].startswith("novacron run: seed 7")
    assert "peak CPU utilisation" in out
    assert main(["run", "--seed", "7", "--out", str(tmp_path / "b"), "--no-progress"]) == 0
    a = json.loads((tmp_path / "a" / "summary.json").read_text())["events_sha256"]
    b = json.loads((tmp_path / "b" / "summary.json").read_text())["events_sha256"]
    assert a == b


def test_cli_report_on_a_non_run_directory_is_a_usage_error(tmp_path: Path,
                                                            capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["report", str(tmp_path)]) == 2
    assert "not a NovaCron run directory" in capsys.readouterr().err


def test_cli_help_lists_commands(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ("run", "check", "report", "scenario", "targets", "size"):
        assert command in out

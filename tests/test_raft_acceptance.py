"""The issue's acceptance numbers, measured in simulated time (never wall-clock)."""

from __future__ import annotations

import json
from pathlib import Path

from novacron.app.cli import main
from sim.network import PROFILES
from sim.raft.experiments import (
    election_times_after_crash,
    fig16,
    formation_times,
    lan_settings,
    percentile,
)


def test_lan_five_managers_elect_within_targets_after_a_leader_crash() -> None:
    times_ms = election_times_after_crash(lan_settings(5), PROFILES["lan"], trials=200, seed=11)
    assert len(times_ms) == 200
    assert percentile(times_ms, 50) < 400, f"median {percentile(times_ms, 50):.0f} ms"
    assert percentile(times_ms, 99) < 1000, f"p99 {percentile(times_ms, 99):.0f} ms"


def test_formation_on_a_150ms_rtt_wan_is_under_30_s() -> None:
    times_s = formation_times(lan_settings(5), PROFILES["wan150"], trials=20, seed=5)
    assert max(times_s) < 30.0


def test_figure_16_shape_randomness_removes_the_split_vote_tail() -> None:
    results = fig16(trials=60, seed=2, ranges=((150, 150), (150, 300)))
    fixed, randomized = results["150-150ms"], results["150-300ms"]
    assert sum(t < 500 for t in randomized) / len(randomized) >= 0.95
    assert percentile(fixed, 90) > 2 * percentile(randomized, 90), "no randomness: a long split-vote tail"


def test_default_run_reports_raft_rows(tmp_path: Path) -> None:
    assert main(["run", "--out", str(tmp_path), "--no-progress"]) == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    rows = {row["metric"]: row for row in summary["targets"]}
    for metric in ("raft.formation_s", "raft.failover_ms", "raft.partition_recovery_s"):
        assert rows[metric]["verdict"] == "pass", rows[metric]
    settings = {row["metric"]: row["value"] for row in summary["settings"]}
    assert settings["raft.heartbeat_interval_ms"] == 50.0 and settings["raft.election_timeout_ms_range_ok"] == 1.0
    assert settings["raft.managers"] == 5 and settings["raft.formation_timeout_s"] == 120.0

"""Early stop (``sim.early_stop``): a run that ends once a required target failed for good gives
the full run's verdict; the monotone declarations (``novacron.slo.MONOTONE_METRICS``) hold on
real event logs, and a planted wrong declaration is caught."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from novacron.app.cli import main
from novacron.events import Event
from novacron.metrics import RUNNING_PEAKS, compute_metrics
from novacron.scenario import loads_scenario, scenario_targets
from novacron.slo import MONOTONE_METRICS, Comparator, Role, Target, Trend, early_stop_targets, fails_for_good
from sim.run import simulate, simulate_verdict_only
from sim.sweep import run_one
from tests.scenario_snippets import CACHE_AND_RAFT_OFF, ONLY_PLACEMENT

PLACEMENT = """
name = "early-stop"
duration_s = 7200.0
[cluster]
hosts = {hosts}
host_cpu_cores = 16
host_memory_gib = 64.0
[workload]
vms = 16
vm_cpu_cores = [1, 2, 4]
vm_memory_gib = [2.0, 4.0, 8.0]
arrival_window_s = 3600.0
demand_update_s = 300.0
diurnal_amplitude = 0.35
burst_probability = 0.05
[faults]
enabled = {faults}
host_mtbf_h = 4.0
host_mttr_h = 0.5
""" + ONLY_PLACEMENT + """[targets]
"cluster.peak_cpu_pct" = {cpu}
"cluster.peak_memory_pct" = {memory}
"""

MIGRATING = """
name = "early-stop-migrations"
duration_s = 3600.0
[cluster]
hosts = 6
[workload]
vms = 40
""" + CACHE_AND_RAFT_OFF + """[targets]
"migration.peak_running_global" = {running}
"""


def _text(hosts: int, cpu: int, memory: int, faults: bool) -> str:
    return PLACEMENT.format(hosts=hosts, cpu=cpu, memory=memory, faults=str(faults).lower())


@settings(max_examples=16, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hosts=st.integers(2, 8), seed=st.integers(1, 50), cpu=st.sampled_from([20, 30, 45, 90]),
       memory=st.sampled_from([15, 25, 35, 90]), faults=st.booleans())
def test_an_early_stopped_run_gives_the_full_runs_verdict(hosts: int, seed: int, cpu: int, memory: int,
                                                          faults: bool) -> None:
    text = _text(hosts, cpu, memory, faults)
    full = run_one(text, "t", (), seed, 0)
    early = run_one(text, "t", (), seed, 0, early_stop=True)
    assert full["status"] == early["status"] == "ok", (full["error"], early["error"])
    assert early["verdict"] == full["verdict"], f"seed {seed}: {early.get('early_stop')} vs {full['blocking']}"
    assert set(early["blocking"].split("; ")) <= set(full["blocking"].split("; "))
    if "early_stop" not in early:  # not stopped: the very same run
        assert early["events_sha256"] == full["events_sha256"]


@pytest.mark.parametrize("running", [1, 2, 100])
def test_early_stop_on_migration_peaks_keeps_the_verdict(running: int) -> None:
    text = MIGRATING.format(running=running)
    full = run_one(text, "t", (), 7, 0)
    early = run_one(text, "t", (), 7, 0, early_stop=True)
    assert early["verdict"] == full["verdict"]
    if running == 1:
        assert full["migration.peak_running_global"] > 1, "the batch should run migrations in parallel"
        assert str(early["early_stop"]).startswith("failed early at t_s=")


def test_a_stopped_run_says_when_and_does_less() -> None:
    scenario = loads_scenario(_text(2, 20, 30, False), origin="t")
    ctx, stop = simulate_verdict_only(scenario, 7, scenario_targets(scenario)[0])
    assert stop.stopped and stop.describe() == f"failed early at t_s={stop.failed_at_s:g}"
    assert stop.failed_at_s is not None and stop.failed_at_s < scenario.duration_s
    assert len(ctx.log) < len(simulate(scenario, 7).log)


def test_sweep_early_stop_flag_marks_the_stopped_rows(tmp_path: Path) -> None:
    scenario = tmp_path / "s.toml"
    scenario.write_text(_text(2, 20, 90, False))
    out = tmp_path / "sweep"
    assert main(["sweep", str(scenario), "--param", "cluster.hosts=2,8", "--early-stop", "--workers", "1",
                 "--out", str(out), "--no-progress"]) == 0
    table = pd.read_parquet(out / "sweep.parquet").set_index("param.cluster.hosts")
    assert str(table.loc[2, "early_stop"]).startswith("failed early at t_s=")
    assert table.loc[2, "verdict"] == "fail" and table.loc[2, "blocking"] == "peak CPU utilisation"


def test_running_peaks_end_equal_to_the_extractors() -> None:
    for text in (_text(3, 1000, 1000, True), MIGRATING.format(running=1000)):
        scenario = loads_scenario(text, origin="t")
        targets = scenario_targets(scenario)[0]
        ctx, stop = simulate_verdict_only(scenario, 11, targets)
        metrics = compute_metrics(ctx.log)
        assert not stop.stopped
        for metric, peak in stop.peaks.items():
            assert peak == pytest.approx(metrics[metric]), metric


def test_every_running_peak_is_declared_monotone_and_has_a_catalogue_trend() -> None:
    assert set(RUNNING_PEAKS) <= set(MONOTONE_METRICS)
    watched = early_stop_targets(scenario_targets(loads_scenario(_text(3, 80, 85, True), origin="t"))[0])
    assert {t.metric for t in watched} >= {"cluster.peak_cpu_pct", "cluster.peak_memory_pct"}


# --- the declarations themselves, on prefixes of real event logs --------------------------------------


def monotone_violations(events: Sequence[Event], trends: Mapping[str, Trend], checkpoints: int = 40) -> list[str]:
    """Metrics whose value over growing prefixes of ``events`` moves against the declared trend."""
    found: list[str] = []
    last: dict[str, float] = {}
    for k in range(1, checkpoints + 1):
        metrics = compute_metrics(events[: len(events) * k // checkpoints])
        for metric, trend in trends.items():
            value = metrics.get(metric)
            if value is None:
                continue
            before = last.get(metric)
            if before is not None and (value < before if trend is Trend.RISING else value > before):
                found.append(f"{metric}: {before:g} -> {value:g} at prefix {k}/{checkpoints}")
            last[metric] = value
    return found


@pytest.mark.parametrize("seed", [3, 7])
def test_the_declared_trends_hold_on_prefixes_of_real_runs(seed: int) -> None:
    for text in (_text(3, 80, 85, True), MIGRATING.format(running=10)):
        events = list(simulate(loads_scenario(text, origin="t"), seed).log)
        assert monotone_violations(events, MONOTONE_METRICS) == [], f"seed {seed}"


def test_a_planted_wrong_declaration_is_caught() -> None:
    """Uptime only falls as host failures take VM-time away, and a peak only rises: declared the other
    way round, the checker must object to both."""
    events = list(simulate(loads_scenario(_text(3, 80, 85, True), origin="t"), 7).log)
    planted = {"cluster.uptime_pct": Trend.RISING, "cluster.peak_cpu_pct": Trend.FALLING}
    found = monotone_violations(events, planted)
    assert {v.split(":")[0] for v in found} == set(planted), found


def test_only_a_comparator_against_the_trend_fails_for_good() -> None:
    peak = Target(name="peak", metric="cluster.peak_cpu_pct", unit="%", comparator=Comparator.LT, threshold=50.0,
                  source="test")
    assert fails_for_good(peak, 60.0) and not fails_for_good(peak, 40.0)
    assert not fails_for_good(replace(peak, comparator=Comparator.GT), 10.0), "a rising peak may still get above"
    assert not fails_for_good(replace(peak, comparator=Comparator.BETWEEN, threshold=(60.0, 70.0)), 10.0)
    assert not fails_for_good(replace(peak, role=Role.REFERENCE), 60.0), "reference figures never decide"
    assert not fails_for_good(replace(peak, metric="cluster.mean_cpu_pct"), 60.0), "not declared monotone"
    falling = {"cluster.peak_cpu_pct": Trend.FALLING}
    assert fails_for_good(replace(peak, comparator=Comparator.GE), 10.0, falling)
    assert not fails_for_good(peak, 60.0, falling)

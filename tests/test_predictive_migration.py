"""Predictive migration (issue 20, item 6a): the Holt forecaster, the planner, the simulated migrator."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from benchmarks.predictive_migration_compare import VariantRun, run_variant, scenario_for
from novacron.cluster.events import VMMoved
from novacron.cluster.predictive_migration import HoltForecaster, PredictionConfig, PredictiveMigrationPlanner
from novacron.migration.events import MigrationAdmitted
from novacron.scenario import Scenario, resolve_scenario
from sim.run import simulate


def short_scenario() -> Scenario:
    base, _ = resolve_scenario("predictive-migration")
    return dataclasses.replace(base, duration_s=86400.0)


def test_holt_forecasts_a_linear_series_exactly_and_needs_a_sample_first() -> None:
    holt = HoltForecaster(alpha=0.5, beta=0.5)
    with pytest.raises(ValueError, match="before any observation"):
        holt.forecast(1.0)
    for step in range(60):
        holt.observe(np.array([10.0 + 2.0 * step, 50.0]))
    assert holt.forecast(3.0) == pytest.approx([10.0 + 2.0 * 62, 50.0], abs=1e-6)


def _planner(**changes: float) -> PredictiveMigrationPlanner:
    return PredictiveMigrationPlanner(dataclasses.replace(PredictionConfig(migration=True, ceiling_pct=80.0),
                                                          **changes))  # type: ignore[arg-type]


def test_the_planner_moves_the_smallest_sufficient_vm_to_the_coolest_feasible_host() -> None:
    planner = _planner()
    forecast = np.array([100.0, 30.0, 20.0, 50.0])
    vms_on = {0: [("big", 8.0), ("mid", 4.0), ("small", 2.0)], 1: [], 2: [], 3: []}
    everywhere_but_2 = np.array([True, True, False, True])
    moves = planner.plan(now_s=0.0, forecast_pct=forecast, reserved_vcpus=np.array([16.0, 8.0, 8.0, 8.0]),
                         vms_on=vms_on, feasible=lambda _vm: everywhere_but_2, busy=set())
    # small (2/16 of 100 % = 12.5 pp) leaves 87.5 %: not enough; mid (25 pp) leaves 75 %
    assert [(m.vm_id, m.source, m.destination) for m in moves] == [("mid", 0, 1)]


def test_the_planner_leaves_hosts_under_the_ceiling_busy_hosts_and_recently_moved_vms_alone() -> None:
    planner = _planner(cooldown_s=600.0)
    forecast = np.array([95.0, 10.0])
    args = dict(forecast_pct=forecast, reserved_vcpus=np.array([8.0, 8.0]), vms_on={0: [("a", 4.0)], 1: []},
                feasible=lambda _vm: np.array([True, True]))
    assert planner.plan(now_s=0.0, busy={0}, **args) == []  # type: ignore[arg-type]
    assert len(planner.plan(now_s=0.0, busy=set(), **args)) == 1  # type: ignore[arg-type]
    assert planner.plan(now_s=300.0, busy=set(), **args) == []  # type: ignore[arg-type]  # cooling down
    cool = dict(args, forecast_pct=np.array([70.0, 10.0]))
    assert planner.plan(now_s=5000.0, busy=set(), **cool) == []  # type: ignore[arg-type]


def test_no_destination_is_pushed_over_the_ceiling() -> None:
    planner = _planner()
    moves = planner.plan(now_s=0.0, forecast_pct=np.array([120.0, 75.0]), reserved_vcpus=np.array([8.0, 8.0]),
                         vms_on={0: [("a", 4.0)]}, feasible=lambda _vm: np.array([True, True]), busy=set())
    assert moves == []  # a's 60 pp would take host 1 to 135 %


@pytest.fixture(scope="module")
def day_runs() -> dict[str, VariantRun]:
    base = short_scenario()
    return {variant: run_variant(variant, 7, base=base) for variant in ("none", "predictive")}


def test_predictive_migration_cuts_time_at_full_cpu_against_no_migration(day_runs: dict[str, VariantRun]) -> None:
    none, predictive = day_runs["none"], day_runs["predictive"]
    assert none.moves == 0 and predictive.moves > 0
    assert predictive.slatah_pct < 0.75 * none.slatah_pct


def test_predictive_moves_go_through_the_admission_queue() -> None:
    events = list(simulate(scenario_for("predictive", base=short_scenario()), 7).log)
    admitted = {e.vm_id for e in events if isinstance(e, MigrationAdmitted)}
    moved = [e.vm_id for e in events if isinstance(e, VMMoved)]
    assert moved and set(moved) <= admitted
    ids = {e.migration_id for e in events if isinstance(e, MigrationAdmitted)}
    assert all(i.startswith("mig-5") for i in ids)


def test_a_predictive_run_is_deterministic_by_seed() -> None:
    scenario = scenario_for("predictive", base=dataclasses.replace(short_scenario(), duration_s=21600.0))
    assert list(simulate(scenario, 7).log) == list(simulate(scenario, 7).log)

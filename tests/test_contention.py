"""CPU contention, SLA metrics (SLATAH, PDM, SLAV) and energy in the capacity model."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, note, settings
from hypothesis import strategies as st

from novacron.app.cli import main
from novacron.cluster.contention import pdm, share_cpu
from novacron.cluster.events import HostUtilisationSampled, PowerModelSet
from novacron.metrics import compute_metrics
from novacron.scenario import loads_scenario
from sim import Simulation
from tests.scenario_snippets import ONLY_PLACEMENT

OVERCOMMITTED = """
name = "overcommitted"
duration_s = 3600.0
[cluster]
hosts = 3
host_cpu_cores = 16
cpu_overcommit = 4.0
contention = "{policy}"
[workload]
vms = 40
vm_cpu_cores = [4]
vm_memory_gib = [4.0]
arrival_window_s = 60.0
mean_cpu_utilisation = 0.6
[faults]
enabled = false
"""

UNCONTENDED = """
name = "uncontended"
duration_s = 3601.0
[cluster]
hosts = 4
[workload]
vms = {vms}
arrival_window_s = 60.0
mean_cpu_utilisation = {utilisation}
[faults]
enabled = false
""" + ONLY_PLACEMENT


def run(text: str, seed: int = 3) -> Simulation:
    return Simulation(loads_scenario(text, origin="test.toml"), seed=seed).run()


# --- the sharing rule ----------------------------------------------------------------------------------

demands = st.lists(st.tuples(st.integers(0, 4), st.floats(0.0, 40.0), st.integers(1, 16)), min_size=1, max_size=60)


@settings(max_examples=200, deadline=None)
@given(vms=demands, capacities=st.lists(st.floats(0.5, 64.0), min_size=5, max_size=5),
       policy=st.sampled_from(["proportional", "shares"]))
def test_served_is_capped_by_capacity_and_by_demand_and_work_conserving(
        vms: list[tuple[int, float, int]], capacities: list[float], policy: str) -> None:
    host = np.array([h for h, _, _ in vms], dtype=np.int64)
    demand = np.array([d for _, d, _ in vms])
    weights = np.array([w for _, _, w in vms], dtype=np.float64)
    capacity = np.array(capacities)
    served = share_cpu(demand, host, capacity, policy=policy, weights=weights)
    note(f"served={served.tolist()}")
    per_host = np.bincount(host, weights=served, minlength=5)
    asked = np.bincount(host, weights=demand, minlength=5)
    assert np.all(served >= 0) and np.all(served <= demand + 1e-9)
    assert np.all(per_host <= capacity + 1e-9)
    # Work conserving: a host serves all its demand, or all its capacity (shares sum to capacity).
    np.testing.assert_allclose(per_host, np.minimum(asked, capacity), rtol=1e-9, atol=1e-9)


def test_shares_give_a_light_vm_all_it_asks_and_the_rest_by_weight() -> None:
    host = np.zeros(3, dtype=np.int64)
    capacity = np.array([8.0])
    demand = np.array([1.0, 8.0, 8.0])
    served = share_cpu(demand, host, capacity, policy="shares", weights=np.array([2.0, 1.0, 3.0]))
    np.testing.assert_allclose(served, [1.0, 7.0 / 4, 21.0 / 4])
    proportional = share_cpu(demand, host, capacity)
    np.testing.assert_allclose(proportional, demand * 8.0 / 17.0)


# --- the model ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("policy", ["proportional", "shares"])
def test_an_overcommitted_cluster_contends_and_reports_it(policy: str) -> None:
    sim = run(OVERCOMMITTED.format(policy=policy))
    m = sim.metrics()
    print({k: v for k, v in m.items() if k.startswith("cluster.")})
    assert m["cluster.peak_cpu_demand_pct"] > 100.0  # what used to be printed as "peak CPU 278 %"
    assert m["cluster.peak_cpu_pct"] <= 100.0 + 1e-9
    assert m["cluster.host_cpu_p99_pct"] <= 100.0 + 1e-9
    assert m["cluster.cpu_ready_p99_pct"] > 0.0 and m["cluster.unserved_cpu_pct"] > 0.0
    assert m["cluster.slatah_pct"] > 0.0
    if policy == "shares":  # max-min fair: a VM asking more than its share waits more than the mean
        host_means = [s.cpu_ready_pct for s in sim.ctx.log.of_type(HostUtilisationSampled)]
        assert m["cluster.cpu_ready_max_pct"] > max(host_means)
    for s in sim.ctx.log.of_type(HostUtilisationSampled):
        assert s.cpu_pct <= 100.0 + 1e-9
        # served + unserved == demand, in the recorded figures
        assert math.isclose(s.cpu_pct + s.cpu_demand_pct * s.cpu_ready_pct / 100.0, s.cpu_demand_pct,
                            rel_tol=1e-9, abs_tol=1e-9)
        assert math.isclose(s.cpu_pct, min(s.cpu_demand_pct, 100.0), rel_tol=1e-9, abs_tol=1e-9)
        # the most-waiting VM waits at least the host's mean; under proportional sharing exactly that
        assert s.cpu_ready_max_pct >= s.cpu_ready_pct - 1e-9
        if policy == "proportional":
            assert math.isclose(s.cpu_ready_max_pct, s.cpu_ready_pct, rel_tol=1e-9, abs_tol=1e-9)


def test_check_fails_an_overcommitted_cluster_naming_the_ready_target(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    scenario = tmp_path / "overcommitted.toml"
    scenario.write_text(OVERCOMMITTED.format(policy="proportional") + ONLY_PLACEMENT)
    assert main(["check", str(scenario), "--out", str(tmp_path / "run"), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "CPU ready p99 (contention) (cluster.cpu_ready_p99_pct)" in err


def test_an_uncontended_cluster_reports_no_ready_time_and_no_slatah() -> None:
    m = run(UNCONTENDED.format(vms=20, utilisation=0.5)).metrics()
    assert m["cluster.cpu_ready_p99_pct"] == 0.0 and m["cluster.cpu_ready_max_pct"] == 0.0
    assert m["cluster.unserved_cpu_pct"] == 0.0 and m["cluster.slatah_pct"] == 0.0
    assert m["cluster.peak_cpu_demand_pct"] == m["cluster.peak_cpu_pct"]


def test_the_energy_of_an_idle_cluster_is_hosts_x_idle_watts_x_hours_x_pue() -> None:
    # No VMs: every up host idles. Demand is sampled every 300 s; a 3601 s run records 12
    # samples per host, exactly one hour.
    m = run(UNCONTENDED.format(vms=0, utilisation=0.0)).metrics()
    assert m["cluster.energy_kwh"] == pytest.approx(4 * 175.0 * 1.0 * 1.5 / 1000.0, rel=1e-12)
    assert m["cluster.it_energy_kwh"] == pytest.approx(4 * 175.0 * 1.0 / 1000.0, rel=1e-12)


def test_a_power_table_is_interpolated_and_down_hosts_draw_nothing() -> None:
    table = "power_table_w = [100, 110, 120, 130, 140, 150, 160, 170, 180, 190, 200]\npue = 1.0\n"
    text = UNCONTENDED.format(vms=0, utilisation=0.0).replace("[cluster]\n", "[cluster]\n" + table)
    sim = run(text)
    samples = sim.ctx.log.of_type(HostUtilisationSampled)
    assert all(s.powered_on and s.cpu_pct == 0.0 for s in samples)
    assert sim.metrics()["cluster.energy_kwh"] == pytest.approx(4 * 100.0 / 1000.0, rel=1e-12)
    # A host at 35 % CPU for an hour draws 135 W (halfway between the 30 % and 40 % points), and a
    # down host draws nothing.
    events = [*sim.ctx.log.of_type(PowerModelSet),
              HostUtilisationSampled(t_s=3600.0, seq=1, source="h", host_id="h", cpu_pct=35.0, memory_pct=0.0,
                                     vms_running=1, cpu_demand_pct=35.0, cpu_ready_pct=0.0, cpu_ready_max_pct=0.0,
                                     powered_on=True),
              HostUtilisationSampled(t_s=3600.0, seq=2, source="g", host_id="g", cpu_pct=0.0, memory_pct=0.0,
                                     vms_running=0, cpu_demand_pct=0.0, cpu_ready_pct=0.0, cpu_ready_max_pct=0.0,
                                     powered_on=False)]
    assert compute_metrics(events)["cluster.energy_kwh"] == pytest.approx(0.135, rel=1e-12)


def test_slav_is_slatah_times_pdm_on_a_run_with_migrations() -> None:
    # Six hosts: still contended, with room for the default migration batch to move VMs.
    m = run(OVERCOMMITTED.format(policy="proportional").replace("hosts = 3", "hosts = 6"), seed=5).metrics()
    assert m["migration.completed"] > 0 and m["cluster.pdm_pct"] > 0.0 and m["cluster.slatah_pct"] > 0.0
    assert m["cluster.slav_pct"] == pytest.approx(m["cluster.slatah_pct"] * m["cluster.pdm_pct"] / 100.0,
                                                  rel=1e-12)


def test_pdm_is_ten_percent_of_migration_time_over_alive_time_averaged_over_vms() -> None:
    assert pdm(np.array([10.0, 0.0]), np.array([1000.0, 500.0])) == pytest.approx((0.1 * 10 / 1000 + 0) / 2)
    assert pdm(np.array([1.0]), np.array([0.0])) is None


def test_metrics_are_deterministic() -> None:
    text = OVERCOMMITTED.format(policy="shares")
    assert compute_metrics(run(text).ctx.log) == compute_metrics(run(text).ctx.log)


@pytest.mark.parametrize(("line", "field"), [("power_table_w = [1, 2]", "cluster.power_table_w"),
                                             ("power_peak_w = 100.0", "cluster.power_peak_w"),
                                             ('contention = "fair"', "cluster.contention")])
def test_bad_power_and_contention_settings_get_one_line_and_exit_2(
        tmp_path: Path, capsys: pytest.CaptureFixture[str], line: str, field: str) -> None:
    scenario = tmp_path / "bad.toml"
    scenario.write_text(f"[cluster]\n{line}\n")
    assert main(["check", str(scenario), "--out", str(tmp_path / "run"), "--no-progress"]) == 2
    err = capsys.readouterr().err.strip()
    assert field in err and "\n" not in err and "Traceback" not in err


def test_targets_can_use_the_sla_and_energy_metrics(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    targets = ('[targets]\n"cluster.slatah_pct" = { comparator = "<", threshold = 10, unit = "%" }\n'
               '"cluster.energy_kwh" = { comparator = "<", threshold = 1000, unit = "kWh" }\n'
               '"cluster.cpu_ready_p99_pct" = { threshold = 100 }\n')
    scenario = tmp_path / "overcommitted.toml"
    scenario.write_text(OVERCOMMITTED.format(policy="proportional") + ONLY_PLACEMENT + targets)
    assert main(["check", str(scenario), "--out", str(tmp_path / "run"), "--no-progress"]) == 1
    err = capsys.readouterr().err
    assert "(cluster.slatah_pct): measured 100 %, needs < 10 %" in err
    assert "cluster.energy_kwh" not in err and "cluster.cpu_ready_p99_pct" not in err

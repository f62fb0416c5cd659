"""Cluster autoscaling (issue 20, item 5): the core policies, the simulated autoscaler, the oracle.

The simulated runs use the built-in ``autoscale-diurnal`` scenario cut to a day and a half with
proportionally fewer VMs, so each run takes a few seconds.
"""

from __future__ import annotations

import dataclasses
import math

import pytest

from benchmarks.autoscale_compare import POLICIES, PolicyRun, run_policy, scenario_for
from novacron.cluster.autoscale_events import AutoscaleDecided, HostServiceChanged
from novacron.cluster.autoscaling import (
    AutoscaleConfig,
    Observation,
    OraclePolicy,
    SeasonalNaiveForecast,
    TargetTrackingPolicy,
    ThresholdPolicy,
    provisioning_violations,
)
from novacron.cluster.events import HostFailed, HostRecovered
from novacron.scenario import Scenario, resolve_scenario
from sim import Simulation, autoscaling
from sim.run import simulate

DAY_S = 86400.0


def observation(now_s: float, *, hosts: int, need_hosts: float, provisioning: int = 0,
                rejected_vcpus: float = 0.0) -> Observation:
    return Observation(now_s=now_s, hosts_in_service=hosts, hosts_provisioning=provisioning,
                       vcpus_allocated=need_hosts * 10.0, vcpus_per_host=10.0, cpu_used_cores=0.0,
                       cores_per_host=8.0, vcpus_rejected=rejected_vcpus)


def short_scenario() -> Scenario:
    base, _ = resolve_scenario("autoscale-diurnal")
    return dataclasses.replace(base, duration_s=1.5 * DAY_S,
                               workload=dataclasses.replace(base.workload, vms=2000, arrival_window_s=1.5 * DAY_S))


# --- the core policies ------------------------------------------------------------------------------


def test_target_tracking_follows_the_hpa_formula_and_its_tolerance() -> None:
    policy = TargetTrackingPolicy(AutoscaleConfig(policy="target", target_pct=50.0, stabilisation_s=0.0))
    # utilisation 80 % of 10 hosts against a 50 % target: ceil(10 * 0.8 / 0.5) = 16
    assert policy.desired_hosts(observation(0.0, hosts=10, need_hosts=8.0)) == 16
    # within the 10 % tolerance (ratio 1.08): no change
    assert policy.desired_hosts(observation(1.0, hosts=10, need_hosts=5.4)) == 10


def test_target_tracking_scales_down_only_after_the_stabilisation_window() -> None:
    policy = TargetTrackingPolicy(AutoscaleConfig(policy="target", target_pct=50.0, stabilisation_s=300.0))
    assert policy.desired_hosts(observation(0.0, hosts=10, need_hosts=5.0)) == 10
    assert policy.desired_hosts(observation(100.0, hosts=10, need_hosts=1.0)) == 10  # 2 recommended, held
    assert policy.desired_hosts(observation(400.0, hosts=10, need_hosts=1.0)) == 2


def test_threshold_policy_steps_out_on_rejections_and_in_once_per_cooldown() -> None:
    policy = ThresholdPolicy(AutoscaleConfig(policy="threshold", high_pct=80.0, low_pct=40.0, step_pct=20.0,
                                             cooldown_s=600.0))
    assert policy.desired_hosts(observation(0.0, hosts=10, need_hosts=6.0, rejected_vcpus=4.0)) == 12
    assert policy.desired_hosts(observation(300.0, hosts=10, need_hosts=2.0)) == 9
    assert policy.desired_hosts(observation(600.0, hosts=9, need_hosts=2.0)) == 9  # cooling down
    assert policy.desired_hosts(observation(900.0, hosts=9, need_hosts=2.0)) == 8


def test_seasonal_naive_forecast_sees_tomorrows_peak_coming() -> None:
    interval_s = 300.0
    model = SeasonalNaiveForecast(interval_s)
    steps_per_day = int(DAY_S / interval_s)

    def need(step: int) -> float:
        return 10.0 + 5.0 * math.sin(2 * math.pi * step / steps_per_day)

    for step in range(steps_per_day + steps_per_day // 4 - 12):  # an hour before day 2's peak
        model.observe(need(step))
    forecast = model.forecast(2 * 3600.0)
    assert forecast is not None and forecast == pytest.approx(15.0, abs=0.1)
    assert SeasonalNaiveForecast(interval_s).forecast(600.0) is None  # no season of history yet


def test_the_oracle_provisions_for_the_coming_peak_before_it_arrives() -> None:
    config = AutoscaleConfig(policy="oracle", target_pct=50.0, provisioning_delay_s=600.0, interval_s=300.0)
    oracle = OraclePolicy(config, future_need_hosts=lambda t0, t1: 9.0 if t1 >= 1000.0 else 1.0)
    assert oracle.desired_hosts(observation(0.0, hosts=2, need_hosts=1.0)) == 2
    assert oracle.desired_hosts(observation(200.0, hosts=2, need_hosts=1.0)) == 18  # 200 + 900 s of lead


# --- the simulated autoscaler ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def runs() -> dict[str, PolicyRun]:
    base = short_scenario()
    return {policy: run_policy(policy, 7, base=base) for policy in POLICIES}


def test_no_policy_beats_the_oracle_on_host_hours_and_sla_at_once(runs: dict[str, PolicyRun]) -> None:
    """At the same utilisation target, a policy that used fewer host-hours than the oracle paid
    for it in SLA (more rejected VMs or more SLATAH): nothing dominates the oracle."""
    oracle = runs["oracle"]
    for policy, run in runs.items():
        if policy == "oracle":
            continue
        dominates = (run.host_hours <= oracle.host_hours and run.vms_rejected <= oracle.vms_rejected
                     and run.slatah_pct <= oracle.slatah_pct)
        assert not dominates, f"{policy} dominates the oracle: {run} vs {oracle}"
    assert runs["static"].host_hours == pytest.approx(24 * 36.0)
    assert oracle.host_hours < 0.8 * runs["static"].host_hours


def test_the_oracle_rejects_no_more_vms_than_reactive_target_tracking(runs: dict[str, PolicyRun]) -> None:
    assert runs["oracle"].vms_rejected <= runs["target"].vms_rejected


def half_day() -> Scenario:
    """The first 12 hours: the cold start and the first morning ramp (hosts are provisioned)."""
    return dataclasses.replace(short_scenario(), duration_s=0.5 * DAY_S)


def test_a_run_keeps_the_provisioning_contract() -> None:
    scenario = scenario_for("target", base=half_day())
    ctx = simulate(scenario, 7)
    events = list(ctx.log)
    assert any(isinstance(e, HostServiceChanged) and e.reason == "provisioned" for e in events)
    assert provisioning_violations(events, scenario.autoscale.provisioning_delay_s) == []


class _DelayIgnored(autoscaling.Autoscaler):
    """Planted bug: a powered-on host takes VMs at once (the provisioning delay is ignored)."""

    def _scale_out(self, count: int) -> None:
        before = set(self.provisioning)
        super()._scale_out(count)
        for row in sorted(self.provisioning - before):
            self._provisioned(row)


def test_a_planted_ignored_provisioning_delay_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(autoscaling, "Autoscaler", _DelayIgnored)
    scenario = scenario_for("target", base=half_day())
    found = provisioning_violations(list(simulate(scenario, 7).log), scenario.autoscale.provisioning_delay_s)
    assert found and "joined 0 s after power-on" in found[0]


def test_an_autoscaled_run_is_deterministic_by_seed() -> None:
    scenario = scenario_for("predictive", base=dataclasses.replace(short_scenario(), duration_s=0.25 * DAY_S))
    first, second, other = (list(simulate(scenario, seed).log) for seed in (7, 7, 8))
    assert first == second
    assert first != other


def test_every_decision_is_logged_with_the_policy_and_the_need() -> None:
    scenario = scenario_for("threshold", base=dataclasses.replace(short_scenario(), duration_s=7200.0))
    # one decision every 300 s; the run ends before the one at t = 7200 s
    decisions = [e for e in simulate(scenario, 7).log if isinstance(e, AutoscaleDecided)]
    assert len(decisions) == 7200 // 300 - 1 and {d.policy for d in decisions} == {"threshold"}
    assert all(d.desired_hosts >= scenario.autoscale.min_hosts for d in decisions)


def test_the_oracle_needs_the_scheduler_placer() -> None:
    base = short_scenario()
    scenario = dataclasses.replace(scenario_for("oracle", base=base),
                                   scheduler=dataclasses.replace(base.scheduler, placer="first_fit"))
    with pytest.raises(ValueError, match=r"^autoscale\.policy needs the scheduler placer; allowed: scheduler\.placer"):
        simulate(scenario, 7)


def test_a_cordoned_host_that_recovers_from_a_crash_stays_out_of_service() -> None:
    """Regression: recovery used to mark the host up for placement, undoing the cordon."""
    sim = Simulation(scenario_for("target", base=short_scenario()), seed=7)
    scheduler = sim.ctx.services.scheduler
    assert scheduler is not None
    row = 20  # beyond initial_hosts: out of service from the start
    host_id = scheduler.table.host_ids[row]
    assert not scheduler.table.up[row]
    sim.ctx.recorder.emit(HostFailed, source=host_id, host_id=host_id, reason="test")
    sim.ctx.recorder.emit(HostRecovered, source=host_id, host_id=host_id)
    assert not scheduler.table.up[row]
    scheduler.set_in_service(row, True)
    assert scheduler.table.up[row]

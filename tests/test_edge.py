"""Edge services: the aggregated latency model against a per-request simulation, arrivals,
latency-aware placement, outages and failover, and the built-in ``edge`` scenario end to end."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from novacron.app.cli import main
from novacron.edge.arrivals import burst_fraction, interval_counts, mean_rate_ops_s
from novacron.edge.config import EdgeConfig, EdgeServiceConfig
from novacron.edge.placement import CLOUD, place_services
from novacron.edge.queueing import RHO_MAX, IntervalQueue, LatencyMixture, ServiceTime, erlang_c
from novacron.edge.service import SiteOutages, measure, site_outages
from novacron.metrics import compute_metrics
from novacron.scenario import resolve_scenario
from sim.edge import latency_budgets_ms, per_request_latencies_ms
from sim.run import simulate

WARMUP = 5_000


def model_percentile_ms(queue: IntervalQueue, q: float) -> float:
    mixture = LatencyMixture(queue.service, queue.horizon_ms())
    mixture.add(queue, 1.0, 0.0)
    return mixture.percentile_ms(q)


@pytest.mark.parametrize(("servers", "rho", "service"), [
    (1, 0.7, ServiceTime(1.0, 1.0, "exponential")),   # M/M/1: the model is exact
    (8, 0.8, ServiceTime(0.5, 1.0, "lognormal")),     # IoT-like: many small requests
    (4, 0.85, ServiceTime(2.0, 0.5, "lognormal")),    # few servers, heavily loaded, low variance
    (40, 0.85, ServiceTime(4.0, 0.8, "lognormal")),   # analytics-like
])
def test_aggregated_p95_matches_per_request_simulation_within_5_pct(servers: int, rho: float,
                                                                     service: ServiceTime) -> None:
    rate_ops_s = rho * servers * 1000.0 / service.mean_ms
    simulated = per_request_latencies_ms(rate_ops_s, servers, service, 300_000, np.random.default_rng(11))
    measured = float(np.percentile(simulated[WARMUP:], 95))
    modelled = model_percentile_ms(IntervalQueue(rate_ops_s, servers, service), 95)
    assert abs(modelled - measured) / measured < 0.05, (modelled, measured)


def test_mixture_of_intervals_matches_per_request_simulation_of_each() -> None:
    """Two intervals at different rates: the run's p95 is the mixture's, weighted by requests."""
    service, servers = ServiceTime(1.0, 0.8), 6
    rng = np.random.default_rng(5)
    mixture = LatencyMixture(service, 60.0)
    samples = []
    for rate_ops_s, requests in ((2000.0, 40_000), (5000.0, 100_000)):
        queue = IntervalQueue(rate_ops_s, servers, service)
        mixture.add(queue, float(requests), 3.0)
        samples.append(per_request_latencies_ms(rate_ops_s, servers, service, requests + WARMUP, rng)[WARMUP:] + 3.0)
    measured = float(np.percentile(np.concatenate(samples), 95))
    assert abs(mixture.percentile_ms(95) - measured) / measured < 0.05


def test_erlang_c_matches_closed_form_for_small_c() -> None:
    # M/M/1: P(wait) = rho; M/M/2 at a = 1: C = a^2 / (a^2 + (2 - a)(1 + a)) = 1/3.
    assert erlang_c(1, 0.6) == pytest.approx(0.6)
    assert erlang_c(2, 1.0) == pytest.approx(1.0 / 3.0)


def test_overload_sheds_beyond_capacity() -> None:
    config = EdgeConfig(enabled=True)
    svc = dataclasses.replace(config.iot, rate_ops_s=30_000.0)  # 15 Erlangs on 8 cores
    placement = place_services(config, {"iot": 10.0, "analytics": 45.0, "inference": 85.0},
                               np.random.default_rng(0))[0]
    counts = np.full(60, 30_000.0 * config.interval_s)
    result = measure(config, svc, placement, counts, SiteOutages.none(60))
    capacity_ops_s = svc.cores * 1000.0 / svc.service_ms
    assert result.throughput_ops_s == pytest.approx(RHO_MAX * capacity_ops_s)
    assert result.requests_shed == pytest.approx(result.requests_arrived - result.requests_served)
    assert result.requests_shed > 0


def test_mmpp_spends_its_stationary_share_bursting() -> None:
    fraction = burst_fraction(20_000, 10.0, calm_mean_s=300.0, burst_mean_s=30.0, rng=np.random.default_rng(3))
    assert fraction.min() >= 0.0 and fraction.max() <= 1.0
    assert fraction.mean() == pytest.approx(30.0 / 330.0, rel=0.1)
    svc = EdgeServiceConfig(arrival="mmpp", rate_ops_s=1000.0, burst_rate_factor=3.0)
    counts = interval_counts(svc, 20_000, 10.0, np.random.default_rng(4))
    assert counts.mean() / 10.0 == pytest.approx(mean_rate_ops_s(svc), rel=0.05)
    assert counts.std() > 3 * np.sqrt(counts.mean())  # burstier than Poisson


def test_trace_arrivals_repeat_the_trace() -> None:
    svc = EdgeServiceConfig(arrival="trace", rate_trace_ops_s=(100.0, 10_000.0))
    counts = interval_counts(svc, 4, 1.0, np.random.default_rng(0))
    assert counts[0] < 200 < 9000 < counts[1] and counts[2] < 200 < 9000 < counts[3]


def test_placement_gives_the_home_site_to_the_tightest_and_respects_capacity() -> None:
    config = resolve_scenario("edge")[0].edge
    budgets = {"iot": 10.0, "analytics": 45.0, "inference": 85.0}
    placed = {p.service: p for p in place_services(config, budgets, np.random.default_rng(0))}
    assert placed["iot"].site == "edge-0"
    assert placed["analytics"].site == "edge-1"  # less slack than inference: it gets the shared home
    assert placed["inference"].site == "edge-0"  # no room at home; the other edge site beats the cloud
    cores_used = {site: sum(getattr(config, s).cores for s, p in placed.items() if p.site == site)
                  for site in ("edge-0", "edge-1")}
    assert all(used <= config.site_cores for used in cores_used.values())
    far = dataclasses.replace(config, edge_edge_rtt_ms=60.0)
    assert {p.service: p.site for p in place_services(far, budgets, np.random.default_rng(0))}["inference"] == CLOUD


def test_unreachable_budget_still_places_where_fastest() -> None:
    config = EdgeConfig(enabled=True)
    placed = place_services(config, {"iot": 1.0, "analytics": 45.0, "inference": 85.0}, np.random.default_rng(0))
    iot = next(p for p in placed if p.service == "iot")
    assert iot.site == "edge-0" and iot.predicted_p95_ms > 1.0


def test_outages_cost_uptime_until_failover_then_cloud_latency() -> None:
    config = EdgeConfig(enabled=True, site_mtbf_h=2.0, site_mttr_h=0.5, failover_s=120.0)
    intervals = 8640  # a day of 10 s intervals
    outages = site_outages(config, intervals, np.random.default_rng(9))
    assert outages.unavailable.sum() > 0 and outages.failed_over.sum() > 0
    placement = place_services(config, {"iot": 10.0, "analytics": 45.0, "inference": 85.0},
                               np.random.default_rng(0))[0]
    counts = np.full(intervals, config.iot.rate_ops_s * config.interval_s)
    result = measure(config, config.iot, placement, counts, outages)
    assert result.uptime_pct == pytest.approx(100.0 * (1 - outages.unavailable.mean()))
    assert result.requests_unavailable == pytest.approx(float((counts * outages.unavailable).sum()))
    assert result.cloud_fraction == pytest.approx(outages.failed_over.sum() / (intervals - outages.unavailable.sum()),
                                                  rel=1e-6)
    instant = measure(dataclasses.replace(config, failover_s=0.0), config.iot, placement, counts,
                      site_outages(dataclasses.replace(config, failover_s=0.0), intervals, np.random.default_rng(9)))
    assert instant.uptime_pct == 100.0 and instant.response_p99_ms > result.response_p50_ms


def test_targets_override_the_placement_budget() -> None:
    scenario = resolve_scenario("edge")[0]
    assert latency_budgets_ms(scenario)["inference"] == 85.0
    text = resolve_scenario("edge")[1] + '\n[targets]\n"edge.inference.latency_p95_ms" = 200\n'
    from novacron.scenario import loads_scenario

    assert latency_budgets_ms(loads_scenario(text, origin="t"))["inference"] == 200.0


def test_edge_is_off_by_default_and_emits_nothing() -> None:
    scenario = dataclasses.replace(resolve_scenario("default")[0], duration_s=60.0)
    metrics = compute_metrics(list(simulate(scenario, 1).log))
    assert not any(name.startswith("edge.") for name in metrics)


def test_edge_run_prints_a_row_per_service_against_its_targets(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "edge", "--duration", "10m", "--out", str(tmp_path), "--no-progress"]) in (0, 1)
    out = capsys.readouterr().out
    table = out[out.index("edge services"):]
    for service, target in (("iot", "< 10 ms"), ("analytics", "<= 45 ms"), ("inference", "<= 85 ms")):
        row = next(line for line in table.splitlines() if line.startswith(service))
        assert f"({target} pass)" in row and "(>= 99 % pass)" in row
    report = (tmp_path / "report.html").read_text()
    assert "<h2>Edge services</h2>" in report and "iot" in report


def test_a_class_section_keeps_its_own_defaults_and_bad_values_are_one_line() -> None:
    from novacron.config import ConfigError
    from novacron.scenario import loads_scenario

    scenario = loads_scenario("[edge]\nenabled = true\n[edge.inference]\nrate_ops_s = 500.0\n", origin="s.toml")
    assert scenario.edge.inference.rate_ops_s == 500.0
    assert scenario.edge.inference.service_ms == EdgeConfig().inference.service_ms != EdgeServiceConfig().service_ms
    for text, needle in (("[edge.iot]\nhome_site = 5\n", "edge.iot.home_site = 5 is out of range"),
                         ("[edge.iot]\narrival = 'trace'\n", "rate_trace_ops_s"),
                         ("[edge.iot]\nrate_ops_s = -1.0\n", "edge.iot.rate_ops_s")):
        with pytest.raises(ConfigError) as caught:
            loads_scenario(text, origin="s.toml")
        message = str(caught.value)
        assert message.startswith("s.toml: ") and needle in message and "\n" not in message

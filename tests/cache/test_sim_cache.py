"""The simulated cache: deterministic per seed, survives an L2 outage, reports the target metrics."""

from __future__ import annotations

from novacron.cache.events import CacheStatsSampled, CacheTierFailed, CacheTierRecovered
from novacron.events import event_fields
from novacron.metrics import compute_metrics
from novacron.scenario import loads_scenario
from sim.run import simulate

SMALL = """
name = "cache-small"
duration_s = 400.0
[workload]
vms = 0
[cache]
keys = 5000
l1_capacity_items = 500
l2_capacity_items = 2000
requests_per_s = 100.0
active_s = 300.0
stats_interval_s = 30.0
"""


def run(extra: str = "", seed: int = 11, base: str = SMALL) -> tuple[list[object], dict[str, float]]:
    ctx = simulate(loads_scenario(base + extra, origin="test"), seed)
    events = list(ctx.log)
    metrics = compute_metrics(events)
    metrics.update(ctx.config_metrics)
    return events, metrics


def stats_rows(events: list[object]) -> list[dict[str, object]]:
    return [event_fields(e) for e in events if isinstance(e, CacheStatsSampled)]


def test_same_seed_same_cache_events_other_seed_differs() -> None:
    first, _ = run(seed=5)
    second, _ = run(seed=5)
    third, _ = run(seed=6)
    assert stats_rows(first) == stats_rows(second)
    assert stats_rows(first) != stats_rows(third)


def test_reports_hit_rates_and_config_metrics() -> None:
    _, metrics = run()
    for name in ("cache.overall.hit_rate_pct", "cache.l1.hit_rate_pct", "cache.l2.hit_rate_pct",
                 "cache.l3.hit_rate_pct"):
        assert 0.0 <= metrics[name] <= 100.0, name
    assert metrics["cache.l1.capacity_items"] == 500
    assert metrics["cache.l1.ttl_s"] == 300.0 and metrics["cache.l1.cleanup_interval_s"] == 30.0
    assert metrics["cache.overall.requests"] == metrics["cache.l1.requests"]
    latency = [metrics[f"cache.{tier}.latency_mean_ms"] for tier in ("l1", "l2", "l3")]
    assert latency == sorted(latency)


def test_l2_outage_is_survived_and_recovered() -> None:
    events, metrics = run("l2_outage_start_s = 100.0\nl2_outage_s = 50.0\n")
    failed = [e for e in events if isinstance(e, CacheTierFailed)]
    recovered = [e for e in events if isinstance(e, CacheTierRecovered)]
    assert [e.cache_tier for e in failed] == ["l2"] and [e.cache_tier for e in recovered] == ["l2"]
    assert 100.0 <= failed[0].t_s < 102.0
    assert 150.0 <= recovered[0].t_s <= 155.0
    assert metrics["cache.l2.failures"] > 0
    _, healthy = run()
    assert metrics["cache.overall.hit_rate_pct"] > 98.0, "L1 and L3 keep serving while L2 is down"
    assert metrics["cache.l3.requests"] > healthy["cache.l3.requests"]


def test_cold_start_hits_less_than_warm() -> None:
    _, warm = run()
    _, cold = run("warm_start = false\n")
    assert cold["cache.overall.hit_rate_pct"] < warm["cache.overall.hit_rate_pct"]


def test_adaptive_l1_resizes_towards_target() -> None:
    from novacron.cache.events import CacheTierResized

    events, _ = run("adaptive_l1 = true\n")
    resized = [e for e in events if isinstance(e, CacheTierResized)]
    assert resized, "a 500-item L1 over 5000 Zipf keys is below 85 % hits: it grows"
    assert all(r.cache_tier == "l1" for r in resized)
    assert resized[0].capacity_units > 500


def test_every_request_is_counted_even_when_requests_run_to_the_end() -> None:
    # Requests for longer than the run lasts, in batches that do not divide it.
    events, metrics = run("tick_s = 7.0\n", base=SMALL.replace("active_s = 300.0", "active_s = 1000.0"))
    assert metrics["cache.overall.requests"] > 0.9 * 100.0 * 400.0
    last = max(e.t_s for e in events if isinstance(e, CacheStatsSampled))
    assert last >= 400.0 - 7.0

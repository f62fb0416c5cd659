"""Background tier migration in low-usage periods: the planner, and its effect on a daily cycle."""

from __future__ import annotations

import pytest

from novacron.cache.events import CacheStatsSampled, CacheTiersMigrated
from novacron.cache.tiering import AccessHeat, TierMove, TierSpace, plan_moves
from novacron.config import ConfigError
from novacron.scenario import loads_scenario
from sim.run import simulate

PERIOD_S = 3600.0
DAILY = f"""
duration_s = {PERIOD_S + 900}
[workload]
vms = 2
[migration]
migrations = 0
[raft]
simulate_s = 0.0
[cache]
keys = 20000
l1_capacity_items = 1000
l1_ttl_s = 300.0
l2_capacity_items = 4000
l2_ttl_s = 900.0
requests_per_s = 20.0
active_s = {PERIOD_S + 900}
daily_period_s = {PERIOD_S}
quiet_rate_fraction = 0.04
stats_interval_s = 60.0
tier_migration_below_per_s = 5.0
tier_migration_budget_mib = 128.0
"""


def test_heat_halves_every_half_life() -> None:
    heat = AccessHeat(half_life_s=100.0)
    heat.observe(["a", "a", "b"], 0.0)
    assert heat.heat("a", 100.0) == pytest.approx(1.0) and heat.heat("b", 200.0) == pytest.approx(0.25)
    assert heat.heat("never", 5.0) == 0.0


def test_the_planner_swaps_only_hotter_keys_up_and_stops_at_the_budget() -> None:
    heats = {"h1": 9.0, "h2": 8.0, "c1": 1.0, "c2": 10.0, "l": 0.5}
    upper = TierSpace(keys=["c1", "c2"], free_objects=0)
    lower = TierSpace(keys=["h1", "h2", "c1", "l"], free_objects=10)
    moves = plan_moves([upper, lower], heats.__getitem__, object_bytes=10, budget_bytes=1000)
    # h1 displaces c1 (colder, already below: one copy); h2 would displace c2, which is hotter
    assert moves == [TierMove("c1", 0, 1), TierMove("h1", 1, 0)]
    assert plan_moves([upper, lower], heats.__getitem__, object_bytes=10, budget_bytes=9) == []


def test_tier_migration_with_write_back_is_refused() -> None:
    with pytest.raises(ConfigError, match=r"cache\.tier_migration = true with cache\.write_mode = 'back'"):
        loads_scenario('[cache]\ntier_migration = true\nwrite_mode = "back"\n', origin="t")


def upper_hit_rate(events: list[object], start_s: float, end_s: float) -> float:
    """L1 and L2 hits over all requests of the samples ending in (start_s, end_s]."""
    samples = [e for e in events if isinstance(e, CacheStatsSampled) and start_s < e.t_s <= end_s]
    hits = sum(e.cache_hits for e in samples if e.cache_tier in ("l1", "l2"))
    overall = [e for e in samples if e.cache_tier == "overall"]
    requests = sum(e.cache_hits + e.cache_misses for e in overall)
    return hits / requests


def run(migration: bool) -> list[object]:
    text = DAILY + f"tier_migration = {'true' if migration else 'false'}\n"
    return list(simulate(loads_scenario(text, origin="daily"), 3).log)


def test_migration_moves_nothing_when_busy_and_warms_the_next_busy_period() -> None:
    without, with_ = run(False), run(True)
    rounds = [e for e in with_ if isinstance(e, CacheTiersMigrated)]
    busy = [e for e in rounds if e.request_rate_per_s >= 5.0]
    assert busy and all(e.moved_up == e.moved_down == 0 for e in busy)
    assert sum(e.moved_up for e in rounds) > 0
    assert not [e for e in without if isinstance(e, CacheTiersMigrated)]
    # the first 15 minutes of the next busy period, after a quiet half-period of expiries
    before = upper_hit_rate(without, PERIOD_S, PERIOD_S + 900)
    after = upper_hit_rate(with_, PERIOD_S, PERIOD_S + 900)
    print(f"L1+L2 hit rate, first 15 min of the busy period: {before:.3f} without, {after:.3f} with migration")
    assert after > before + 0.03

"""The scheduler in the simulation: it replaces first fit, keeps the caps, and yields its metrics."""

from __future__ import annotations

from collections import Counter

import pytest

from novacron.app.eventstore import event_log_sha256
from novacron.cluster.events import HostUtilisationSampled, VMMoved, VMPlaced
from novacron.cluster.state import project
from novacron.metrics import compute_metrics
from novacron.scenario import builtin_scenario_text, loads_scenario
from novacron.scheduler.events import HostPowerChanged, PlacementDecided, RebalanceMoveRefused, RebalanceMoveStarted
from sim import Simulation
from sim.run import simulate

CONSOLIDATION = builtin_scenario_text("consolidation").replace("duration_s = 7200.0", "duration_s = 3000.0")


def test_default_scenario_is_placed_by_the_scheduler_with_headroom_kept() -> None:
    scenario = loads_scenario(builtin_scenario_text("default"), origin="default")
    ctx = simulate(scenario, 7)
    events = list(ctx.log)
    decided = [e for e in events if isinstance(e, PlacementDecided)]
    placed = [e for e in events if isinstance(e, VMPlaced)]
    assert len(decided) == len(placed) > 0
    metrics = compute_metrics(events) | ctx.config_metrics
    assert metrics["scheduler.min_headroom_cpu_pct"] >= 20.0
    assert metrics["scheduler.min_headroom_memory_pct"] >= 10.0
    assert metrics["scheduler.min_headroom_network_pct"] >= 30.0
    assert metrics["scheduler.min_headroom_io_pct"] >= 20.0
    assert metrics["scheduler.decision_cache_ttl_s"] == 120.0
    assert metrics["scheduler.hosts_used"] >= metrics["scheduler.hosts_lower_bound"] > 0
    assert 0 < metrics["scheduler.policy_eval_p99_ms"] < 10.0
    assert all(e.decision_ms > 0 for e in placed), "decision time is modelled, deterministic and positive"


def test_consolidation_moves_within_caps_and_powers_hosts_off() -> None:
    scenario = loads_scenario(CONSOLIDATION, origin="consolidation")
    ctx = simulate(scenario, 3)
    events = list(ctx.log)
    in_flight: dict[str, RebalanceMoveStarted] = {}
    for e in events:
        if isinstance(e, RebalanceMoveStarted):
            in_flight[e.vm_id] = e
            per_host = Counter(h for m in in_flight.values() for h in (m.from_host_id, m.host_id))
            assert len(in_flight) <= 10 and max(per_host.values()) <= 2, (e.t_s, per_host)
        elif (isinstance(e, VMMoved) and e.source == "rebalancer") or isinstance(e, RebalanceMoveRefused):
            in_flight.pop(e.vm_id, None)
    power = {e.host_id: e.powered_on for e in events if isinstance(e, HostPowerChanged)}
    powered_off = {h for h, on in power.items() if not on}
    assert powered_off
    state = project(events)
    assert all(not state.hosts[h].vms for h in powered_off), "a powered-off host still runs VMs"
    metrics = compute_metrics(events)
    assert metrics["scheduler.migrations"] > 0
    assert metrics["scheduler.hosts_used"] < scenario.cluster.hosts
    # A switched-off host draws no power: its samples say so until it is switched on again, and
    # the energy is below that of every host idling at least (the figure consolidation is for).
    off_since = {e.host_id: e.t_s for e in events if isinstance(e, HostPowerChanged) and not e.powered_on}
    later = [e for e in events if isinstance(e, HostUtilisationSampled) and e.host_id in off_since
             and e.t_s > off_since[e.host_id] and power[e.host_id] is False]
    assert later and not any(e.powered_on for e in later)
    hours = scenario.duration_s / 3600
    all_idle_kwh = scenario.cluster.hosts * scenario.cluster.power_idle_w * hours / 1000
    assert metrics["cluster.it_energy_kwh"] < all_idle_kwh


@pytest.mark.parametrize("placer", ["scheduler", "first_fit"])
def test_runs_are_reproducible_with_either_placer(placer: str) -> None:
    text = CONSOLIDATION.replace('[scheduler]', f'[scheduler]\nplacer = "{placer}"')
    scenario = loads_scenario(text, origin="consolidation")
    assert event_log_sha256(simulate(scenario, 5).log) == event_log_sha256(simulate(scenario, 5).log)


def test_the_scheduler_table_agrees_with_the_projection_of_the_log() -> None:
    """Rebalancer moves and the migration batch's moves both end up in the table where the
    event log (folded by ``project``) says the VMs are."""
    sim = Simulation(loads_scenario(CONSOLIDATION, origin="consolidation"), seed=7).run()
    ctx, sched = sim.ctx, sim.ctx.services.scheduler
    assert sched is not None
    state = project(list(ctx.log))
    assert any(isinstance(e, VMMoved) and e.source != "rebalancer" for e in ctx.log), "the batch moved VMs"
    for vm_id, placed in sched.vms.items():
        assert state.vms[vm_id].host_id == sched.table.host_ids[placed.row], vm_id

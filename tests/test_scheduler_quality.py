"""Placement quality measures and the scheduler.* metrics read from events."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from hypothesis import given, note
from hypothesis import strategies as st

from novacron.cluster.events import RunFinished, VMPlaced
from novacron.events import BASE_FIELDS
from novacron.metrics import compute_metrics
from novacron.scheduler.config import SchedulerConfig, build_scheduler
from novacron.scheduler.events import PlacementDecided, PlacementQualitySampled, RebalanceMoveStarted, RebalancePlanned
from novacron.scheduler.quality import PlacementQuality, hosts_lower_bound, measure, uniform_lower_bound
from novacron.scheduler.state import HostTable, PlacementRequest

HEADROOM = (0.2, 0.1, 0.3, 0.2)
SHAPES = [(1, 2.0, 0.1, 100.0), (8, 16.0, 0.5, 800.0), (16, 100.0, 1.0, 1000.0), (24, 32.0, 2.0, 3000.0)]


def test_lower_bound_is_the_ceiling_of_demand_over_usable_capacity() -> None:
    usable = np.tile(np.array([[100.0], [400.0], [10.0], [1000.0]]), (1, 20))
    assert hosts_lower_bound(np.array([250.0, 100.0, 1.0, 1.0]), usable) == 3
    assert hosts_lower_bound(np.array([10.0, 1000.0, 1.0, 1.0]), usable) == 3
    assert uniform_lower_bound(np.array([250.0, 1000.0, 1.0, 1.0]), usable[:, 0]) == 3
    assert hosts_lower_bound(np.zeros(4), usable) == 0
    mixed = usable.copy()
    mixed[:, 0] *= 3  # one big host covers what three small ones do
    assert hosts_lower_bound(np.array([250.0, 100.0, 1.0, 1.0]), mixed) == 1


@given(seed=st.integers(0, 2**32 - 1), vms=st.integers(0, 120), strategy=st.sampled_from(["spread", "pack"]))
def test_no_placement_beats_the_lower_bound_and_headroom_is_reported(seed: int, vms: int, strategy: str) -> None:
    note(f"seed={seed}")
    rng = np.random.default_rng(seed)
    table = HostTable.uniform(30, cpu=64, memory_gib=256, network_gbps=10, iops=20000)
    scheduler = build_scheduler(SchedulerConfig(strategy=strategy))  # type: ignore[arg-type]
    for n in range(vms):
        request = PlacementRequest(vm_id=f"vm-{n}", demand=SHAPES[int(rng.integers(len(SHAPES)))])
        decision = scheduler.place(table, request, rng)
        if decision.row is not None:
            table.allocate(decision.row, request)
    q = measure(table, HEADROOM, smallest=np.asarray(SHAPES[0]), reference=np.asarray(SHAPES[2]))
    assert q.hosts_used >= q.hosts_lower_bound
    assert q.min_headroom_cpu_pct >= 20.0 - 1e-6 and q.min_headroom_memory_pct >= 10.0 - 1e-6
    assert q.min_headroom_network_pct >= 30.0 - 1e-6 and q.min_headroom_io_pct >= 20.0 - 1e-6
    assert 0.0 <= q.fragmentation_pct <= 100.0 and 0.0 <= q.stranded_cpu_pct <= 100.0


def test_scheduler_metrics_from_events() -> None:
    def quality(t_s: float, used: int, headroom_cpu: float) -> PlacementQualitySampled:
        return PlacementQualitySampled(t_s=t_s, seq=0, source="s", hosts_used=used, hosts_lower_bound=4,
                                       fragmentation_pct=10.0, stranded_cpu_pct=1.0, stranded_memory_pct=2.0,
                                       imbalance_pct=3.0, min_headroom_cpu_pct=headroom_cpu,
                                       min_headroom_memory_pct=50.0, min_headroom_network_pct=60.0,
                                       min_headroom_io_pct=70.0)
    events = [
        PlacementDecided(t_s=1.0, seq=0, source="s", vm_id="a", host_id="h", hosts_feasible=3, policy_count=5,
                         cache_hit=False, decision_ms=0.5),
        PlacementDecided(t_s=2.0, seq=0, source="s", vm_id="b", host_id="h", hosts_feasible=1, policy_count=5,
                         cache_hit=True, decision_ms=0.03),
        VMPlaced(t_s=2.0, seq=0, source="s", vm_id="b", host_id="h", cpu_cores=2, memory_gib=4.0, decision_ms=0.03),
        quality(300.0, 6, 40.0), quality(600.0, 5, 25.0),
        RebalancePlanned(t_s=600.0, seq=0, source="r", rebalance_mode="balance", moves_planned=2,
                         imbalance_before_pct=9.0, imbalance_after_pct=4.0, hosts_to_power_off=0),
        RebalanceMoveStarted(t_s=600.0, seq=0, source="r", vm_id="a", from_host_id="h", host_id="g"),
        RebalanceMoveStarted(t_s=600.0, seq=0, source="r", vm_id="b", from_host_id="h", host_id="g"),
        RunFinished(t_s=1800.0, seq=0, source="sim", duration_s=1800.0),
    ]
    m = compute_metrics(events)
    assert m["scheduler.decision_cache_hit_rate_pct"] == 50.0
    assert m["scheduler.policy_eval_p99_ms"] == 0.5, "cache hits are not policy evaluations"
    assert m["scheduler.hosts_used"] == 5 and m["scheduler.hosts_lower_bound"] == 4
    assert m["scheduler.hosts_over_lower_bound_pct"] == pytest.approx(25.0)
    assert m["scheduler.min_headroom_cpu_pct"] == 25.0
    assert m["scheduler.migrations_per_hour"] == pytest.approx(4.0)
    empty = compute_metrics([e for e in events if not isinstance(e, VMPlaced)])
    assert not any(name.startswith("scheduler.min_headroom") for name in empty), (
        "hosts that carry no VM keep 100 % headroom whatever the scheduler does: not measured, not a pass")


def test_the_quality_event_is_the_measured_figures_slotted_after_the_base_fields() -> None:
    """One field list (``QualityFigures``) for the value and the event; the event keeps the
    base fields first (the golden event-log hash depends on field order) and stays slotted."""
    names = [f.name for f in dataclasses.fields(PlacementQualitySampled)]
    assert names == [*BASE_FIELDS, *(f.name for f in dataclasses.fields(PlacementQuality))]
    sample = PlacementQualitySampled(t_s=0.0, seq=0, source="s", **dataclasses.asdict(_some_quality()))
    assert not hasattr(sample, "__dict__")


def _some_quality() -> PlacementQuality:
    return PlacementQuality(hosts_used=3, hosts_lower_bound=2, fragmentation_pct=1.0, stranded_cpu_pct=0.0,
                            stranded_memory_pct=0.0, imbalance_pct=4.0, min_headroom_cpu_pct=10.0,
                            min_headroom_memory_pct=20.0, min_headroom_network_pct=30.0, min_headroom_io_pct=40.0)

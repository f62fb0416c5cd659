"""Node health in the scheduler and the rebalancer (``novacron.scheduler.health``): a failing host
gets no placement while a healthy one can take the VM, a host whose score drops is evacuated, and
the ``[scheduler]`` settings are checked."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from novacron.config import ConfigError, parse_section
from novacron.health import PRESSURE_POINTS
from novacron.scheduler import ConcurrencyCaps, HostTable, PlacementRequest, RebalanceConfig, SchedulerConfig
from novacron.scheduler.config import build_scheduler
from novacron.scheduler.evacuation import plan_evacuation
from novacron.scheduler.health import HostHealth
from novacron.scheduler.rebalance import PlacedVM, Placements

HOSTS = 6
SICK = 2


def table() -> HostTable:
    return HostTable.uniform(HOSTS, cpu=64, memory_gib=256, network_gbps=25, iops=50_000)


def request(k: int, cpu: float = 2.0, memory_gib: float = 4.0) -> PlacementRequest:
    return PlacementRequest(vm_id=f"vm-{k:03d}", demand=(cpu, memory_gib, 0.1, 200.0))


def health_with(sick_condition: float, *, row: int = SICK) -> HostHealth:
    health = HostHealth.all_healthy(HOSTS)
    health.record(row, score=sick_condition - PRESSURE_POINTS + 30.0, pressure=30.0)
    return health


def place_all(config: SchedulerConfig, health: HostHealth | None, vms: int = 60) -> list[int]:
    hosts, scheduler, rng = table(), build_scheduler(config, health), np.random.default_rng(1)
    rows = []
    for k in range(vms):
        decision = scheduler.place(hosts, request(k), rng)
        assert decision.row is not None
        hosts.allocate(decision.row, request(k))
        rows.append(decision.row)
    return rows


def test_an_unhealthy_host_gets_no_placement_while_a_healthy_host_can_take_the_vm() -> None:
    config = SchedulerConfig(health_min_score=70.0)
    assert SICK in place_all(SchedulerConfig(), None), "without health the host takes its share (spread)"
    assert SICK not in place_all(config, health_with(50.0))
    assert SICK in place_all(config, health_with(75.0)), "above the minimum it is a host like any other"


def test_the_health_filter_gives_way_when_no_healthy_host_can_take_the_vm() -> None:
    health = HostHealth.all_healthy(HOSTS)
    for row in range(HOSTS):
        health.record(row, score=40.0, pressure=30.0)
    health.record(SICK, score=20.0, pressure=30.0)
    rows = place_all(SchedulerConfig(health_min_score=70.0), health, vms=12)
    assert len(rows) == 12, "every VM still runs somewhere"


def test_a_busy_host_is_penalised_but_not_excluded() -> None:
    health = HostHealth.all_healthy(HOSTS)
    health.record(SICK, score=60.0, pressure=0.0)  # saturated CPU, sound hardware: condition 90
    config = SchedulerConfig(health_min_score=70.0, weight_health=5.0)
    hosts, scheduler = table(), build_scheduler(config, health)
    assert scheduler.feasible(hosts, request(0))[0][SICK], "load is the headroom filter's business"
    scores = scheduler.evaluate(hosts, request(0)).combined
    assert scores[SICK] < np.delete(scores, SICK).min()


def placed(hosts: HostTable, vms_per_host: int) -> Placements:
    placements = Placements()
    k = 0
    for row in range(HOSTS):
        for _ in range(vms_per_host):
            vm = request(k)
            placements.put(PlacedVM(vm, row, hosts.allocate(row, vm)))
            k += 1
    return placements


def evacuate(health: HostHealth, *, max_moves_per_host: int = 2) -> tuple[list[str], HostTable, Placements]:
    hosts = table()
    vms = placed(hosts, 3)
    config = RebalanceConfig(max_moves_per_host=max_moves_per_host, max_moves_total=10)
    scheduler = build_scheduler(SchedulerConfig(health_min_score=70.0), health)
    plan = plan_evacuation(hosts, vms, scheduler, ConcurrencyCaps(max_per_host=max_moves_per_host),
                           health=health, min_score=70.0, config=config, now_s=0.0)
    assert plan.mode == "evacuate"
    for move in plan.moves:
        assert move.source_host_id == hosts.host_ids[SICK]
        assert move.destination_host_id != hosts.host_ids[SICK]
    return [m.vm_id for m in plan.moves], hosts, vms


def test_a_host_whose_score_drops_is_evacuated_within_the_caps() -> None:
    moved, _, vms = evacuate(health_with(100.0))
    assert moved == [], "a healthy cluster moves nothing"
    moved, _, vms = evacuate(health_with(40.0), max_moves_per_host=3)
    assert sorted(moved) == vms.ids_on(SICK), "every VM of the failing host leaves"
    moved, _, _ = evacuate(health_with(40.0), max_moves_per_host=2)
    assert len(moved) == 2, "the per-host cap holds: the rest goes in the next wave"


def test_a_busy_but_sound_host_is_not_evacuated() -> None:
    health = HostHealth.all_healthy(HOSTS)
    health.record(SICK, score=60.0, pressure=0.0)  # saturated CPU, sound hardware: the rebalancer's business
    moved, _, _ = evacuate(health)
    assert moved == []


def test_evacuation_never_moves_a_vm_onto_another_failing_host() -> None:
    health = health_with(40.0)
    health.record(SICK + 1, score=50.0, pressure=30.0)
    hosts = table()
    vms = placed(hosts, 3)
    scheduler = build_scheduler(SchedulerConfig(health_min_score=70.0), health)
    plan = plan_evacuation(hosts, vms, scheduler, ConcurrencyCaps(max_per_host=4, max_total=20), health=health,
                           min_score=70.0, config=RebalanceConfig(max_moves_per_host=4, max_moves_total=20),
                           now_s=0.0)
    assert plan.moves
    assert all(m.destination_host_id not in (hosts.host_ids[SICK], hosts.host_ids[SICK + 1]) for m in plan.moves)
    assert plan.moves[0].source_host_id == hosts.host_ids[SICK], "the sickest host first"


def test_health_settings_are_validated_with_one_line_errors() -> None:
    with pytest.raises(ConfigError, match=r"^s.toml: scheduler: health_min_score = 60 .*placer = 'scheduler'"):
        parse_section(SchedulerConfig, {"placer": "first_fit", "health_min_score": 60}, origin="s.toml",
                      prefix="scheduler.")
    with pytest.raises(ConfigError, match="health_min_score"):
        parse_section(SchedulerConfig, {"health_min_score": 100}, origin="s.toml", prefix="scheduler.")
    with pytest.raises(ValueError, match="no host health scores"):
        build_scheduler(dataclasses.replace(SchedulerConfig(), weight_health=1.0))

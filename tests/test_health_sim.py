"""Node health in the simulation (``sim.health``): a host whose disk starts failing is evacuated
before it goes down, a less healthy Raft leader hands over to the healthiest manager and the
healthy one keeps leading, and a scenario without health settings records no health at all."""

from __future__ import annotations

import dataclasses
from collections.abc import Generator

import pytest
import simpy

from novacron import __version__
from novacron.anomaly.events import HostDevicesSampled
from novacron.cluster.events import HostFailed, NodeHealthScored, RunStarted, VMFailed
from novacron.config import ConfigError
from novacron.raft.events import LeadershipTransferRequested
from novacron.scenario import Scenario, loads_scenario, resolve_scenario
from sim.cluster_model import ClusterModel
from sim.context import SimContext
from sim.raft.control_plane import RaftControlPlane
from sim.run import compose

FAILING = "host-0003"
DISK_FAILS_S, HOST_DIES_S = 2 * 3600.0, 4 * 3600.0


def small(duration_s: float) -> Scenario:
    """``faults-small`` with room to move VMs (its 48 VMs fill the hosts)."""
    base = resolve_scenario("faults-small")[0]
    return dataclasses.replace(base, duration_s=duration_s, workload=dataclasses.replace(base.workload, vms=24))


def with_health(scenario: Scenario, min_score: float) -> Scenario:
    return dataclasses.replace(scenario, scheduler=dataclasses.replace(scenario.scheduler, health_min_score=min_score))


def start(scenario: Scenario, seed: int = 7) -> tuple[SimContext, list[object]]:
    ctx = SimContext.create(scenario, seed)
    ctx.recorder.emit(RunStarted, source="sim", scenario=scenario.name, seed=seed, runtime="sim", version=__version__)
    return ctx, compose(ctx)


def failing_part(ctx: SimContext, model: ClusterModel, part: str) -> Generator[simpy.Event, None, None]:
    """Device telemetry for every host; from ``DISK_FAILS_S`` ``FAILING``'s disk turns 10x slower
    (``part="disk"``) or its NIC retransmits 10 % of segments (``"nic"``), and the host dies at
    ``HOST_DIES_S`` (the health monitor reads the telemetry, not this)."""
    step_s = ctx.scenario.workload.demand_update_s
    while ctx.env.now + step_s <= HOST_DIES_S:
        yield ctx.env.timeout(step_s)
        for host_id in model.store.host_ids:
            failing = host_id == FAILING and ctx.env.now >= DISK_FAILS_S
            ctx.recorder.emit(HostDevicesSampled, source=host_id, host_id=host_id, memory_used_pct=30.0,
                              nic_retransmit_pct=10.0 if failing and part == "nic" else 0.05,
                              disk_latency_ms=15.0 if failing and part == "disk" else 1.5)
    model.fail_host(model.store.host_index[FAILING], f"{part} gave out")


def vms_failed_with_the_host(scenario: Scenario, part: str = "disk") -> tuple[int, list[NodeHealthScored]]:
    ctx, components = start(scenario)
    model = next(c for c in components if isinstance(c, ClusterModel))
    ctx.env.process(failing_part(ctx, model, part))
    ctx.env.run(until=scenario.duration_s)
    events = list(ctx.log)
    assert any(isinstance(e, HostFailed) and e.host_id == FAILING for e in events)
    failed = sum(isinstance(e, VMFailed) and e.host_id == FAILING for e in events)
    return failed, [e for e in events if isinstance(e, NodeHealthScored) and e.node_id == FAILING]


def test_a_host_whose_disk_starts_failing_is_evacuated_before_it_dies() -> None:
    scenario = small(HOST_DIES_S + 600.0)
    failed_without, scored = vms_failed_with_the_host(scenario)
    assert failed_without > 0 and not scored, "without health its VMs die with it, and nothing is scored"
    failed_with, scored = vms_failed_with_the_host(with_health(scenario, 80.0))
    assert failed_with == 0, f"{failed_with} VMs were still on {FAILING} when it died"
    before = [e.health_score for e in scored if e.t_s < DISK_FAILS_S]
    after = [e.reliability for e in scored if DISK_FAILS_S + 3600.0 <= e.t_s < HOST_DIES_S]
    assert min(before) > 90.0 and max(after) < 15.0, "the disk's errors are what lowered its score"


def test_a_host_whose_nic_degrades_is_evacuated_before_it_dies() -> None:
    scenario = small(HOST_DIES_S + 600.0)
    failed_without, _ = vms_failed_with_the_host(scenario, "nic")
    failed_with, scored = vms_failed_with_the_host(with_health(scenario, 90.0), "nic")
    assert failed_without > 0 and failed_with == 0, (failed_without, failed_with)
    during = [e.connectivity for e in scored if DISK_FAILS_S + 600.0 <= e.t_s < HOST_DIES_S]
    mean = sum(during) / len(during)
    assert 22.0 < mean < 30.0, f"about 19 % of heartbeats lost: 40 x 0.81^2 = 26 connectivity points, got {mean}"


def raft_scenario(duration_s: float) -> Scenario:
    base = small(duration_s)
    return dataclasses.replace(base, raft=dataclasses.replace(
        base.raft, control_plane="raft", network="lan", managers=3, leader_min_health=70.0,
        leader_health_margin=10.0))


def test_health_scores_do_not_keep_an_idle_raft_cluster_from_freezing() -> None:
    """Reading the leader on every score must not thaw the frozen cluster: a thaw without a poke
    left its clock behind, and the next input replayed every tick of the gap (2x CPU, seen)."""
    frozen_s = {}
    for scored in (False, True):
        ctx, _ = start(raft_scenario(6 * 3600.0))
        control = ctx.services.control
        assert isinstance(control, RaftControlPlane)
        if scored:
            for at_s in range(600, 6 * 3600, 300):
                ctx.env.process(scores_at(ctx, float(at_s), {f"manager-{k}": 100.0 for k in (1, 2, 3)}))
        ctx.env.run(until=6 * 3600.0)
        frozen_s[scored] = control.frozen_s
    assert frozen_s[True] == pytest.approx(frozen_s[False], rel=0.01), frozen_s


def manager_names(control: RaftControlPlane) -> dict[int, str]:
    managers = len(control.cluster.managers)
    return {control._node_of(f"manager-{k}"): f"manager-{k}" for k in range(1, managers + 1)}


def scores_at(ctx: SimContext, at_s: float, scores: dict[str, float]) -> Generator[simpy.Event, None, None]:
    yield ctx.env.timeout(at_s - ctx.env.now)
    for name, score in scores.items():
        ctx.recorder.emit(NodeHealthScored, source="test", node_id=name, health_score=score, connectivity=0.0,
                          pressure=30.0, reliability=0.0)


def test_leadership_moves_to_the_healthiest_manager_and_stays_with_a_healthy_one() -> None:
    ctx, _ = start(raft_scenario(1800.0))
    control = ctx.services.control
    assert isinstance(control, RaftControlPlane)
    ctx.env.run(until=300.0)
    first = control.cluster.leader()
    assert first is not None
    names = manager_names(control)
    healthiest, other = sorted(n for n in names if n != first.id)
    # The leader falls ill; the two others are healthy, one more so: leadership goes there.
    ctx.env.process(scores_at(ctx, 600.0, {names[first.id]: 50.0, names[healthiest]: 95.0, names[other]: 85.0}))
    ctx.env.run(until=900.0)
    leader = control.cluster.leader()
    assert leader is not None and leader.id == healthiest
    # A healthy leader keeps leading even when a peer scores higher; an ill one that recovered
    # does not take it back.
    ctx.env.process(scores_at(ctx, 1200.0, {names[healthiest]: 80.0, names[other]: 99.0, names[first.id]: 100.0}))
    ctx.env.run(until=1800.0)
    leader = control.cluster.leader()
    assert leader is not None and leader.id == healthiest
    transfers = [e for e in ctx.log if isinstance(e, LeadershipTransferRequested)]
    assert [(e.manager_id, e.target_id) for e in transfers] == [(first.id, healthiest)]


def test_without_health_settings_no_health_is_scored() -> None:
    ctx, _ = start(small(3600.0))
    ctx.env.run(until=3600.0)
    assert not any(isinstance(e, NodeHealthScored | LeadershipTransferRequested) for e in ctx.log)


def test_leadership_preference_without_a_raft_control_plane_is_refused_in_one_line() -> None:
    text = '[raft]\ncontrol_plane = "direct"\nleader_min_health = 70\n'
    with pytest.raises(ConfigError, match=r"^s\.toml: raft: leader_min_health = 70 needs control_plane = 'raft'"):
        loads_scenario(text, origin="s.toml")

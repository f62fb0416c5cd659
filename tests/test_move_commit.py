"""Moves claim their destination at start and commit through the control plane only from their source."""

from __future__ import annotations

from collections.abc import Iterable

import pytest

from novacron.cluster.events import VMFailed, VMMoved, VMPlaced, VMStopped
from novacron.events import Event
from novacron.scenario import loads_scenario
from sim import Simulation, cluster_model
from sim.workloads import VMSpec
from tests.test_capacity_model import _scenario_text, check_conservation, lagging


def _no_move_of_a_vm_that_is_not_running(log: Iterable[Event]) -> None:
    running: set[str] = set()
    for ev in log:
        if isinstance(ev, VMPlaced):
            running.add(ev.vm_id)
        elif isinstance(ev, VMStopped | VMFailed):
            running.discard(ev.vm_id)
        elif isinstance(ev, VMMoved):
            assert ev.vm_id in running, f"{ev.vm_id} moved at {ev.t_s:.0f} s while not running"


def _spec(vm_id: str, cpu: int) -> VMSpec:
    return VMSpec(vm_id=vm_id, arrival_s=1.0, cpu_cores=cpu, memory_gib=4.0, lifetime_s=None,
                  mean_cpu_utilisation=0.2, diurnal_amplitude=0.0, diurnal_phase_days=0.0,
                  burst_probability=0.0, io_intensity=0.0)


@pytest.mark.parametrize("lag_s", [0.0, 30.0])
def test_a_vm_that_stopped_during_its_migration_is_not_moved(lag_s: float) -> None:
    """The scheduler engineer's reproduction, made directed: the owner deletes a VM while its
    migration copies (lag 0), or while the commit is being decided (lag 30 s); the move must
    abort, give its claim back and record no ``VMMoved``."""
    text = _scenario_text(2, 0, 1e6, None, 1.0)
    sim = Simulation(loads_scenario(text, origin="x"), seed=1, control_plane=lagging(lag_s)).run(until_s=1.0)
    model, services = sim.model, sim.ctx.services
    assert model is not None
    model.request_vm(_spec("vm-a", 2))
    sim.run(until_s=2.0 + lag_s)
    store = services.allocations
    source = store.host_of("vm-a")
    assert source is not None
    claim = services.committer.claim("vm-a", store.host_ids[1 - source])
    assert claim is not None
    if lag_s == 0.0:
        model.depart(model.vms.index["vm-a"])
    outcome = services.committer.commit(claim, store.host_ids[source], mover="migration")
    if lag_s > 0.0:
        model.depart(model.vms.index["vm-a"])
    sim.run(until_s=10.0 + 2 * lag_s)
    assert outcome.triggered and outcome.value.host is None
    assert ("stopped or failed" if lag_s == 0.0 else "refused") in outcome.value.reason
    assert not sim.ctx.log.of_type(VMMoved) and not store.claims
    check_conservation(sim)


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_no_migration_moves_a_vm_that_is_not_running(seed: int) -> None:
    text = _scenario_text(2, 60, 1.0, 1500.0, 1.0, rack_mtbf_h=3.0, correlated_pct=50.0).replace(
        "migrations = 0\nstart_s = 600.0\nrequest_window_s = 9000.0", "migrations = 40")
    sim = Simulation(loads_scenario(text, origin="repro.toml"), seed=seed, control_plane=lagging(30.0))
    for k in range(1, 6):
        sim.run(until_s=sim.scenario.duration_s * k / 5 + 0.123)
        check_conservation(sim, pending_ok=True)
    _no_move_of_a_vm_that_is_not_running(sim.ctx.log)


@pytest.mark.parametrize("placer", ["scheduler", "first_fit"])
def test_claims_hold_room_and_never_overlap(placer: str) -> None:
    text = _scenario_text(2, 0, 1e6, None, 1.0, placer=placer)
    sim = Simulation(loads_scenario(text, origin="x"), seed=1).run(until_s=1.0)
    model = sim.model
    assert model is not None
    for n in range(3):
        model.request_vm(_spec(f"big-{n}", 6))
    sim.run(until_s=2.0)
    committer = sim.ctx.services.committer
    on = {vm: model.store.host_ids[int(model.vms.host[i])] for vm, i in model.vms.index.items()
          if model.vms.status[i] == cluster_model.RUNNING}
    assert len(on) >= 2
    others = {vm: next(h for h in model.store.host_ids if h != host) for vm, host in on.items()}
    granted = [c for c in (committer.claim(vm, others[vm]) for vm in sorted(on)) if c is not None]
    # 16 cores per host, 6 per VM: whatever the placement, the claims and the VMs never exceed a host.
    for host in range(2):
        placed = sum(6 for vm, h in on.items() if h == model.store.host_ids[host])
        claimed = sum(6 for c in granted if c.host == host)
        assert placed + claimed <= 16
    assert committer.claim(sorted(on)[0], on[sorted(on)[0]]) is None  # never onto its own host
    for claim in granted:
        committer.release(claim)
    check_conservation(sim)

"""The migration component in a whole simulated run: metrics, invariants from the log, determinism."""

from __future__ import annotations

import dataclasses
from collections import defaultdict

import pytest

from novacron.cluster.events import VMMoved
from novacron.events import Event
from novacron.metrics import compute_metrics
from novacron.migration.config import MigrationConfig
from novacron.migration.events import MigrationAdmitted, MigrationFinished, MigrationRequested
from novacron.scenario import Scenario, resolve_scenario
from sim.run import simulate


def small_scenario(**migration: object) -> Scenario:
    scenario, _ = resolve_scenario(None)
    cfg = dataclasses.replace(scenario.migration, **migration)  # type: ignore[arg-type]
    return dataclasses.replace(scenario, duration_s=1800.0, migration=cfg)


@pytest.fixture(scope="module")
def default_events() -> list[Event]:
    scenario, _ = resolve_scenario(None)
    return list(simulate(scenario, 7).log)


def test_default_run_reports_the_catalogue_metrics(default_events: list[Event]) -> None:
    metrics = compute_metrics(default_events)
    for name in ("migration.live.downtime_max_ms", "migration.live.downtime_p99_ms", "migration.warm.downtime_max_ms",
                 "migration.live.downtime_p50_ms", "migration.live.downtime_p95_ms",
                 "migration.live.total_time_p99_ms"):
        assert name in metrics, name
    assert metrics["migration.live.downtime_max_ms"] < 5_000
    batch = [e for e in default_events if isinstance(e, MigrationRequested) and e.migration_id.startswith("mig-")]
    assert len(batch) == MigrationConfig().migrations


def test_every_request_ends_once_and_caps_hold(default_events: list[Event]) -> None:
    requested = {e.migration_id for e in default_events if isinstance(e, MigrationRequested)}
    finished = [e.migration_id for e in default_events if isinstance(e, MigrationFinished)]
    assert sorted(finished) == sorted(requested)
    for e in default_events:
        if isinstance(e, MigrationAdmitted):
            assert e.running_global <= 10 and e.running_on_source <= 2 and e.running_on_destination <= 2


def test_never_two_concurrent_migrations_of_one_vm(default_events: list[Event]) -> None:
    """Counting the migration batch and the scheduler's rebalancer together."""
    from novacron.cluster.events import VMMoved
    from novacron.scheduler.events import RebalanceMoveStarted

    active: dict[str, int] = defaultdict(int)
    for e in default_events:
        if isinstance(e, MigrationAdmitted | RebalanceMoveStarted):
            active[e.vm_id] += 1
            assert active[e.vm_id] == 1, e.vm_id
        elif (isinstance(e, MigrationFinished) or (isinstance(e, VMMoved) and e.source == "rebalancer")) \
                and active[e.vm_id]:
            active[e.vm_id] -= 1


def test_same_seed_same_migrations_and_other_seed_differs() -> None:
    scenario = small_scenario(migrations=12)
    def rows(seed: int) -> list[tuple[object, ...]]:
        return [(e.t_s, e.vm_id, e.outcome, e.downtime_ms, e.bytes_sent)
                for e in simulate(scenario, seed).log.of_type(MigrationFinished)]
    assert rows(3) == rows(3)
    assert rows(3) != rows(4)


def test_crashes_roll_back_without_losing_vms() -> None:
    scenario = small_scenario(migrations=20, destination_crash_probability=1.0, permit_postcopy=False)
    finished = simulate(scenario, 5).log.of_type(MigrationFinished)
    assert finished
    assert all(not f.vm_lost for f in finished)
    assert any(f.outcome == "rolled_back" for f in finished)
    assert all(f.outcome in ("completed", "rolled_back", "aborted") for f in finished)
    # aborted: the commit or the claim was refused (the VM or a host went away), never a copy failure
    assert all(f.reason.startswith(("aborted:", "no room claimed")) for f in finished if f.outcome == "aborted")


def test_zero_migrations_still_reports_the_config_limits() -> None:
    ctx = simulate(small_scenario(migrations=0), 1)
    assert ctx.config_metrics["migration.max_concurrent_per_host"] == 2
    assert not ctx.log.of_type(MigrationFinished)


def test_host_crashes_from_the_fault_model_roll_migrations_back() -> None:
    """Hosts crash often (MTBF 0.1 h): the batch keeps working around them, a migration that meets
    a crash ends rolled back, and no VM is recorded as lost (crash mechanics: test_migration_controller)."""
    scenario = small_scenario(migrations=60, request_window_s=1200.0, destination_crash_probability=0.0,
                              permit_postcopy=False, start_s=700.0)
    scenario = dataclasses.replace(scenario, faults=dataclasses.replace(scenario.faults, enabled=True,
                                                                        host_mtbf_h=0.1, host_mttr_h=0.05))
    from novacron.cluster.events import HostFailed

    log = simulate(scenario, 11).log
    assert log.of_type(HostFailed), "the scenario should crash hosts"
    finished = log.of_type(MigrationFinished)
    assert finished
    crashed = [f for f in finished if f.reason.endswith("host crashed")]
    assert all(f.outcome == "rolled_back" and not f.vm_lost for f in crashed)
    assert all(not f.vm_lost for f in finished)
    assert all(f.outcome in ("completed", "rolled_back", "aborted") for f in finished)
    # aborted: the commit or the claim was refused (the VM or a host went away), never a copy failure
    assert all(f.reason.startswith(("aborted:", "no room claimed")) for f in finished if f.outcome == "aborted")


def test_rebalancer_moves_run_through_the_migration_service_and_commit_after_it(
        default_events: list[Event]) -> None:
    """Every rebalancer move is a migration of the run's one service (QEMU model, core
    controller): its ``VMMoved`` is the commit of that migration's copy, and the migration's one
    ``MigrationFinished`` says ``completed`` only once the move was committed."""
    committed: dict[str, float] = {}
    moved = 0
    for ev in default_events:
        if isinstance(ev, VMMoved) and ev.source == "rebalancer":
            committed[ev.vm_id] = ev.t_s
            moved += 1
        elif isinstance(ev, MigrationFinished) and ev.migration_id.startswith("rebalance-"):
            at_s = committed.pop(ev.vm_id, None)
            assert (ev.outcome == "completed") == (at_s is not None), ev
            assert at_s is None or at_s <= ev.t_s, ev
    assert not committed, f"moves recorded without a completed migration: {committed}"
    assert moved > 0, "expected the default run's rebalancer to move VMs"


def test_moves_are_admitted_with_the_headroom_the_scenario_asks_of_placement() -> None:
    """One set of limits per host: the ``[scheduler]`` headroom also bounds migration admission
    (it used to run on AdmissionPolicy's defaults whatever the scenario said)."""
    from novacron.scenario import builtin_scenario_text, loads_scenario
    from sim import Simulation

    text = (builtin_scenario_text("default").replace("headroom_cpu_pct = 20.0", "headroom_cpu_pct = 35.0")
            .replace("headroom_io_pct = 20.0", "headroom_io_pct = 5.0"))
    assert "headroom_cpu_pct = 35.0" in text and "headroom_io_pct = 5.0" in text
    sim = Simulation(loads_scenario(text, origin="headroom"), seed=1)
    headroom = sim.ctx.services.admission.policy.headroom
    assert (headroom.cpu_pct, headroom.memory_pct, headroom.network_pct, headroom.io_pct) == (35.0, 10.0, 30.0, 5.0)


@pytest.mark.parametrize("seed", [1, 3])
def test_a_certain_destination_crash_lets_no_batch_migration_complete(seed: int) -> None:
    """``destination_crash_probability = 1``: every batch migration that starts a copy ends with its
    destination crashed -- cold, warm, live and post-copy alike. A warm move's copy and a live
    move's stop-and-copy are one step of the QEMU model, and a copy can run shorter than planned:
    the crash drawn inside or after them used to be stepped over, and the move completed."""
    scenario = small_scenario(migrations=40, destination_crash_probability=1.0, warm_fraction=0.3,
                              shutoff_fraction=0.3)
    batch = [f for f in simulate(scenario, seed).log.of_type(MigrationFinished) if f.migration_id.startswith("mig-")]
    started = [f for f in batch if not f.reason.startswith(("aborted:", "no room claimed"))]
    assert {f.migration_type for f in started} >= {"cold", "warm", "live", "postcopy"}, f"seed {seed}"
    completed = [(f.migration_id, f.migration_type) for f in started if f.outcome == "completed"]
    assert not completed, f"seed {seed}: completed despite a certain destination crash: {completed}"
    assert all(f.reason == "destination host crashed" for f in started), f"seed {seed}"
    assert all(f.vm_lost == f.switched_to_postcopy for f in started), f"seed {seed}"

"""Truthful migration events: one terminal event per migration, with the outcome that happened.

A copy that completed but whose move the control plane refused used to leave two terminal events
that disagreed (``MigrationFinished outcome=completed``, then a separate abort); an unmeasured
downtime used to read 0 ms. These tests pin the fix in the controller, in the simulation's
migration service and in the metrics.
"""

from __future__ import annotations

import math
from collections import Counter

import pytest

from novacron.events import Event
from novacron.metrics import compute_metrics
from novacron.migration.controller import ControllerPolicy
from novacron.migration.events import MigrationFinished, MigrationRequested
from novacron.migration.lifecycle import MigrationPhase
from novacron.migration.protocol import MIB, JobStats, JobStatus
from novacron.scenario import loads_scenario
from sim import Simulation
from sim.migration.qemu_model import GuestProfile
from tests.migration_helpers import drive, make_controller, make_world
from tests.test_capacity_model import _scenario_text, lagging
from tests.test_move_commit import _spec

GUEST = GuestProfile(memory_bytes=512 * MIB, resident_bytes=64 * MIB, wws_bytes=64 * MIB, dirty_rate_pages_s=2_000)


TERMINAL_EVENT_NAMES = ("MigrationFinished", "MigrationAborted")
"""``MigrationAborted`` was a second terminal event before the fix; counted so the property fails there."""


def terminal_events(log: list[Event]) -> dict[str, list[MigrationFinished]]:
    """Every requested migration's terminal events, by migration id."""
    ends: dict[str, list[MigrationFinished]] = {e.migration_id: [] for e in log if isinstance(e, MigrationRequested)}
    for e in log:
        if type(e).__name__ in TERMINAL_EVENT_NAMES:
            ends.setdefault(e.migration_id, []).append(e)  # type: ignore[attr-defined]
    return ends


@pytest.mark.parametrize(("refusal", "outcome"), [("", "completed"), ("the VM moved elsewhere", "aborted")])
def test_a_copy_awaiting_its_commit_ends_once_with_the_decision(refusal: str, outcome: str) -> None:
    hv, recorder, clock = make_world(GUEST)
    ctl = make_controller(hv, recorder, ControllerPolicy())
    ctl.awaits_commit = True
    drive(ctl, hv, clock)
    assert ctl.phase is MigrationPhase.COMMITTING and ctl.copy_ended and not ctl.done
    assert not recorder.log.of_type(MigrationFinished)  # nothing final before the decision
    ctl.commit_decided(refusal, clock.t_s + 1.0)
    [finished] = recorder.log.of_type(MigrationFinished)
    assert (finished.outcome, finished.reason) == (outcome, refusal)
    assert finished.downtime_ms > 0  # the copy's measured downtime, also when the move was refused
    with pytest.raises(ValueError, match="commit_decided in phase"):
        ctl.commit_decided("", clock.t_s + 2.0)


def test_an_unmeasured_downtime_is_missing_not_zero() -> None:
    hv, recorder, _clock = make_world(GUEST)
    ctl = make_controller(hv, recorder, ControllerPolicy())
    ctl.admitted(0.0)
    ctl.start(0.0)
    ctl.observe(JobStats(vm_id="vm", status=JobStatus.COMPLETED, total_time_ms=900.0, downtime_ms=None,
                         switched_to_postcopy=True), 1.0)
    [finished] = recorder.log.of_type(MigrationFinished)
    assert finished.outcome == "completed" and math.isnan(finished.downtime_ms)
    metrics = compute_metrics(recorder.log)
    kind = finished.migration_type
    assert metrics[f"migration.{kind}.completed"] == 1.0
    assert f"migration.{kind}.downtime_max_ms" not in metrics  # not measured, so no target passes on it


def test_a_move_refused_at_commit_has_one_terminal_event_aborted() -> None:
    """Directed regression: the VM is deleted while its copy runs; the copy completes, the
    commit is refused, and the migration's only terminal event says ``aborted``."""
    sim = Simulation(loads_scenario(_scenario_text(2, 0, 1e6, None, 1.0), origin="x"), seed=1).run(until_s=1.0)
    model, services = sim.model, sim.ctx.services
    assert model is not None
    model.request_vm(_spec("vm-a", 2))
    sim.run(until_s=2.0)
    store = services.allocations
    source = store.host_of("vm-a")
    assert source is not None
    destination = store.host_ids[1 - source]
    claim = services.committer.claim("vm-a", destination)
    assert claim is not None
    sim.ctx.env.process(services.migrations.run_migration("mig-refused", "vm-a", destination, claim,
                                                          services.committer, mover="migration"))
    sim.run(until_s=2.1)
    model.depart(model.vms.index["vm-a"])  # during the copy
    sim.run(until_s=600.0)
    ends = terminal_events(list(sim.ctx.log))["mig-refused"]
    assert [(e.outcome, "stopped or failed" in e.reason) for e in ends] == [("aborted", True)]


@pytest.mark.parametrize("seed", [3])
def test_every_migration_has_exactly_one_terminal_event(seed: int) -> None:
    """Over a run with host crashes, departures and a lagging control plane (seed 3 refuses three
    commits), every requested migration ends exactly once."""
    text = _scenario_text(3, 60, 1.0, 900.0, 1.0, rack_mtbf_h=3.0, correlated_pct=50.0, migrations=60)
    sim = Simulation(loads_scenario(text, origin="x"), seed=seed, control_plane=lagging(30.0)).run()
    ends = terminal_events(list(sim.ctx.log))
    counts = Counter(len(v) for v in ends.values())
    assert set(counts) == {1}, f"seed {seed}: terminal events per migration {dict(counts)}"
    outcomes = Counter(v[0].outcome for v in ends.values())
    assert outcomes["aborted"] > 0, f"seed {seed}: the property needs aborted moves to mean anything: {outcomes}"


def test_the_simulated_clock_sleeps_the_whole_reported_migration_time() -> None:
    """The model starts a migration with its setup time already elapsed; that setup used to be
    reported in ``total_time_ms`` but never slept by the clock, so the VM moved (and its hosts
    were freed) that much earlier than reported -- 0.53 s of lab-small's 0.91 s migrations."""
    from sim.migration.qemu_model import StreamCalibration

    hv, recorder, clock = make_world(GUEST, calibration=StreamCalibration(setup_s=0.5, setup_s_per_gib=0.2))
    ctl = make_controller(hv, recorder, ControllerPolicy())
    drive(ctl, hv, clock)
    [finished] = recorder.log.of_type(MigrationFinished)
    assert finished.outcome == "completed"
    assert clock.t_s * 1000.0 == pytest.approx(finished.total_time_ms, abs=1e-6)
    assert finished.total_time_ms > 600.0  # the setup (0.5 s + 0.1 s for 0.5 GiB) is in it

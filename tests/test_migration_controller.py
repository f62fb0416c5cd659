"""The migration lifecycle table, the planner and the Nova-knob controller over the sim hypervisor."""

from __future__ import annotations

import math

import pytest

from novacron.lifecycle import IllegalTransition
from novacron.migration.controller import ControllerPolicy
from novacron.migration.events import MigrationCommandIssued, MigrationFinished, MigrationPhaseChanged
from novacron.migration.lifecycle import MIGRATION_LIFECYCLE, TERMINAL_PHASES, MigrationPhase
from novacron.migration.planner import LinkEstimate, VMMigrationProfile, plan_migration
from novacron.migration.protocol import GIB, MIB, MigrationType, PowerState
from sim.migration.qemu_model import GuestProfile, lab_guest
from tests.migration_helpers import drive, make_controller, make_world

P = MigrationPhase


# -- lifecycle ---------------------------------------------------------------------------------

def test_every_state_is_reachable_from_requested_and_terminals_are_terminal() -> None:
    seen, frontier = {P.REQUESTED}, [P.REQUESTED]
    while frontier:
        for nxt in MIGRATION_LIFECYCLE.allowed(frontier.pop()):
            if nxt not in seen:
                seen.add(nxt)
                frontier.append(nxt)
    assert seen == set(P)
    assert all(MIGRATION_LIFECYCLE.is_terminal(p) for p in TERMINAL_PHASES)


@pytest.mark.parametrize(("src", "dst"), [
    (P.REQUESTED, P.PRECOPY), (P.PRECOPY, P.COMPLETED), (P.POSTCOPY, P.ROLLED_BACK), (P.POSTCOPY, P.PRECOPY),
    (P.STOP_AND_COPY, P.PRECOPY), (P.COMPLETED, P.PRECOPY), (P.ABORTED, P.ADMITTED), (P.COMMITTING, P.ROLLED_BACK),
])
def test_illegal_transitions_raise(src: MigrationPhase, dst: MigrationPhase) -> None:
    with pytest.raises(IllegalTransition):
        MIGRATION_LIFECYCLE.check(src, dst)


def test_a_new_precopy_round_is_a_legal_self_transition() -> None:
    assert MIGRATION_LIFECYCLE.check(P.PRECOPY, P.PRECOPY) is P.PRECOPY


# -- planner -----------------------------------------------------------------------------------

def test_planner_chooses_the_type() -> None:
    link = LinkEstimate(bandwidth_bytes_s=128 * MIB, stop_copy_bytes_s=1200 * MIB)
    def vm(rate: float, power: PowerState = PowerState.RUNNING) -> VMMigrationProfile:
        return VMMigrationProfile(vm_id="v", memory_bytes=512 * MIB, wws_bytes=128 * MIB, dirty_rate_pages_s=rate,
                                  power_state=power, nonzero_bytes=195 * MIB)
    assert plan_migration(vm(20_000, PowerState.SHUTOFF), link, 300).migration_type is MigrationType.COLD
    assert plan_migration(vm(20_000), link, 300).migration_type is MigrationType.LIVE
    assert plan_migration(vm(100_000), link, 300).migration_type is MigrationType.POSTCOPY
    assert plan_migration(vm(100_000), link, 300, permit_postcopy=False).migration_type is MigrationType.WARM
    assert plan_migration(vm(20_000), link, 300, force=MigrationType.WARM).migration_type is MigrationType.WARM


def test_planner_predicts_the_lab_20k_row_within_25_percent() -> None:
    vm = VMMigrationProfile(vm_id="v", memory_bytes=512 * MIB, wws_bytes=128 * MIB, dirty_rate_pages_s=20_000,
                            nonzero_bytes=195 * MIB)
    plan = plan_migration(vm, LinkEstimate(bandwidth_bytes_s=128 * MIB, stop_copy_bytes_s=1200 * MIB), 300)
    assert plan.predicted_total_time_ms == pytest.approx(2_134, rel=0.25)
    assert plan.predicted_bytes / MIB == pytest.approx(301, rel=0.25)
    assert abs(plan.predicted_rounds - 6) <= 1


def test_planner_geometric_model_without_working_set_cap_matches_clark() -> None:
    """With a working set far larger than what a round dirties, V_i = V_0 (D/B)^i."""
    bandwidth, rate = 100 * MIB, 2_560.0  # D/B = 0.1
    vm = VMMigrationProfile(vm_id="v", memory_bytes=GIB, wws_bytes=1024 * GIB, dirty_rate_pages_s=rate)
    plan = plan_migration(vm, LinkEstimate(bandwidth_bytes_s=bandwidth, setup_s=0.0, device_state_ms=0.0), 1.0)
    expected_bytes = sum(GIB * 0.1 ** i for i in range(plan.predicted_rounds - 1))
    assert plan.predicted_bytes == pytest.approx(expected_bytes, rel=1e-3)


# -- controller --------------------------------------------------------------------------------

def phases(recorder_log: object) -> list[str]:
    return [e.phase for e in recorder_log.of_type(MigrationPhaseChanged)]  # type: ignore[attr-defined]


def test_nova_downtime_steps() -> None:
    schedule = ControllerPolicy(downtime_ms=500, downtime_steps=10, downtime_delay_s_per_gib=75).downtime_schedule(
        4 * GIB)
    assert schedule[0] == (0.0, 50.0)
    assert schedule[-1] == (3000.0, 500.0)
    assert [round(ms) for _, ms in schedule] == [50, 95, 140, 185, 230, 275, 320, 365, 410, 455, 500]
    assert ControllerPolicy().downtime_schedule(GIB)[1][0] == 150.0  # data counted as at least 2 GiB


def test_live_migration_walks_the_lifecycle_and_reports_rounds() -> None:
    hv, rec, clock = make_world(lab_guest(20_000))
    ctl = make_controller(hv, rec, ControllerPolicy(downtime_ms=300, downtime_steps=1, bandwidth_mib_s=128))
    drive(ctl, hv, clock)
    seq = phases(rec.log)
    assert seq[:3] == ["admitted", "preparing", "precopy"]
    assert seq[-3:] == ["stop_and_copy", "committing", "completed"]
    (done,) = rec.log.of_type(MigrationFinished)
    assert done.outcome == "completed" and done.migration_type == "live"
    assert len(done.rounds_bytes) == done.dirty_syncs - 2  # not the setup sync, nor the final one
    assert sum(done.rounds_bytes) <= done.bytes_sent
    assert hv.location["vm"] == "b"


def test_postcopy_switch_when_progress_stalls() -> None:
    hv, rec, clock = make_world(lab_guest(100_000))
    policy = ControllerPolicy(downtime_ms=300, downtime_steps=1, bandwidth_mib_s=128, permit_postcopy=True)
    ctl = make_controller(hv, rec, policy, force=MigrationType.LIVE)
    drive(ctl, hv, clock)
    (done,) = rec.log.of_type(MigrationFinished)
    assert done.outcome == "completed" and done.switched_to_postcopy and done.migration_type == "postcopy"
    assert "postcopy" in phases(rec.log)
    assert done.downtime_ms < 10


def test_completion_timeout_aborts_and_the_vm_stays() -> None:
    hv, rec, clock = make_world(lab_guest(100_000))
    policy = ControllerPolicy(downtime_ms=300, downtime_steps=1, bandwidth_mib_s=128,
                              completion_timeout_s_per_gib=5.0)
    ctl = make_controller(hv, rec, policy, force=MigrationType.LIVE)
    drive(ctl, hv, clock)
    (done,) = rec.log.of_type(MigrationFinished)
    assert done.outcome == "aborted" and "timeout" in done.reason
    assert hv.location["vm"] == "a" and not done.vm_lost
    assert 10.0 <= done.total_time_ms / 1000 <= 11.0  # 5 s/GiB, data counted as 2 GiB


def test_completion_timeout_force_completes_by_pausing() -> None:
    hv, rec, clock = make_world(lab_guest(100_000))
    policy = ControllerPolicy(downtime_ms=300, downtime_steps=1, bandwidth_mib_s=128,
                              completion_timeout_s_per_gib=5.0, timeout_action="force_complete")
    ctl = make_controller(hv, rec, policy, force=MigrationType.LIVE)
    drive(ctl, hv, clock)
    (done,) = rec.log.of_type(MigrationFinished)
    assert done.outcome == "completed" and hv.location["vm"] == "b"
    assert "ForceComplete" in [c.command for c in rec.log.of_type(MigrationCommandIssued)]


def test_destination_crash_rolls_back_and_loses_nothing() -> None:
    hv, rec, clock = make_world(lab_guest(20_000))
    hv.crash_at_s["vm"] = 1.0
    ctl = make_controller(hv, rec, ControllerPolicy(downtime_ms=300, downtime_steps=1, bandwidth_mib_s=128))
    drive(ctl, hv, clock)
    (done,) = rec.log.of_type(MigrationFinished)
    assert done.outcome == "rolled_back" and done.reason == "destination host crashed"
    assert hv.location["vm"] == "a" and not done.vm_lost


def test_destination_crash_during_postcopy_is_recorded_as_a_lost_vm() -> None:
    """Post-copy's known risk (Hines & Gopalan): neither side holds the whole guest."""
    hv, rec, clock = make_world(lab_guest(100_000))
    hv.crash_at_s["vm"] = 5.0
    policy = ControllerPolicy(downtime_ms=300, downtime_steps=1, bandwidth_mib_s=128, permit_postcopy=True)
    ctl = make_controller(hv, rec, policy, force=MigrationType.POSTCOPY)
    drive(ctl, hv, clock)
    (done,) = rec.log.of_type(MigrationFinished)
    assert (done.outcome, done.vm_lost) == ("failed", True)


@pytest.mark.parametrize(("power", "force", "postcopy"), [
    (PowerState.SHUTOFF, None, False), (PowerState.RUNNING, MigrationType.WARM, False),
    (PowerState.RUNNING, MigrationType.LIVE, False), (PowerState.RUNNING, MigrationType.POSTCOPY, True)])
@pytest.mark.parametrize("crash_at_s", [0.5, 1e6])
def test_a_drawn_destination_crash_always_ends_the_copy(power: PowerState, force: MigrationType | None,
                                                        postcopy: bool, crash_at_s: float) -> None:
    """A destination drawn to crash crashes before the guest resumes there, whatever the type:
    at its time, or at the switch-over if the copy gets there first (``1e6`` s: long after it)."""
    hv, rec, clock = make_world(lab_guest(2_000), power=power)
    hv.crash_at_s["vm"] = crash_at_s
    policy = ControllerPolicy(downtime_ms=300, downtime_steps=1, bandwidth_mib_s=128, permit_postcopy=postcopy)
    drive(make_controller(hv, rec, policy, force=force), hv, clock)
    (done,) = rec.log.of_type(MigrationFinished)
    assert done.outcome != "completed" and done.reason == "destination host crashed", done
    assert done.vm_lost == done.switched_to_postcopy and (hv.location["vm"] == "a") != done.vm_lost, done


def test_warm_and_cold() -> None:
    for power, force, kind in [(PowerState.RUNNING, MigrationType.WARM, "warm"),
                               (PowerState.SHUTOFF, None, "cold")]:
        guest = GuestProfile(memory_bytes=GIB, resident_bytes=256 * MIB, wws_bytes=64 * MIB,
                             dirty_rate_pages_s=5_000)
        hv, rec, clock = make_world(guest, power=power)
        ctl = make_controller(hv, rec, ControllerPolicy(), force=force)
        drive(ctl, hv, clock)
        (done,) = rec.log.of_type(MigrationFinished)
        assert done.outcome == "completed" and done.migration_type == kind
        assert done.downtime_ms == pytest.approx(done.total_time_ms, rel=0.05)
        assert "precopy" not in phases(rec.log)
        assert math.isfinite(done.predicted_total_time_ms)


@pytest.mark.parametrize(("host", "reason"), [("b", "destination host crashed"), ("a", "source host crashed")])
def test_a_host_crash_reported_by_the_model_fails_the_migration_at_its_next_step(host: str, reason: str) -> None:
    hv, rec, clock = make_world(lab_guest(20_000))
    ctl = make_controller(hv, rec, ControllerPolicy(downtime_ms=300, downtime_steps=1, bandwidth_mib_s=128))
    drive(ctl, hv, clock, until_s=0.7)
    assert not ctl.done
    hv.crash_host(host)
    drive_more = hv.advance("vm", 0.5)
    assert drive_more > 0
    ctl.observe(hv.job_stats("vm"), clock.t_s + drive_more)
    (done,) = rec.log.of_type(MigrationFinished)
    assert done.outcome == "rolled_back" and done.reason == reason
    assert hv.location["vm"] == "a"


def test_auto_converge_only_without_postcopy_as_in_nova() -> None:
    hv, rec, _ = make_world(lab_guest(100_000))
    both = make_controller(hv, rec, ControllerPolicy(permit_postcopy=True, permit_auto_converge=True),
                           force=MigrationType.LIVE)
    assert both.params.postcopy and not both.params.auto_converge
    only = make_controller(hv, rec, ControllerPolicy(permit_auto_converge=True), force=MigrationType.LIVE)
    assert only.params.auto_converge and not only.params.postcopy


def test_auto_converge_lets_a_hot_guest_finish_that_otherwise_times_out() -> None:
    results = {}
    for auto in (False, True):
        hv, rec, clock = make_world(lab_guest(100_000))
        policy = ControllerPolicy(downtime_ms=300, downtime_steps=1, bandwidth_mib_s=128,
                                  completion_timeout_s_per_gib=30.0, permit_auto_converge=auto)
        drive(make_controller(hv, rec, policy, force=MigrationType.LIVE), hv, clock)
        (done,) = rec.log.of_type(MigrationFinished)
        results[auto] = (done.outcome, done.cpu_throttle_pct)
    assert results[False][0] == "aborted"
    assert results[True][0] == "completed" and results[True][1] >= 20


def test_a_vm_with_local_disk_is_block_migrated_and_its_disk_copy_is_recorded() -> None:
    from novacron.events import InMemoryEventLog, Recorder
    from novacron.migration.controller import MigrationController, MigrationRequest
    from novacron.migration.events import MigrationStorageCopied
    from novacron.migration.protocol import JobStats, JobStatus, StartMigration

    def controller(disk_bytes: int, log: InMemoryEventLog) -> MigrationController:
        vm = VMMigrationProfile(vm_id="v", memory_bytes=256 * MIB, wws_bytes=32 * MIB, dirty_rate_pages_s=1000,
                                nonzero_bytes=96 * MIB, disk_bytes=disk_bytes)
        plan = plan_migration(vm, LinkEstimate(bandwidth_bytes_s=128 * MIB), 300)
        request = MigrationRequest(migration_id="m", vm=vm, source_host_id="a", destination_host_id="b")
        return MigrationController(request, plan, ControllerPolicy(), Recorder(log, lambda: 0.0))

    shared = controller(0, InMemoryEventLog())
    assert not shared.params.copy_storage  # shared storage: only memory moves
    log = InMemoryEventLog()
    block = controller(32 * MIB, log)
    block.admitted(0.0)
    start = block.start(0.0)[0]
    assert isinstance(start, StartMigration) and start.params.copy_storage
    block.observe(JobStats(vm_id="v", status=JobStatus.COMPLETED, memory_processed_bytes=90 * MIB, dirty_sync_count=3,
                           downtime_ms=40.0, total_time_ms=3000.0, disk_total_bytes=32 * MIB,
                           disk_processed_bytes=32 * MIB), 3.0)
    types = [type(e).__name__ for e in log]
    assert types[-2:] == ["MigrationStorageCopied", "MigrationFinished"]
    copied = log.of_type(MigrationStorageCopied)[0]
    assert (copied.disk_bytes, copied.disk_total_bytes, copied.disk_sent_bytes, copied.outcome) == \
        (32 * MIB, 32 * MIB, 32 * MIB, "completed")

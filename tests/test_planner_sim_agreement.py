"""The planner and the simulation agree under one calibration profile (issue 15, item 3).

1,000 random VMs and links (guest memory, non-zero share, working set, dirty rate, bandwidth limit,
link share, downtime limit), one profile with every per-GiB and fixed term non-zero: the
planner's closed-form rounds against the simulation's per-window QEMU model."""

from __future__ import annotations

import math
import random

import numpy as np
import pytest

from novacron.migration.calibration import CalibrationProfile
from novacron.migration.planner import VMMigrationProfile, link_from_profile, plan_migration, predict_precopy
from novacron.migration.protocol import GIB, MIB, PAGE_SIZE_BYTES, MigrationType
from sim.migration.qemu_model import WINDOW_S, GuestProfile, QemuMigration, run_alone

PROFILE = CalibrationProfile(stream_cap_bytes_s=300 * MIB, stop_copy_bytes_s=900 * MIB, setup_s=0.5,
                             setup_s_per_gib=0.3, sync_s_per_gib=0.02, zero_scan_pages_s=3e6, device_state_ms=20.0)


def random_case(rng: random.Random) -> tuple[VMMigrationProfile, float | None, float, float]:
    memory = int(rng.choice([0.25, 0.5, 1, 2, 4, 8, 16]) * GIB)
    nonzero = int(memory * rng.uniform(0.2, 1.0))
    wws = int(min(nonzero, memory * rng.uniform(0.01, 0.3)))
    rate = math.exp(rng.uniform(math.log(100), math.log(100_000)))
    vm = VMMigrationProfile(vm_id="vm", memory_bytes=memory, wws_bytes=wws, dirty_rate_pages_s=rate,
                            nonzero_bytes=nonzero)
    limit = rng.choice([None, 64 * MIB, 128 * MIB, 512 * MIB, 1200 * MIB])
    return vm, limit, rng.choice([math.inf, 125e6, 1.25e9]), rng.choice([50.0, 100.0, 300.0, 500.0, 1000.0])


def simulate(vm: VMMigrationProfile, limit: float | None, link_bytes_s: float, downtime_ms: float) -> QemuMigration:
    guest = GuestProfile(memory_bytes=vm.memory_bytes, resident_bytes=vm.payload_bytes - vm.wws_bytes,
                         wws_bytes=vm.wws_bytes, dirty_rate_pages_s=vm.dirty_rate_pages_s)
    return run_alone(QemuMigration(guest=guest, downtime_limit_ms=downtime_ms, max_bandwidth_bytes_s=limit,
                                   calibration=PROFILE), share_bytes_s=link_bytes_s, until_s=600.0)


def test_planner_total_time_is_within_10_percent_of_the_simulation_on_1000_random_vms() -> None:
    rng = random.Random(15)
    errors, verdicts_agree, cases = [], 0, 1000
    for _ in range(cases):
        vm, limit, link_bytes_s, downtime_ms = random_case(rng)
        plan = predict_precopy(vm, link_from_profile(PROFILE, max_bandwidth_bytes_s=limit, link_bytes_s=link_bytes_s),
                               downtime_ms)
        sim = simulate(vm, limit, link_bytes_s, downtime_ms)
        sim_converged = sim.downtime_ms is not None
        verdicts_agree += sim_converged == plan.converges
        if sim_converged and plan.converges:
            planned_ms = plan.precopy_s * 1000.0 + plan.downtime_ms
            errors.append(abs(planned_ms - sim.elapsed_s * 1000.0) / (sim.elapsed_s * 1000.0) * 100.0)
    assert len(errors) >= 600, len(errors)
    # median: the issue's bound; p90: a tail the planner without the per-GiB terms missed (18.9 %)
    assert float(np.median(errors)) <= 10.0 and float(np.percentile(errors, 90)) <= 15.0, (
        np.median(errors), np.percentile(errors, 90))
    assert verdicts_agree >= 0.85 * cases, verdicts_agree


def test_the_planned_downtime_follows_the_switch_over_rule() -> None:
    # QEMU (and the simulation) stop the guest only when the pending bytes are under bandwidth x limit;
    # the downtime is then the final sync and the copy of those bytes at the paused rate
    rng = random.Random(16)
    for _ in range(300):
        vm, limit, link_bytes_s, downtime_ms = random_case(rng)
        link = link_from_profile(PROFILE, max_bandwidth_bytes_s=limit, link_bytes_s=link_bytes_s)
        plan = predict_precopy(vm, link, downtime_ms)
        if not plan.converges:
            continue
        threshold = link.bandwidth_bytes_s * downtime_ms / 1000.0
        written_in_sync = vm.dirty_rate_pages_s * link.sync_time_s(vm.memory_bytes) * PAGE_SIZE_BYTES
        assert plan.last_round_bytes <= threshold + written_in_sync + 1.0
        expected_ms = ((link.sync_time_s(vm.memory_bytes) + plan.last_round_bytes / link.paused_bytes_s) * 1000.0
                       + link.device_state_ms)
        # plus the scan of the zero pages still pending (no more than the threshold's worth)
        zero_scan_ms = threshold / PAGE_SIZE_BYTES / link.zero_scan_pages_s * 1000.0
        assert expected_ms * (1 - 1e-9) <= plan.downtime_ms <= (expected_ms + zero_scan_ms) * (1 + 1e-9)


def test_issue_15_case_the_planner_no_longer_predicts_13_ms_where_the_simulation_says_more() -> None:
    # 8 GiB at 200,000 pages/s over 1 Gbit/s: the dirty rate (781 MiB/s) exceeds the link; neither
    # the planner nor the simulation may call it converging
    vm = VMMigrationProfile(vm_id="vm", memory_bytes=8 * GIB, wws_bytes=2 * GIB, dirty_rate_pages_s=200_000)
    plan = predict_precopy(vm, link_from_profile(PROFILE, link_bytes_s=125e6), 300.0)
    sim = run_alone(QemuMigration(guest=GuestProfile(memory_bytes=8 * GIB, resident_bytes=6 * GIB, wws_bytes=2 * GIB,
                                                     dirty_rate_pages_s=200_000),
                                  downtime_limit_ms=300.0, max_bandwidth_bytes_s=None, calibration=PROFILE),
                    share_bytes_s=125e6, until_s=300.0)
    assert not plan.converges and sim.downtime_ms is None


def test_a_mostly_zero_guest_pays_for_the_zero_page_scan() -> None:
    # 4 GiB, 10 MiB of it non-zero: less than bandwidth x limit, but QEMU's pending estimate counts the
    # zero pages too, so the first pass scans all of memory before the switch-over (the planner skipped it)
    vm = VMMigrationProfile(vm_id="vm", memory_bytes=4 * GIB, wws_bytes=5 * MIB, dirty_rate_pages_s=1000,
                            nonzero_bytes=10 * MIB)
    plan = predict_precopy(vm, link_from_profile(PROFILE), 300.0)
    sim = simulate(vm, None, math.inf, 300.0)
    assert plan.converges and sim.downtime_ms is not None
    planned_s = plan.precopy_s + plan.downtime_ms / 1000.0
    assert planned_s == pytest.approx(sim.elapsed_s, rel=0.10), (planned_s, sim.elapsed_s)


def _simulate_warm(vm: VMMigrationProfile, limit: float | None, link_bytes_s: float,
                   downtime_ms: float) -> QemuMigration:
    guest = GuestProfile(memory_bytes=vm.memory_bytes, resident_bytes=vm.payload_bytes - vm.wws_bytes,
                         wws_bytes=vm.wws_bytes, dirty_rate_pages_s=vm.dirty_rate_pages_s)
    model = QemuMigration(guest=guest, downtime_limit_ms=downtime_ms, max_bandwidth_bytes_s=limit,
                          calibration=PROFILE)
    model.paused = True  # as the simulated hypervisor starts a warm move
    return run_alone(model, share_bytes_s=link_bytes_s, until_s=3600.0)


def test_a_warm_plan_agrees_with_the_simulation_on_downtime_and_total_time() -> None:
    """Warm: a paused guest's pre-copy, held to the bandwidth limit; the downtime is all of it after
    the setup, in the plan as in the simulation's QEMU model."""
    rng = random.Random(23)
    for _ in range(200):
        vm, limit, link_bytes_s, downtime_ms = random_case(rng)
        link = link_from_profile(PROFILE, max_bandwidth_bytes_s=limit, link_bytes_s=link_bytes_s)
        plan = plan_migration(vm, link, downtime_ms, force=MigrationType.WARM)
        sim = _simulate_warm(vm, limit, link_bytes_s, downtime_ms)
        assert sim.downtime_ms is not None
        setup_ms = PROFILE.setup_time_s(vm.memory_bytes) * 1000.0
        assert plan.predicted_downtime_ms == pytest.approx(plan.predicted_total_time_ms - setup_ms)
        assert sim.downtime_ms == pytest.approx(sim.elapsed_s * 1000.0 - setup_ms)
        # the simulation ends the rate-limited pass on a 100 ms window: within 5 % or one window
        window_ms = WINDOW_S * 1000.0
        assert plan.predicted_downtime_ms == pytest.approx(sim.downtime_ms, rel=0.05, abs=window_ms), (
            vm, limit, link_bytes_s)
        assert plan.predicted_total_time_ms == pytest.approx(sim.elapsed_s * 1000.0, rel=0.05, abs=window_ms)
        assert plan.predicted_rounds == sim.syncs


@pytest.mark.parametrize("limit_mib_s", [8, 32, 128])
def test_a_warm_move_under_a_bandwidth_limit_takes_its_bytes_over_the_limit_in_plan_and_simulation(
        limit_mib_s: int) -> None:
    """The lab (2026-12-02, RESULTS_lab.md): QEMU holds a paused guest's copy to max-bandwidth (317 MiB
    in 10.1 s at 32 MiB/s), all but the last ``limit x downtime limit`` bytes. Both the planner and
    the simulation must say so; before, both sent a warm move at the unthrottled paused rate."""
    limit = limit_mib_s * MIB
    vm = VMMigrationProfile(vm_id="vm", memory_bytes=GIB, wws_bytes=256 * MIB, dirty_rate_pages_s=20_000,
                            nonzero_bytes=512 * MIB)
    link = link_from_profile(PROFILE, max_bandwidth_bytes_s=limit)
    plan = plan_migration(vm, link, 300.0, force=MigrationType.WARM)
    sim = _simulate_warm(vm, limit, math.inf, 300.0)
    held_to_limit_s = (vm.payload_bytes - limit * 0.3) / limit
    assert plan.predicted_total_time_ms / 1000.0 >= held_to_limit_s
    assert sim.elapsed_s >= held_to_limit_s
    assert plan.predicted_total_time_ms == pytest.approx(sim.elapsed_s * 1000.0, rel=0.02)
    assert plan.predicted_downtime_ms == pytest.approx(sim.downtime_ms, rel=0.02)
    assert plan.predicted_bytes == pytest.approx(sim.bytes_sent, rel=0.01)

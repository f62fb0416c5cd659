"""Hypothesis properties of the migration planner over VMs and links from tiny to huge.

What is asserted is only what the planner promises: a plan that completes (``converges``) has a
finite, non-negative cost and its downtime is part of its total time; a live plan's downtime
follows QEMU's switch-over rule (the RAM left under ``bandwidth x limit``, plus the final sync and
the device state, which the rule does not budget: ``predict_precopy``'s docstring). A plan that
does not converge may say ``inf`` (live forced, or nothing else permitted). Downtime within the
limit is not promised once syncs cost time or the paused rate is below the bandwidth.
"""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from novacron.migration.planner import LinkEstimate, MigrationPlan, VMMigrationProfile, plan_migration, predict_precopy
from novacron.migration.protocol import GIB, MIB, PAGE_SIZE_BYTES, MigrationType, PowerState

KIB = 1024


def _log_uniform(low: float, high: float) -> st.SearchStrategy[float]:
    return st.floats(min_value=math.log(low), max_value=math.log(high)).map(math.exp)


@st.composite
def vms(draw: st.DrawFn) -> VMMigrationProfile:
    memory = int(draw(_log_uniform(4 * KIB, 65536 * GIB)))
    wws = int(memory * draw(st.sampled_from([0.0, 1e-6, 0.01, 0.25, 1.0]) | st.floats(0.0, 1.0)))
    nonzero = draw(st.one_of(st.none(), st.floats(0.0, 1.0).map(lambda share: int(memory * share))))
    rate = draw(st.sampled_from([0.0, 1e-3, 1e12]) | _log_uniform(1.0, 1e8))
    return VMMigrationProfile(vm_id="vm", memory_bytes=memory, wws_bytes=wws, dirty_rate_pages_s=rate,
                              nonzero_bytes=nonzero, disk_bytes=draw(st.sampled_from([0, 10 * GIB])),
                              power_state=draw(st.sampled_from([PowerState.RUNNING] * 5 + [PowerState.SHUTOFF])))


@st.composite
def links(draw: st.DrawFn) -> LinkEstimate:
    bandwidth = draw(_log_uniform(1e-3 * MIB, 1e7 * MIB))
    return LinkEstimate(bandwidth_bytes_s=bandwidth,
                        stop_copy_bytes_s=draw(st.none() | _log_uniform(0.1 * MIB, 1e7 * MIB)),
                        stream_cap_bytes_s=draw(st.none() | _log_uniform(0.1 * MIB, 1e7 * MIB)),
                        setup_s=draw(st.floats(0.0, 600.0)), setup_s_per_gib=draw(st.floats(0.0, 600.0)),
                        sync_s_per_gib=draw(st.sampled_from([0.0, 1e-4, 0.02, 60.0])),
                        zero_scan_pages_s=draw(st.sampled_from([math.inf, 1.0, 4e5, 1e12])),
                        device_state_ms=draw(st.floats(0.0, 60_000.0)),
                        postcopy_switch_ms=draw(st.floats(0.0, 60_000.0)))


limits = st.sampled_from([1e-3, 1.0, 300.0, 60_000.0]) | _log_uniform(1e-3, 1e7)
forces = st.sampled_from([None, *MigrationType])


def _finite_and_non_negative(*values: float) -> bool:
    return all(math.isfinite(v) and v >= 0.0 for v in values)


@settings(max_examples=300, deadline=None)
@given(vm=vms(), link=links(), limit_ms=limits, force=forces, postcopy=st.booleans(), warm=st.booleans())
def test_a_plan_is_finite_and_its_downtime_is_part_of_its_total_time(
        vm: VMMigrationProfile, link: LinkEstimate, limit_ms: float, force: MigrationType | None, postcopy: bool,
        warm: bool) -> None:
    plan: MigrationPlan = plan_migration(vm, link, limit_ms, permit_postcopy=postcopy, permit_warm=warm,
                                         force=force)
    assert plan.predicted_rounds >= 0 and plan.predicted_bytes >= 0
    if plan.converges:
        assert _finite_and_non_negative(plan.predicted_total_time_ms, plan.predicted_downtime_ms), plan
        assert plan.predicted_total_time_ms >= plan.predicted_downtime_ms * (1 - 1e-12), plan
    else:
        assert plan.migration_type is MigrationType.LIVE, plan
        assert not any(math.isnan(v) for v in (plan.predicted_total_time_ms, plan.predicted_downtime_ms)), plan


@settings(max_examples=300, deadline=None)
@given(vm=vms(), link=links(), limit_ms=limits)
def test_a_converging_pre_copy_switches_over_under_the_threshold(
        vm: VMMigrationProfile, link: LinkEstimate, limit_ms: float) -> None:
    precopy = predict_precopy(vm, link, limit_ms)
    assert _finite_and_non_negative(precopy.precopy_s, precopy.bytes_sent, precopy.last_round_bytes), precopy
    assert precopy.syncs >= 1
    if not precopy.converges:
        return
    sync_s = link.sync_time_s(vm.memory_bytes)
    threshold = link.bandwidth_bytes_s * limit_ms / 1000.0
    written_in_sync = vm.dirty_rate_pages_s * sync_s * PAGE_SIZE_BYTES
    assert precopy.last_round_bytes <= (threshold + written_in_sync) * (1 + 1e-9) + 1.0, precopy
    zero_scan_s = threshold / PAGE_SIZE_BYTES / link.zero_scan_pages_s  # zero pages still pending, at most
    bound_ms = (sync_s + (threshold + written_in_sync) / link.paused_bytes_s + zero_scan_s) * 1000.0 \
        + link.device_state_ms
    assert precopy.downtime_ms <= bound_ms * (1 + 1e-9) + 1e-6, (precopy, bound_ms)


@settings(max_examples=100, deadline=None)
@given(vm=vms(), link=links(), limit_ms=limits)
def test_with_free_syncs_and_a_fast_pause_the_downtime_stays_within_the_limit(
        vm: VMMigrationProfile, link: LinkEstimate, limit_ms: float) -> None:
    """The one case where the limit itself is promised: RAM is all the rule budgets."""
    free = LinkEstimate(bandwidth_bytes_s=link.bandwidth_bytes_s, device_state_ms=0.0)
    precopy = predict_precopy(vm, free, limit_ms)
    if precopy.converges:
        assert precopy.downtime_ms <= limit_ms * (1 + 1e-9), precopy



@settings(max_examples=300, deadline=None)
@given(vm=vms(), link=links(), limit_ms=limits)
def test_a_warm_plan_is_held_to_the_bandwidth_limit(vm: VMMigrationProfile, link: LinkEstimate,
                                                    limit_ms: float) -> None:
    """QEMU sends a paused guest through its rate-limited iterations (the lab, RESULTS_lab.md
    2026-12-02): all but the switch-over threshold's bytes take at least bytes / bandwidth, and
    the downtime is all of it after the setup."""
    plan = plan_migration(vm, link, limit_ms, force=MigrationType.WARM)
    if vm.power_state is PowerState.SHUTOFF:
        return
    threshold = link.bandwidth_bytes_s * limit_ms / 1000.0
    held_s = max(vm.payload_bytes - threshold, 0.0) / link.bandwidth_bytes_s
    setup_ms = link.setup_time_s(vm.memory_bytes) * 1000.0
    assert plan.converges and plan.migration_type is MigrationType.WARM, plan
    assert plan.predicted_total_time_ms >= (setup_ms + held_s * 1000.0) * (1 - 1e-9), (plan, held_s)
    assert math.isclose(plan.predicted_downtime_ms, plan.predicted_total_time_ms - setup_ms,
                        rel_tol=1e-9, abs_tol=1e-6), plan

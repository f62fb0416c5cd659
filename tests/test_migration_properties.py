"""Hypothesis properties of the migration model, controller and admission control.

Seeds: Hypothesis prints the failing example (and ``--hypothesis-seed``) on failure; the CI
profile is derandomised so a failure reproduces.
"""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from novacron.migration.admission import AdmissionController, AdmissionPolicy, AdmissionRequest, HostLoad, MigrationCost
from novacron.migration.controller import ControllerPolicy
from novacron.migration.events import MigrationFinished
from novacron.migration.planner import LinkEstimate, VMMigrationProfile, plan_migration
from novacron.migration.protocol import MIB, PAGE_SIZE_BYTES, JobStatus, MigrationType
from sim.migration.qemu_model import GuestProfile, QemuMigration, StreamCalibration, run_alone
from tests.migration_helpers import drive, make_controller, make_world

CAL = StreamCalibration()


@st.composite
def guests(draw: st.DrawFn) -> GuestProfile:
    memory_pages = draw(st.integers(min_value=4_096, max_value=262_144))  # 16 MiB .. 1 GiB
    wws_pages = draw(st.integers(min_value=0, max_value=memory_pages))
    resident_pages = draw(st.integers(min_value=0, max_value=memory_pages - wws_pages))
    rate = draw(st.sampled_from([0.0, 100.0, 2_000.0, 20_000.0, 100_000.0, 400_000.0]))
    return GuestProfile(memory_bytes=memory_pages * PAGE_SIZE_BYTES, resident_bytes=resident_pages * PAGE_SIZE_BYTES,
                        wws_bytes=wws_pages * PAGE_SIZE_BYTES, dirty_rate_pages_s=rate)


bandwidths = st.sampled_from([32 * MIB, 128 * MIB, 512 * MIB, None])
limits = st.sampled_from([30.0, 100.0, 300.0, 1000.0])


@given(guest=guests(), bandwidth=bandwidths, limit_ms=limits, xbzrle=st.booleans(), auto=st.booleans(),
       share=st.sampled_from([48 * MIB, 700 * MIB, math.inf]))
def test_every_page_is_sent_and_converged_downtime_respects_the_limit(
        guest: GuestProfile, bandwidth: float | None, limit_ms: float, xbzrle: bool, auto: bool, share: float) -> None:
    m = run_alone(QemuMigration(guest=guest, downtime_limit_ms=limit_ms, max_bandwidth_bytes_s=bandwidth,
                                xbzrle=xbzrle, auto_converge=auto), share_bytes_s=share, until_s=60.0)
    zero_pages = (guest.memory_bytes - guest.resident_bytes - guest.wws_bytes) / PAGE_SIZE_BYTES
    if m.status is JobStatus.COMPLETED:
        # bytes sent >= memory: every non-zero page once in full, every zero page as its header
        assert m.bytes_sent >= guest.resident_bytes + guest.wws_bytes + 9 * zero_pages - 1
        assert m.downtime_ms is not None
        # QEMU's rule budgets RAM only; the device state comes on top of the limit
        assert m.downtime_ms <= limit_ms + CAL.device_state_ms + 1e-6
    else:
        assert m.status is JobStatus.ACTIVE  # never gives up by itself
        assert m.bytes_sent > 0


@given(guest=guests(), bandwidth=st.sampled_from([32 * MIB, 128 * MIB, 1024 * MIB]), limit_ms=limits)
def test_planner_sends_at_least_the_payload_and_downtime_within_limit(
        guest: GuestProfile, bandwidth: float, limit_ms: float) -> None:
    vm = VMMigrationProfile(vm_id="v", memory_bytes=guest.memory_bytes, wws_bytes=guest.wws_bytes,
                            dirty_rate_pages_s=guest.dirty_rate_pages_s,
                            nonzero_bytes=guest.resident_bytes + guest.wws_bytes)
    plan = plan_migration(vm, LinkEstimate(bandwidth_bytes_s=bandwidth, device_state_ms=0.0), limit_ms)
    assert plan.predicted_bytes >= vm.payload_bytes - 1
    if plan.migration_type is MigrationType.LIVE and plan.converges:
        assert plan.predicted_downtime_ms <= limit_ms + 1e-6
        assert plan.predicted_total_time_ms >= plan.predicted_downtime_ms


@given(guest=guests(), crash_at_s=st.one_of(st.none(), st.floats(min_value=0.0, max_value=20.0)),
       kind=st.sampled_from([None, MigrationType.WARM, MigrationType.POSTCOPY]),
       action=st.sampled_from(["abort", "force_complete"]))
def test_no_failure_loses_a_vm(guest: GuestProfile, crash_at_s: float | None, kind: MigrationType | None,
                               action: str) -> None:
    """Whatever fails before the switchover, the VM ends on exactly one host and nothing is lost.
    Only a crash after a post-copy switch may lose it, and then it is recorded as lost."""
    hv, rec, clock = make_world(guest, nic_bytes_s=256 * MIB)
    if crash_at_s is not None:
        hv.crash_at_s["vm"] = crash_at_s
    policy = ControllerPolicy(downtime_ms=300, downtime_steps=3, downtime_delay_s_per_gib=1.0,
                              completion_timeout_s_per_gib=5.0, timeout_action=action,
                              permit_postcopy=kind is MigrationType.POSTCOPY, poll_interval_s=0.5)
    ctl = make_controller(hv, rec, policy, force=kind)
    drive(ctl, hv, clock, until_s=600.0)
    assert ctl.done
    (done,) = rec.log.of_type(MigrationFinished)
    if done.outcome == "completed":
        assert hv.location["vm"] == "b" and not done.vm_lost
    elif done.outcome in ("rolled_back", "aborted"):
        assert hv.location["vm"] == "a" and not done.vm_lost
    else:
        assert done.outcome == "failed" and done.switched_to_postcopy and done.vm_lost


# -- admission ---------------------------------------------------------------------------------

HOSTS = [f"h{i}" for i in range(5)]
ops = st.lists(st.tuples(st.sampled_from(["request", "pop", "release", "tick"]),
                         st.integers(0, 4), st.integers(0, 4), st.integers(0, 7), st.integers(0, 3),
                         st.floats(0.0, 30.0)), max_size=120)


@given(ops=ops, per_host=st.integers(1, 3), global_cap=st.integers(1, 6),
       loads=st.lists(st.floats(0.0, 60.0), min_size=5, max_size=5))
def test_admission_caps_and_headroom_hold_under_request_storms(
        ops: list[tuple[str, int, int, int, int, float]], per_host: int, global_cap: int, loads: list[float]) -> None:
    policy = AdmissionPolicy(max_per_host=per_host, max_global=global_cap, rate_per_s=1.0, burst=4)
    adm = AdmissionController(policy)
    for host, load in zip(HOSTS, loads, strict=True):
        adm.update_host(host, HostLoad(cpu_pct=load, memory_pct=load, network_pct=load / 2, io_pct=load / 3))
    now_s, n, admitted_at = 0.0, 0, []
    for op, src, dst, vm, prio, cost in ops:
        now_s += 0.05
        if op == "request":
            n += 1
            c = HostLoad(cpu_pct=cost / 10, memory_pct=cost, network_pct=cost, io_pct=cost / 2)
            req = AdmissionRequest(migration_id=f"m{n}", vm_id=f"vm{vm}", source_host_id=HOSTS[src],
                                   destination_host_id=HOSTS[dst], cost=MigrationCost(source=c, destination=c),
                                   priority=prio)
            if adm.try_admit(req, now_s):
                admitted_at.append(now_s)
            else:
                adm.enqueue(req, now_s)
        elif op == "pop":
            admitted_at += [now_s] * len(adm.pop_admissible(now_s))
        elif op == "release" and adm.running:
            adm.release(sorted(adm.running)[vm % len(adm.running)])
        else:
            now_s += cost
        assert len(adm.running) <= global_cap
        assert all(adm.running_on(h) <= per_host for h in HOSTS)
        vms = [r.vm_id for r in adm.running.values()]
        assert len(vms) == len(set(vms)), "two concurrent migrations of one VM"
        for h in HOSTS:
            for resource in ("cpu", "memory", "network", "io"):
                assert adm.committed(h, resource) <= policy.ceiling_pct(resource) + 1e-6
    # token bucket: in any window of T seconds at most burst + rate * T admissions
    for i, start in enumerate(admitted_at):
        for j in range(i, len(admitted_at)):
            window = admitted_at[j] - start
            assert j - i + 1 <= policy.burst + policy.rate_per_s * window + 1e-6


def test_can_admit_does_not_change_state() -> None:
    adm = AdmissionController(AdmissionPolicy())
    c = HostLoad(cpu_pct=1, memory_pct=1, network_pct=1)
    req = AdmissionRequest(migration_id="m", vm_id="v", source_host_id="a", destination_host_id="b",
                           cost=MigrationCost(source=c, destination=c))
    assert adm.can_admit(req, 0.0) and adm.can_admit(req, 0.0)
    assert not adm.running
    assert adm.try_admit(req, 0.0) and not adm.can_admit(req, 0.0)
    assert math.isclose(adm.committed("b", "memory"), 1.0)

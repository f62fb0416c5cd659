"""Helpers for the migration tests: a synchronous driver over the simulated hypervisor."""

from __future__ import annotations

import math

from novacron.events import InMemoryEventLog, Recorder
from novacron.migration.controller import ControllerPolicy, MigrationController, MigrationRequest, drive_step
from novacron.migration.planner import LinkEstimate, MigrationPlan, VMMigrationProfile, plan_migration
from novacron.migration.protocol import MIB, MigrationCommand, MigrationType, PowerState
from sim.migration.hypervisor import SimHypervisor
from sim.migration.qemu_model import GuestProfile, StreamCalibration


class ManualClock:
    def __init__(self) -> None:
        self.t_s = 0.0

    def now_s(self) -> float:
        return self.t_s


def make_world(guest: GuestProfile, *, nic_bytes_s: float = 1e12, power: PowerState = PowerState.RUNNING,
               calibration: StreamCalibration | None = None) -> tuple[SimHypervisor, Recorder, ManualClock]:
    hv = SimHypervisor(nic_bytes_s={"a": nic_bytes_s, "b": nic_bytes_s},
                       calibration=calibration or StreamCalibration())
    hv.guests["vm"], hv.location["vm"], hv.power["vm"] = guest, "a", power
    clock = ManualClock()
    return hv, Recorder(InMemoryEventLog(), clock.now_s), clock


def make_controller(hv: SimHypervisor, recorder: Recorder, policy: ControllerPolicy, *,
                    force: MigrationType | None = None, vm_id: str = "vm") -> MigrationController:
    guest = hv.guests[vm_id]
    profile = VMMigrationProfile(vm_id=vm_id, memory_bytes=guest.memory_bytes, wws_bytes=guest.wws_bytes,
                                 dirty_rate_pages_s=guest.dirty_rate_pages_s, power_state=hv.power[vm_id],
                                 nonzero_bytes=guest.resident_bytes + guest.wws_bytes)
    bandwidth = (policy.bandwidth_mib_s or 1e6) * MIB
    link = LinkEstimate(bandwidth_bytes_s=min(bandwidth, hv.calibration.stream_cap_bytes_s),
                        stop_copy_bytes_s=hv.calibration.stop_copy_bytes_s)
    plan: MigrationPlan = plan_migration(profile, link, policy.downtime_ms, permit_postcopy=policy.permit_postcopy,
                                         force=force)
    request = MigrationRequest(migration_id=f"m-{vm_id}", vm=profile, source_host_id=hv.location[vm_id],
                               destination_host_id="b" if hv.location[vm_id] == "a" else "a")
    return MigrationController(request, plan, policy, recorder)


def drive(ctl: MigrationController, hv: SimHypervisor, clock: ManualClock, *, until_s: float = math.inf) -> None:
    """The driver loop of ``novacron.migration``, with a manual clock instead of SimPy."""
    ctl.admitted(clock.t_s)
    commands: list[MigrationCommand] = ctl.start(clock.t_s)
    while clock.t_s < until_s:
        commands = drive_step(ctl, hv, commands, clock.t_s)
        if ctl.copy_ended:
            return
        clock.t_s += hv.advance(ctl.vm_id, ctl.poll_interval_s)

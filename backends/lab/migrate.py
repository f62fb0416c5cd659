"""One real migration in the lab, end to end: boot the dirtying guest, plan, drive, check health.

Theory of operation
-------------------
``run_lab_migration`` is what the libvirt tests and ``novacron calibrate`` share. It defines and
starts the guest on the source host, waits for its dirtier's alive markers, asks the planner for
its prediction (the same ``plan_migration`` the simulation uses), then lets the core's
``MigrationController`` drive the libvirt hypervisor with ``drive_migration``. Afterwards it
judges the guest from the serial consoles (``novacron.guest_health``): on the destination after
a completed migration, on the source otherwise (an aborted or failed migration must leave the
guest running there, unharmed). With ``disk_mib`` the guest gets a local qcow2 disk holding a
seeded pattern (``backends.lab.disks``), the migration is a block migration (the request's
``disk_bytes`` make the controller ask for libvirt's non-shared-disk mode), and after a completed
one the destination's image is compared with the pattern byte for byte. Every event goes to one
in-memory log, ``GuestHealthChecked`` included, and optionally to ``events.parquet`` alone
(``events_path``) or to a run directory (``run_dir``: ``events.parquet`` + ``summary.json``,
opened by ``load_run`` and ``novacron report``). The guest is removed from both hosts at the end.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote

from backends.clock import MonotonicClock
from backends.lab.disks import (
    compare_disk,
    disk_path_in_host,
    disk_pattern,
    host_disk_file,
    prepare_disks,
    remove_disks,
)
from backends.lab.guest import domain_xml, resident_mib
from backends.lab.health import check_migrated_guest, read_console, wait_guest_ready
from backends.lab.lab import LabInfo
from backends.libvirt_hypervisor import HostDirectory, LibvirtHypervisor
from backends.real_driver import PollHook, drive_migration
from novacron.app.eventstore import write_events
from novacron.app.profiles import load_profile
from novacron.app.rundir import write_artefact_run
from novacron.events import InMemoryEventLog, Recorder
from novacron.guest_health import GuestHealth, GuestHealthChecked, assess_guest
from novacron.migration.calibration import CalibrationProfile
from novacron.migration.controller import ControllerPolicy, MigrationController, MigrationRequest
from novacron.migration.events import MigrationFinished
from novacron.migration.planner import MigrationPlan, VMMigrationProfile, link_from_profile, plan_migration
from novacron.migration.protocol import MIB, MigrationType

LAB_MIGRATION_URI = "tcp://127.0.0.1"
@dataclass(frozen=True, slots=True, kw_only=True)
class LabMigrationSpec:
    vm_id: str
    migration_type: MigrationType = MigrationType.LIVE
    memory_mib: int = 256
    dirty_mib: int = 64
    dirty_rate_pages_s: int = 2000
    bandwidth_mib_s: float | None = None
    downtime_limit_ms: float = 300.0
    policy: ControllerPolicy | None = None
    """Default: Nova's knobs with a constant downtime limit (one step) and a 0.1 s poll."""
    source_index: int = 0
    destination_index: int = 1
    disk_mib: int = 0
    """A local qcow2 disk of this many MiB, copied by block migration; 0: no disk."""
    disk_seed: int = 17


@dataclass(frozen=True, slots=True)
class LabMigrationResult:
    finished: MigrationFinished
    health: GuestHealth
    plan: MigrationPlan
    log: InMemoryEventLog
    location: str
    """Where the guest runs afterwards (host id), or "" if nowhere."""
    disk_check: str = ""
    """With a disk: "identical" when the destination's image equals the pattern byte for byte,
    else where it differs ("not checked" when the migration did not complete); "" without one."""


def default_policy(spec: LabMigrationSpec) -> ControllerPolicy:
    return ControllerPolicy(downtime_ms=spec.downtime_limit_ms, downtime_steps=1, bandwidth_mib_s=spec.bandwidth_mib_s,
                            poll_interval_s=0.1, completion_timeout_s_per_gib=60.0)


def vm_profile(spec: LabMigrationSpec) -> VMMigrationProfile:
    return VMMigrationProfile(vm_id=spec.vm_id, memory_bytes=spec.memory_mib * MIB,
                              wws_bytes=spec.dirty_mib * MIB if spec.dirty_rate_pages_s > 0 else 0,
                              dirty_rate_pages_s=float(spec.dirty_rate_pages_s),
                              nonzero_bytes=int((resident_mib(spec.memory_mib) + spec.dirty_mib) * MIB),
                              disk_bytes=spec.disk_mib * MIB)


def lab_plan(spec: LabMigrationSpec, profile: CalibrationProfile | None = None) -> MigrationPlan:
    """The planner's prediction under a calibration profile (default: the shipped default)."""
    bandwidth = None if spec.bandwidth_mib_s is None else spec.bandwidth_mib_s * MIB
    link = link_from_profile(profile or load_profile(), max_bandwidth_bytes_s=bandwidth)
    return plan_migration(vm_profile(spec), link, spec.downtime_limit_ms, force=spec.migration_type)


def _connect(lab: LabInfo, host_uris: Sequence[str] | None,
             migration_uris: Sequence[str | None] | None) -> tuple[HostDirectory, list[LibvirtHypervisor]]:
    """One hypervisor per host: the lab's own sockets, or the given URIs (``qemu+ssh://...``)."""
    directory = HostDirectory()
    uris = list(host_uris) if host_uris else [h.uri for h in lab.hosts]
    data_uris = list(migration_uris) if migration_uris else [LAB_MIGRATION_URI] * len(uris)
    hypervisors = [LibvirtHypervisor(f"host{i}", uri, directory, migration_uri=data_uri)
                   for i, (uri, data_uri) in enumerate(zip(uris, data_uris, strict=True))]
    return directory, hypervisors


def consoles_are_local(lab: LabInfo, host_uris: Sequence[str] | None) -> bool:
    """The guest's serial consoles can be read here: lab hosts, directly or through ssh."""
    if not host_uris:
        return True
    return all(str(h.socket_path) in unquote(uri) for h, uri in zip(lab.hosts, host_uris, strict=False))


NOT_JUDGED = GuestHealth(False, 0, -1, -1, ("not judged: the guest's serial console is on a remote host",))
REMOTE_BOOT_WAIT_S = 8.0
"""Without a readable console: how long to let the guest boot and start dirtying."""


def _remove_everywhere(hypervisors: list[LibvirtHypervisor], vm_id: str) -> None:
    for hv in hypervisors:
        with contextlib.suppress(Exception):  # a crashed host cannot answer; it has no VM left anyway
            if hv.has_vm(vm_id):
                hv.undefine_vm(vm_id)


def _judge(lab: LabInfo, spec: LabMigrationSpec, completed: bool, source_text_before: str) -> GuestHealth:
    source, destination = lab.hosts[spec.source_index], lab.hosts[spec.destination_index]
    if completed:
        return check_migrated_guest(source, destination, spec.vm_id)
    # Not moved: the guest must keep running on the source; judge the console written since.
    wait_guest_ready(source, spec.vm_id, min_alive=source_text_before.count("NOVACRON-ALIVE") + 2, timeout_s=8.0)
    text = read_console(source, spec.vm_id)
    return assess_guest(source_text_before, text[len(source_text_before):])


def run_lab_migration(lab: LabInfo, spec: LabMigrationSpec, *, on_poll: PollHook | None = None,
                      events_path: Path | None = None, migration_id: str | None = None,
                      host_uris: Sequence[str] | None = None,
                      migration_uris: Sequence[str | None] | None = None,
                      run_dir: Path | None = None) -> LabMigrationResult:
    """Migrate once between two hosts: the lab's (default) or any two libvirt URIs (``host_uris``,
    with ``migration_uris`` for the data stream; the guest's kernel and initramfs must exist at
    the same paths on those hosts). Guest health is judged only where the consoles are readable."""
    local_consoles = consoles_are_local(lab, host_uris)
    if spec.disk_mib and host_uris:
        raise ValueError(f"disk_mib={spec.disk_mib}: a guest disk is prepared on the lab's own hosts only")
    directory, hypervisors = _connect(lab, host_uris, migration_uris)
    source, destination = hypervisors[spec.source_index], hypervisors[spec.destination_index]
    clock = MonotonicClock()
    log = InMemoryEventLog()
    recorder = Recorder(log, clock.now_s)
    try:
        _remove_everywhere(hypervisors, spec.vm_id)
        pattern = b""
        if spec.disk_mib:
            pattern = disk_pattern(spec.disk_mib, spec.disk_seed)
            prepare_disks(lab.hosts[spec.source_index], lab.hosts[spec.destination_index], spec.vm_id, pattern)
        guest = lab.guest(spec.vm_id, memory_mib=spec.memory_mib, dirty_mib=spec.dirty_mib,
                          dirty_rate_pages_s=spec.dirty_rate_pages_s,
                          disk_path=disk_path_in_host(spec.vm_id) if spec.disk_mib else None)
        source.define_vm(domain_xml(guest, lab.image))
        if spec.migration_type is not MigrationType.COLD:
            source.start_vm(spec.vm_id)
            if not local_consoles:
                time.sleep(REMOTE_BOOT_WAIT_S)
            elif not wait_guest_ready(lab.hosts[spec.source_index], spec.vm_id, min_alive=1):
                raise RuntimeError(f"guest {spec.vm_id} did not print an alive marker on {source.host_id()}; "
                                   f"console: {read_console(lab.hosts[spec.source_index], spec.vm_id)[-300:]!r}")
        plan = lab_plan(spec)
        request = MigrationRequest(migration_id=migration_id or spec.vm_id, vm=vm_profile(spec),
                                   source_host_id=source.host_id(), destination_host_id=destination.host_id())
        controller = MigrationController(request, plan, spec.policy or default_policy(spec), recorder)
        console_before = read_console(lab.hosts[spec.source_index], spec.vm_id) if local_consoles else ""
        drive_migration(controller, source, clock, on_poll=on_poll)
        finished = log.of_type(MigrationFinished)[-1]
        completed = finished.outcome == "completed"
        if spec.migration_type is MigrationType.COLD:
            health = GuestHealth(True, 0, -1, -1, ())  # a shut-off guest has no console to judge
        elif not local_consoles:
            health = NOT_JUDGED
        else:
            health = _judge(lab, spec, completed, console_before)
        disk_check = ""
        if spec.disk_mib:
            disk_check = (compare_disk(host_disk_file(lab.hosts[spec.destination_index], spec.vm_id), pattern)
                          if completed else "not checked")
        location = next((hv.host_id() for hv in (destination, source) if _safe_has(hv, spec.vm_id)), "")
        recorder.emit(GuestHealthChecked, source=location or source.host_id(), vm_id=spec.vm_id,
                      migration_id=request.migration_id, healthy=health.healthy,
                      alive_markers_after=health.alive_markers_after,
                      last_alive_seq_before=health.last_alive_seq_before,
                      first_alive_seq_after=health.first_alive_seq_after, problem=health.describe())
        if events_path is not None:
            write_events(events_path, list(log))
        if run_dir is not None:
            write_artefact_run(run_dir, list(log), name=f"lab-migration-{spec.vm_id}", runtime="libvirt",
                               wall_s=clock.now_s(), description=f"one real {spec.migration_type.value} migration "
                               f"of the lab guest {spec.vm_id} ({spec.memory_mib} MiB, {spec.dirty_rate_pages_s} "
                               f"pages/s) between two libvirt hosts; not a scenario")
        return LabMigrationResult(finished, health, plan, log, location, disk_check)
    finally:
        _remove_everywhere(hypervisors, spec.vm_id)
        if spec.disk_mib:
            remove_disks(lab.hosts, spec.vm_id)
        directory.close()


def _safe_has(hv: LibvirtHypervisor, vm_id: str) -> bool:
    try:
        return hv.has_vm(vm_id) and hv.describe_vm(vm_id).power_state.value in ("running", "shutoff")
    except Exception:  # the host is down
        return False

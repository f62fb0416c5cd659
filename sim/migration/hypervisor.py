"""Simulated migrations: a ``Hypervisor`` over the QEMU model, for every host of the model.

Theory of operation
-------------------
``SimHypervisor`` implements ``novacron.ports.Hypervisor`` for every host of the model: it
keeps one ``QemuMigration`` per running job and shares each host's NIC equally among the
migrations leaving it and, separately, those entering it (a stream gets the smaller of its two
shares). ``advance(vm_id, max_s)`` steps a job's 100 ms windows until a dirty sync, the end of
the job, a destination crash or ``max_s``; the SimPy process then waits that long and polls,
so the controller sees every sync at the moment it happens.

A job with a crash time (``crash_at_s``: ``[migration] destination_crash_probability``, or a
``HostFailed`` of its source or destination) never completes: it fails at that time, or at its
switch-over if the copy gets there first -- a warm move's copy and a live move's stop-and-copy
are one step of the model, and a copy may run shorter than planned; the destination dies before
the guest resumes there (after a post-copy switch the guest is then lost). Shares are re-read at each
advance, i.e. they follow other migrations starting and ending within one poll interval.

The run's migration service (``sim.migration.service``) owns one ``SimHypervisor`` and runs
every migration -- the batch's and the rebalancer's -- through it with the core
``MigrationController`` and ``drive_step``, exactly as a real runtime would. The guest's
location here is the simulated host's view (where the guest runs after a completed copy, as
libvirt would report it); the run's allocation is the control plane's (``sim.allocation``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from novacron.migration.admission import AdmissionPolicy
from novacron.migration.config import MigrationConfig
from novacron.migration.config import policies as config_policies
from novacron.migration.controller import ControllerPolicy
from novacron.migration.protocol import (
    AbortMigration,
    ForceComplete,
    JobStats,
    JobStatus,
    MigrationCommand,
    MigrationType,
    PowerState,
    SetDowntimeLimit,
    SetMaxBandwidth,
    StartMigration,
    StartPostcopy,
    VMDescription,
)
from sim.migration.qemu_model import GuestProfile, QemuMigration, StreamCalibration

COLD_OVERHEAD_S = 2.0


@dataclass
class Job:
    start: StartMigration
    model: QemuMigration
    crash_at_s: float = math.inf
    crash_reason: str = "destination host crashed"
    error: str = ""
    clocked_s: float = 0.0
    """How much of the model's elapsed time the simulation clock has already slept; the setup
    time the model starts with is slept by the first ``advance``, like every later step."""


@dataclass
class SimHypervisor:
    """All hosts of the model behind the ``Hypervisor`` port (commands go to the source host)."""

    nic_bytes_s: dict[str, float]
    calibration: StreamCalibration
    guests: dict[str, GuestProfile] = field(default_factory=dict)
    power: dict[str, PowerState] = field(default_factory=dict)
    location: dict[str, str] = field(default_factory=dict)
    jobs: dict[str, Job] = field(default_factory=dict)
    crash_at_s: dict[str, float] = field(default_factory=dict)
    active: dict[str, Job] = field(default_factory=dict)
    """Jobs still moving data: the ones that share the NICs."""

    def host_id(self) -> str:
        return "sim"

    def describe_vm(self, vm_id: str) -> VMDescription:
        guest = self.guests[vm_id]
        return VMDescription(vm_id=vm_id, host_id=self.location[vm_id], memory_bytes=guest.memory_bytes,
                             vcpus=1, power_state=self.power[vm_id])

    def execute(self, command: MigrationCommand) -> None:
        if isinstance(command, StartMigration):
            self._start(command)
            return
        job = self.jobs[command.vm_id]
        m = job.model
        if isinstance(command, SetDowntimeLimit):
            m.downtime_limit_ms = command.downtime_limit_ms
        elif isinstance(command, SetMaxBandwidth):
            m.max_bandwidth_bytes_s = command.max_bandwidth_bytes_s
        elif isinstance(command, StartPostcopy):
            m.postcopy_requested = True
        elif isinstance(command, ForceComplete):
            m.switchover_requested = True
        elif isinstance(command, AbortMigration) and not m.finished:
            m.fail(JobStatus.CANCELLED)
            job.error = command.reason
            self.active.pop(command.vm_id, None)

    def _start(self, command: StartMigration) -> None:
        if command.vm_id in self.jobs and not self.jobs[command.vm_id].model.finished:
            raise RuntimeError(f"{command.vm_id} is already migrating")
        guest, p = self.guests[command.vm_id], command.params
        model = QemuMigration(guest=guest, downtime_limit_ms=p.downtime_limit_ms,
                              max_bandwidth_bytes_s=p.max_bandwidth_bytes_s, auto_converge=p.auto_converge,
                              xbzrle=p.xbzrle, xbzrle_cache_bytes=p.xbzrle_cache_bytes, calibration=self.calibration)
        model.paused = command.migration_type is MigrationType.WARM
        model.begin()
        job = Job(command, model, self.crash_at_s.pop(command.vm_id, math.inf))
        self.jobs[command.vm_id] = self.active[command.vm_id] = job

    def crash_host(self, host_id: str) -> None:
        """The host died: every running migration from or to it fails at its next step."""
        for job in self.active.values():
            if job.model.finished or host_id not in (job.start.source_host_id, job.start.destination_host_id):
                continue
            job.crash_at_s = min(job.crash_at_s, job.model.elapsed_s)
            if host_id == job.start.source_host_id:
                job.crash_reason = "source host crashed"


    def share_bytes_s(self, job: Job) -> float:
        src, dst = job.start.source_host_id, job.start.destination_host_id
        out = into = 0
        for other in self.active.values():
            out += other.start.source_host_id == src
            into += other.start.destination_host_id == dst
        return min(self.nic_bytes_s[src] / max(out, 1), self.nic_bytes_s[dst] / max(into, 1))

    def advance(self, vm_id: str, max_s: float) -> float:
        """Step the job until a sync, its end, a crash or ``max_s``; return the time it took."""
        job = self.jobs[vm_id]
        m = job.model
        if job.start.migration_type is MigrationType.COLD:
            took_s = self._cold(job)
            self.active.pop(vm_id, None)
            return took_s
        before_s, syncs = job.clocked_s, m.syncs
        share = self.share_bytes_s(job)
        while not m.finished and m.syncs == syncs and m.elapsed_s - before_s < max_s:
            if m.elapsed_s >= job.crash_at_s:
                self._crash(job, m.elapsed_s)
                break
            stepped_from_s = m.elapsed_s
            m.step(share)
            if m.status is JobStatus.COMPLETED and math.isfinite(job.crash_at_s):
                # The step was the switch-over (one step of the model) and the destination dies
                # before the guest resumes there: within it, or at its end if the copy got there first.
                self._crash(job, min(m.elapsed_s, max(job.crash_at_s, stepped_from_s)))
        if m.status is JobStatus.COMPLETED:
            self.location[vm_id] = job.start.destination_host_id
        if m.finished:
            self.active.pop(vm_id, None)
        job.clocked_s = m.elapsed_s
        return max(m.elapsed_s - before_s, 1e-6)

    def _cold(self, job: Job) -> float:
        m = job.model
        if m.finished:
            return 1e-6
        m.syncs = 0
        if math.isfinite(job.crash_at_s):  # the destination dies before the guest could start there
            self._crash(job, min(job.crash_at_s, COLD_OVERHEAD_S))
            return max(m.elapsed_s, 1e-6)
        m.elapsed_s = COLD_OVERHEAD_S
        m.downtime_ms = m.elapsed_s * 1000.0
        m.status = JobStatus.COMPLETED
        self.location[job.start.vm_id] = job.start.destination_host_id
        return m.elapsed_s

    @staticmethod
    def _crash(job: Job, at_s: float) -> None:
        """The job's destination (or source) died at ``at_s`` of the job's time: the job fails."""
        job.model.elapsed_s = at_s
        job.model.fail(JobStatus.FAILED)
        job.error = job.crash_reason

    def job_stats(self, vm_id: str) -> JobStats:
        job = self.jobs.get(vm_id)
        if job is None:
            return JobStats(vm_id=vm_id, status=JobStatus.NONE)
        m = job.model
        done = m.status is JobStatus.COMPLETED
        return JobStats(vm_id=vm_id, status=m.status, memory_total_bytes=m.guest.memory_bytes,
                        memory_processed_bytes=int(m.bytes_sent), memory_remaining_bytes=m.pending_bytes,
                        dirty_sync_count=m.syncs, dirty_rate_pages_s=m.dirty_rate_pages_s,
                        throughput_bytes_s=m.bandwidth_bytes_s,
                        downtime_ms=m.downtime_ms if done else None,
                        total_time_ms=m.elapsed_s * 1000.0 if m.finished else None,
                        setup_time_ms=m.calibration.setup_time_s(m.guest.memory_bytes) * 1000.0,
                        cpu_throttle_pct=m.throttle_pct,
                        postcopy_page_faults=int(m.postcopy_faults), switched_to_postcopy=m.switched_to_postcopy,
                        error=job.error)


def policies(cfg: MigrationConfig) -> tuple[ControllerPolicy, AdmissionPolicy]:
    return config_policies(cfg)

"""The core's ``Hypervisor`` port over libvirt-python: one connection per host.

Theory of operation
-------------------
Each :class:`LibvirtHypervisor` wraps one libvirt connection (``qemu:///system``,
``qemu+ssh://host/system``, or ``qemu:///system?socket=...`` for the lab's private daemons).
Hosts that can reach each other share a :class:`HostDirectory`, so a ``StartMigration``
addressed to the source can resolve the destination's connection.

libvirt's ``migrate3`` blocks for the whole migration (it runs Begin/Prepare/Perform/Finish/
Confirm, https://libvirt.org/migration.html), but the port promises that ``execute`` returns at
once: so each migration runs ``migrate3`` in its own worker thread, and ``job_stats`` polls
``virDomainGetJobStats`` on the source from the caller's thread (libvirt connections are
thread-safe). The libvirt knobs map one-to-one onto the controller's commands: flags LIVE,
POSTCOPY, AUTO_CONVERGE, COMPRESSED (xbzrle), NON_SHARED_DISK (block migration: the disks are
mirrored to images that must already exist on the destination) and the BANDWIDTH parameter at start;
``migrateSetMaxDowntime``, ``migrateSetMaxSpeed``, ``migrateStartPostCopy``, ``suspend``
(force-complete) and ``abortJob`` during the job. Warm migration is libvirt's non-live mode (the
source is paused for the copy), cold migration is ``OFFLINE|PERSIST_DEST`` of a shut-off domain.

libvirt's job statistics have no QEMU status field, so the status is derived: the job type
(bounded/unbounded = running) and the source domain's state (paused for migration = QEMU's
``device`` stop-and-copy, paused for post-copy = ``postcopy-active``). After the worker
returns, the final numbers come from ``jobStats(COMPLETED)`` on the destination domain; an
exception from ``migrate3`` becomes ``cancelled`` (our abort) or ``failed`` with the error text.

After a post-copy switch libvirt keeps no completed statistics on the destination, so the final
numbers of a post-copy migration (its downtime above all) come from the job-completed event
libvirt emits on the source (``libvirt_events``). Polling the source's QEMU for them raced the
source domain's removal and missed in about one lab run in four. An event that does not come
leaves the downtime unmeasured (None), never 0.
"""

from __future__ import annotations

import contextlib
import dataclasses
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import libvirt

from backends.libvirt_events import CompletedJobListener, start_event_loop
from novacron.migration import protocol

libvirt.registerErrorHandler(lambda _context, _error: None, None)  # errors arrive as exceptions

UNLIMITED_BANDWIDTH_MIB_S = (2**63 - 1) >> 20
"""libvirt's own "unlimited" migration speed (QEMU_DOMAIN_MIG_BANDWIDTH_MAX)."""
KIB = 1024
DOWNTIME_APPLY_TIMEOUT_S = 10.0
JOB_COMPLETED_EVENT_WAIT_S = 10.0
"""How long a finished migration waits for the source's job-completed event; it came 0-2 s after
QEMU's ``completed`` in the lab (libvirt emits it in the Confirm phase, before migrate3 returns)."""

_POWER_STATES = {
    libvirt.VIR_DOMAIN_RUNNING: protocol.PowerState.RUNNING,
    libvirt.VIR_DOMAIN_BLOCKED: protocol.PowerState.RUNNING,
    libvirt.VIR_DOMAIN_PAUSED: protocol.PowerState.PAUSED,
    libvirt.VIR_DOMAIN_PMSUSPENDED: protocol.PowerState.PAUSED,
    libvirt.VIR_DOMAIN_SHUTDOWN: protocol.PowerState.RUNNING,
    libvirt.VIR_DOMAIN_SHUTOFF: protocol.PowerState.SHUTOFF,
    libvirt.VIR_DOMAIN_CRASHED: protocol.PowerState.SHUTOFF,
}


class HostDirectory:
    """host id -> hypervisor, shared by the hosts that migrate to each other."""

    def __init__(self) -> None:
        self._hosts: dict[str, LibvirtHypervisor] = {}

    def add(self, hypervisor: LibvirtHypervisor) -> None:
        self._hosts[hypervisor.host_id()] = hypervisor

    def __getitem__(self, host_id: str) -> LibvirtHypervisor:
        try:
            return self._hosts[host_id]
        except KeyError:
            raise KeyError(f"unknown host {host_id!r}; known: {', '.join(sorted(self._hosts))}") from None

    def hosts(self) -> list[LibvirtHypervisor]:
        return list(self._hosts.values())

    def close(self) -> None:
        for hypervisor in self._hosts.values():
            hypervisor.close()


@dataclass
class _MigrationJob:
    """One migration started by ``execute``: the worker thread and what it left behind."""

    command: protocol.StartMigration
    started_s: float
    worker: threading.Thread | None = None
    destination_host_id: str | None = None
    error: str = ""
    error_code: int = 0
    aborted: bool = False
    finished_s: float | None = None
    final: protocol.JobStats | None = None
    pending_downtime_ms: float | None = None
    last_running: protocol.JobStats | None = None
    postcopy_seen: bool = False
    lock: threading.Lock = field(default_factory=threading.Lock)


def migration_flags(kind: protocol.MigrationType, params: protocol.MigrationParams, persistent: bool) -> int:
    flags = 0
    if kind is protocol.MigrationType.COLD:
        return int(libvirt.VIR_MIGRATE_OFFLINE | libvirt.VIR_MIGRATE_PERSIST_DEST | libvirt.VIR_MIGRATE_UNDEFINE_SOURCE)
    if kind in (protocol.MigrationType.LIVE, protocol.MigrationType.POSTCOPY):
        flags |= libvirt.VIR_MIGRATE_LIVE
    if kind is protocol.MigrationType.POSTCOPY or params.postcopy:
        flags |= libvirt.VIR_MIGRATE_POSTCOPY
    if params.auto_converge:
        flags |= libvirt.VIR_MIGRATE_AUTO_CONVERGE
    if params.xbzrle:
        flags |= libvirt.VIR_MIGRATE_COMPRESSED
    if params.copy_storage:
        flags |= libvirt.VIR_MIGRATE_NON_SHARED_DISK
    if persistent:
        flags |= libvirt.VIR_MIGRATE_PERSIST_DEST | libvirt.VIR_MIGRATE_UNDEFINE_SOURCE
    return flags


def migration_parameters(params: protocol.MigrationParams, migration_uri: str | None) -> dict[str, Any]:
    typed: dict[str, Any] = {}
    if migration_uri:
        typed[libvirt.VIR_MIGRATE_PARAM_URI] = migration_uri
    if params.max_bandwidth_bytes_s is not None:
        typed[libvirt.VIR_MIGRATE_PARAM_BANDWIDTH] = max(1, round(params.max_bandwidth_bytes_s / protocol.MIB))
    if params.xbzrle:
        typed[libvirt.VIR_MIGRATE_PARAM_COMPRESSION] = "xbzrle"
        typed[libvirt.VIR_MIGRATE_PARAM_COMPRESSION_XBZRLE_CACHE] = params.xbzrle_cache_bytes
    return typed


def job_stats_from_libvirt(vm_id: str, stats: Mapping[str, Any], status: protocol.JobStatus) -> protocol.JobStats:
    """Map libvirt's ``jobStats()`` dictionary onto the controller's observation."""
    done = status is protocol.JobStatus.COMPLETED
    downtime = stats.get("downtime")
    return protocol.JobStats(
        vm_id=vm_id, status=status,
        memory_total_bytes=int(stats.get("memory_total", 0)),
        memory_processed_bytes=int(stats.get("memory_processed", 0)),
        memory_remaining_bytes=int(stats.get("memory_remaining", 0)),
        dirty_sync_count=int(stats.get("memory_iteration", 0)),
        dirty_rate_pages_s=float(stats.get("memory_dirty_rate", 0)),
        throughput_bytes_s=float(stats.get("memory_bps", 0)),
        # while running, libvirt's "downtime" is QEMU's expected downtime; once done, the real one
        expected_downtime_ms=None if done or downtime is None else float(downtime),
        downtime_ms=float(downtime) if done and downtime is not None else None,
        total_time_ms=float(stats["time_elapsed"]) if done and "time_elapsed" in stats else None,
        setup_time_ms=float(stats["setup_time"]) if "setup_time" in stats else None,
        cpu_throttle_pct=float(stats.get("auto_converge_throttle", 0)),
        postcopy_page_faults=int(stats.get("memory_postcopy_requests", 0)),
        disk_total_bytes=int(stats.get("disk_total", 0)),
        disk_processed_bytes=int(stats.get("disk_processed", 0)),
    )


def with_disk_counters_from_polls(final: protocol.JobStats, last_poll: protocol.JobStats | None) -> protocol.JobStats:
    """libvirt 9.0's completed statistics carry no drive-mirror counters: after a 32 MiB block
    migration the destination reported ``disk_total`` 0 where every poll during the copy had shown
    33554432 (measured in the lab). The mirror is in step before the memory switch-over, so the
    last poll's disk counters are the copy's final ones."""
    if final.disk_total_bytes or last_poll is None or not last_poll.disk_total_bytes:
        return final
    return dataclasses.replace(final, disk_total_bytes=last_poll.disk_total_bytes,
                               disk_processed_bytes=last_poll.disk_processed_bytes)


class LibvirtHypervisor:
    """One host reached through libvirt; implements ``novacron.ports.Hypervisor``."""

    def __init__(self, host_id: str, uri: str, directory: HostDirectory, *,
                 migration_uri: str | None = None, connection: libvirt.virConnect | None = None) -> None:
        self._host_id = host_id
        self.uri = uri
        self.migration_uri = migration_uri
        """Where the QEMU stream reaches this host as a destination (``tcp://ADDR``); None lets
        libvirt use the host's name."""
        start_event_loop()  # before the connection opens: earlier connections get no events
        self.conn = connection or libvirt.open(uri)
        self._completed_jobs = CompletedJobListener(self.conn)
        self.directory = directory
        self._jobs: dict[str, _MigrationJob] = {}
        directory.add(self)

    def host_id(self) -> str:
        return self._host_id

    def close(self) -> None:
        for job in self._jobs.values():
            if job.worker is not None:
                job.worker.join(timeout=30)
        self._completed_jobs.close()
        with contextlib.suppress(libvirt.libvirtError):
            self.conn.close()

    # -- plain VM operations ------------------------------------------------------------------

    def domain(self, vm_id: str) -> libvirt.virDomain:
        try:
            return self.conn.lookupByName(vm_id)
        except libvirt.libvirtError as exc:
            if exc.get_error_code() == libvirt.VIR_ERR_NO_DOMAIN:
                raise KeyError(f"no VM {vm_id!r} on {self._host_id}") from None
            raise

    def has_vm(self, vm_id: str) -> bool:
        try:
            self.domain(vm_id)
        except KeyError:
            return False
        return True

    def list_vms(self) -> list[str]:
        return sorted(d.name() for d in self.conn.listAllDomains())

    def define_vm(self, domain_xml: str) -> str:
        return str(self.conn.defineXML(domain_xml).name())

    def start_vm(self, vm_id: str) -> None:
        self.domain(vm_id).create()

    def stop_vm(self, vm_id: str, *, graceful: bool = False) -> None:
        dom = self.domain(vm_id)
        if dom.isActive():
            dom.shutdown() if graceful else dom.destroy()

    def suspend_vm(self, vm_id: str) -> None:
        self.domain(vm_id).suspend()

    def resume_vm(self, vm_id: str) -> None:
        self.domain(vm_id).resume()

    def undefine_vm(self, vm_id: str) -> None:
        dom = self.domain(vm_id)
        if dom.isActive():
            dom.destroy()
        if dom.isPersistent():
            dom.undefine()

    def power_state(self, vm_id: str) -> protocol.PowerState:
        try:
            state, _reason = self.domain(vm_id).state()
        except KeyError:
            return protocol.PowerState.ABSENT
        return _POWER_STATES.get(state, protocol.PowerState.SHUTOFF)

    def describe_vm(self, vm_id: str) -> protocol.VMDescription:
        """The VM on this host or, after it migrated away, on whichever host of the directory holds
        it (the controller keeps addressing the source, as with the simulated hypervisor)."""
        if not self.has_vm(vm_id):
            for peer in self.directory.hosts():
                if peer is not self and peer.has_vm(vm_id):
                    return peer.describe_vm(vm_id)
        dom = self.domain(vm_id)
        _state, max_memory_kib, _memory_kib, vcpus, _cpu_time = dom.info()
        return protocol.VMDescription(vm_id=vm_id, host_id=self._host_id, memory_bytes=int(max_memory_kib) * KIB,
                             vcpus=int(vcpus), power_state=self.power_state(vm_id))

    # -- the migration port ---------------------------------------------------------------------

    def execute(self, command: protocol.MigrationCommand) -> None:
        if isinstance(command, protocol.StartMigration):
            self._start_migration(command)
        elif isinstance(command, protocol.AbortMigration):
            self._abort(command.vm_id)
        elif isinstance(command, protocol.SetDowntimeLimit):
            job = self._jobs.get(command.vm_id)
            if job is not None:
                job.pending_downtime_ms = command.downtime_limit_ms
            self._adjust(command.vm_id, lambda dom: dom.migrateSetMaxDowntime(round(command.downtime_limit_ms)))
        elif isinstance(command, protocol.SetMaxBandwidth):
            speed = (UNLIMITED_BANDWIDTH_MIB_S if command.max_bandwidth_bytes_s is None
                     else max(1, round(command.max_bandwidth_bytes_s / protocol.MIB)))
            self._adjust(command.vm_id, lambda dom: dom.migrateSetMaxSpeed(speed))
        elif isinstance(command, protocol.StartPostcopy):
            self._adjust(command.vm_id, lambda dom: dom.migrateStartPostCopy())
            job = self._jobs.get(command.vm_id)
            if job is not None and job.finished_s is None:
                job.postcopy_seen = True  # QEMU switches at its next iteration; a poll may miss it
        elif isinstance(command, protocol.ForceComplete):
            self._adjust(command.vm_id, lambda dom: dom.suspend())  # nothing dirties: the copy converges
        else:  # pragma: no cover - the union is closed
            raise TypeError(f"unknown migration command {command!r}")

    def _adjust(self, vm_id: str, change: Callable[[libvirt.virDomain], object]) -> None:
        """Apply a change to a running migration; a no-op once the job has ended (the controller
        may decide on a poll taken just before the end, as with QEMU itself)."""
        job = self._jobs.get(vm_id)
        if job is None or job.finished_s is not None:
            return
        try:
            change(self.domain(vm_id))
        except KeyError:
            return  # the domain left this host: the migration has just completed
        except libvirt.libvirtError as exc:
            if exc.get_error_code() != libvirt.VIR_ERR_OPERATION_INVALID or job.worker is None:
                raise
            job.worker.join(0.5)  # "no job active": it ended between the poll and this command

    def _start_migration(self, command: protocol.StartMigration) -> None:
        previous = self._jobs.get(command.vm_id)
        if previous is not None and previous.finished_s is None:
            raise RuntimeError(f"{command.vm_id} is already migrating")
        destination = self.directory[command.destination_host_id]
        dom = self.domain(command.vm_id)
        persistent = bool(dom.isPersistent())
        flags = migration_flags(command.migration_type, command.params, persistent)
        typed = migration_parameters(command.params, destination.migration_uri)
        self._completed_jobs.forget(command.vm_id)
        job = _MigrationJob(command=command, started_s=time.monotonic(),
                            pending_downtime_ms=command.params.downtime_limit_ms)
        if command.migration_type is not protocol.MigrationType.COLD:
            with contextlib.suppress(libvirt.libvirtError):  # applied again once the job runs
                dom.migrateSetMaxDowntime(round(command.params.downtime_limit_ms))
        job.worker = threading.Thread(target=self._run_migration, args=(job, destination, typed, flags),
                                      name=f"migrate-{command.vm_id}", daemon=True)
        self._jobs[command.vm_id] = job
        job.worker.start()

    def _run_migration(self, job: _MigrationJob, destination: LibvirtHypervisor,
                       typed: dict[str, Any], flags: int) -> None:
        # The worker uses its own connections: while migrate3 blocked on the shared connection,
        # other calls on it (virDomainGetState) were seen to hang in the client library.
        source_conn = destination_conn = None
        try:
            source_conn = libvirt.open(self.uri)
            destination_conn = libvirt.open(destination.uri)
            dom = source_conn.lookupByName(job.command.vm_id)
            dom.migrate3(destination_conn, typed, flags)
        except libvirt.libvirtError as exc:
            with job.lock:
                job.error, job.error_code = str(exc), int(exc.get_error_code() or 0)
        else:
            with job.lock:
                job.destination_host_id = destination.host_id()
        finally:
            for conn in (source_conn, destination_conn):
                if conn is not None:
                    with contextlib.suppress(libvirt.libvirtError):
                        conn.close()
            with job.lock:
                job.finished_s = time.monotonic()

    def _abort(self, vm_id: str) -> None:
        job = self._jobs.get(vm_id)
        if job is None or job.finished_s is not None:
            return
        job.aborted = True
        with contextlib.suppress(libvirt.libvirtError):  # the job may have ended meanwhile
            self.domain(vm_id).abortJob()

    def wait_finished(self, vm_id: str, timeout_s: float) -> bool:
        job = self._jobs.get(vm_id)
        if job is None or job.worker is None:
            return True
        job.worker.join(timeout_s)
        return not job.worker.is_alive()

    def job_stats(self, vm_id: str) -> protocol.JobStats:
        job = self._jobs.get(vm_id)
        if job is None:
            return protocol.JobStats(vm_id=vm_id, status=protocol.JobStatus.NONE)
        with job.lock:
            finished = job.finished_s is not None
        if finished:
            if job.final is None:
                job.final = self._final_stats(vm_id, job)
            return job.final
        return self._running_stats(vm_id, job)

    def _running_stats(self, vm_id: str, job: _MigrationJob) -> protocol.JobStats:
        try:
            dom = self.domain(vm_id)
            stats = dom.jobStats()
            state, reason = dom.state()
        except (KeyError, libvirt.libvirtError):
            return self._stats_without_source(vm_id, job)
        if stats.get("type", libvirt.VIR_DOMAIN_JOB_NONE) == libvirt.VIR_DOMAIN_JOB_NONE:
            return self._stats_without_source(vm_id, job)
        self._apply_pending_downtime(dom, job)
        status = protocol.JobStatus.ACTIVE
        if state == libvirt.VIR_DOMAIN_PAUSED and reason == libvirt.VIR_DOMAIN_PAUSED_POSTCOPY:
            status = protocol.JobStatus.POSTCOPY_ACTIVE
            job.postcopy_seen = True
        elif state == libvirt.VIR_DOMAIN_PAUSED or job.command.migration_type is protocol.MigrationType.WARM:
            status = protocol.JobStatus.DEVICE  # paused by the migration (or warm: paused for the whole copy)
        job.last_running = dataclasses.replace(job_stats_from_libvirt(vm_id, stats, status),
                                               switched_to_postcopy=job.postcopy_seen)
        return job.last_running

    @staticmethod
    def _stats_without_source(vm_id: str, job: _MigrationJob) -> protocol.JobStats:
        """No job (or no domain) on the source while migrate3 runs. Before the job starts:
        setup. After the source's job ended but before migrate3 returned (Finish/Confirm take a
        while): the switch-over, QEMU's "device" state. An abort in progress is not a
        switch-over: keep reporting the last status."""
        if job.last_running is None:
            return protocol.JobStats(vm_id=vm_id, status=protocol.JobStatus.SETUP)
        if job.aborted:
            return job.last_running
        return dataclasses.replace(job.last_running, status=protocol.JobStatus.DEVICE)

    def _apply_pending_downtime(self, dom: libvirt.virDomain, job: _MigrationJob) -> None:
        """libvirt may reset QEMU's migration parameters when the job begins: set the limit again."""
        if job.pending_downtime_ms is None or job.command.migration_type is protocol.MigrationType.COLD:
            return
        with contextlib.suppress(libvirt.libvirtError):
            dom.migrateSetMaxDowntime(round(job.pending_downtime_ms))
            job.pending_downtime_ms = None

    def _unfinished_stats(self, vm_id: str, job: _MigrationJob, wall_ms: float) -> protocol.JobStats:
        """An aborted or failed job keeps the numbers it reached: libvirt's statistics of the
        ended job on the source (it keeps them for failed and cancelled jobs too) or, if the
        source cannot answer (its host died), the last poll's; the time is migrate3's wall time."""
        aborted = job.aborted or job.error_code == libvirt.VIR_ERR_OPERATION_ABORTED
        status = protocol.JobStatus.CANCELLED if aborted else protocol.JobStatus.FAILED
        last = job.last_running or protocol.JobStats(vm_id=vm_id, status=status)
        try:
            ended = job_stats_from_libvirt(vm_id, self.domain(vm_id).jobStats(
                libvirt.VIR_DOMAIN_JOB_STATS_COMPLETED), status)
        except (KeyError, libvirt.libvirtError):
            ended = last
        best = ended if ended.memory_processed_bytes >= last.memory_processed_bytes else last
        return dataclasses.replace(best, status=status, total_time_ms=wall_ms, downtime_ms=None,
                                   expected_downtime_ms=None, error=job.error or "migration failed",
                                   dirty_sync_count=max(best.dirty_sync_count, last.dirty_sync_count),
                                   switched_to_postcopy=job.postcopy_seen)

    def _final_stats(self, vm_id: str, job: _MigrationJob) -> protocol.JobStats:
        wall_ms = ((job.finished_s or job.started_s) - job.started_s) * 1000.0
        if job.destination_host_id is None:
            return self._unfinished_stats(vm_id, job, wall_ms)
        try:
            stats = self.directory[job.destination_host_id].domain(vm_id).jobStats(
                libvirt.VIR_DOMAIN_JOB_STATS_COMPLETED)
        except (KeyError, libvirt.libvirtError):
            stats = {}
        if job.command.migration_type is protocol.MigrationType.COLD:
            return protocol.JobStats(vm_id=vm_id, status=protocol.JobStatus.COMPLETED, total_time_ms=wall_ms,
                                     downtime_ms=wall_ms)
        if not stats.get("time_elapsed"):
            # No completed statistics on the destination (post-copy): the source's job-completed
            # event has them. Without it, the last poll's numbers and migrate3's wall time, and no
            # downtime (unmeasured, never 0).
            stats = self._completed_jobs.take(vm_id, JOB_COMPLETED_EVENT_WAIT_S) or {}
        if not stats.get("time_elapsed"):
            last = job.last_running or protocol.JobStats(vm_id=vm_id, status=protocol.JobStatus.COMPLETED)
            downtime = wall_ms if job.command.migration_type is protocol.MigrationType.WARM else None
            return dataclasses.replace(last, status=protocol.JobStatus.COMPLETED, total_time_ms=wall_ms,
                                       downtime_ms=downtime, expected_downtime_ms=None,
                                       switched_to_postcopy=job.postcopy_seen)
        switched = job.postcopy_seen or int(stats.get("memory_postcopy_requests", 0)) > 0
        final = dataclasses.replace(job_stats_from_libvirt(vm_id, stats, protocol.JobStatus.COMPLETED),
                                    switched_to_postcopy=switched)
        return with_disk_counters_from_polls(final, job.last_running)

"""The language between the migration controller and a hypervisor: commands out, observations in.

Theory of operation
-------------------
The controller (``controller.py``) is a sans-I/O state machine in the style of h11 and
etcd-io/raft. A runtime *driver* owns the loop::

    commands = controller.start(now_s)
    while not controller.done:
        for command in commands:
            hypervisor.execute(command)          # non-blocking: starts or adjusts the job
        wait(controller.poll_interval_s)         # SimPy timeout, or asyncio.sleep for real
        commands = controller.observe(hypervisor.job_stats(vm_id), now_s)

Commands mirror what QEMU's QMP and libvirt expose (``migrate`` with capabilities and
parameters, ``migrate-set-parameters downtime-limit / max-bandwidth``, ``migrate-start-postcopy``,
``migrate_cancel``; libvirt ``migrate3``, ``migrateSetMaxDowntime``, ``migrateSetMaxSpeed``,
``migrateStartPostCopy``, ``abortJob``, ``suspend``). Observations mirror ``query-migrate`` and
libvirt ``jobStats()``: status, bytes processed / remaining / total, dirty-sync count, dirty
rate, throughput, expected downtime, and (once completed) the downtime and total time.

All sizes are bytes, rates bytes/s or pages/s, times as named. Capabilities (auto-converge,
xbzrle, post-copy) are fixed at ``StartMigration`` because QEMU refuses to change them while a
migration runs; the limits (downtime, bandwidth) can change at any time.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum

PAGE_SIZE_BYTES = 4096
MIB = 1024 * 1024
GIB = 1024 * MIB


class MigrationType(Enum):
    """How a VM moves. ``cold``: it is shut off (only its definition and disks move); ``warm``:
    suspended, memory copied, resumed on the destination; ``live``: QEMU pre-copy; ``postcopy``:
    pre-copy first, then the destination runs and pulls the rest on page faults."""

    COLD = "cold"
    WARM = "warm"
    LIVE = "live"
    POSTCOPY = "postcopy"


class PowerState(Enum):
    RUNNING = "running"
    PAUSED = "paused"
    SHUTOFF = "shutoff"
    ABSENT = "absent"


class JobStatus(Enum):
    """QEMU ``query-migrate`` statuses (the subset a controller reacts to)."""

    NONE = "none"
    SETUP = "setup"
    ACTIVE = "active"
    DEVICE = "device"  # stop-and-copy: source paused, final pages and device state in flight
    POSTCOPY_ACTIVE = "postcopy-active"
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


TERMINAL_JOB_STATUSES = frozenset({JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED})


@dataclass(frozen=True, slots=True, kw_only=True)
class VMDescription:
    """What a hypervisor reports about a VM before a migration is planned."""

    vm_id: str
    host_id: str
    memory_bytes: int
    vcpus: int
    power_state: PowerState
    disk_bytes: int = 0
    """Bytes of local disk that must be copied (0 with shared storage)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class MigrationParams:
    """QEMU capabilities and parameters set before ``migrate`` (QMP ``migrate-set-*``)."""

    downtime_limit_ms: float = 300.0
    """QEMU ``downtime-limit``; QEMU 7.2 default 300 ms (LAB.md)."""
    max_bandwidth_bytes_s: float | None = 128.0 * MIB
    """QEMU ``max-bandwidth``; QEMU's default is 128 MiB/s, libvirt's is unlimited (``None``)."""
    auto_converge: bool = False
    xbzrle: bool = False
    xbzrle_cache_bytes: int = 64 * MIB
    postcopy: bool = False
    """The ``postcopy-ram`` capability: lets the controller switch later with ``StartPostcopy``."""
    copy_storage: bool = False
    """Block migration: the VM's local disks are copied beside its memory (libvirt's
    ``VIR_MIGRATE_NON_SHARED_DISK``, QEMU's drive-mirror over NBD); the destination's disk images
    must already exist with the same virtual size. False: shared storage, only memory moves."""


# ----------------------------------------------------------------------------------------------
# Commands: controller -> hypervisor


@dataclass(frozen=True, slots=True, kw_only=True)
class StartMigration:
    vm_id: str
    source_host_id: str
    destination_host_id: str
    migration_type: MigrationType
    params: MigrationParams = field(default_factory=MigrationParams)


@dataclass(frozen=True, slots=True, kw_only=True)
class SetDowntimeLimit:
    """QMP ``migrate-set-parameters downtime-limit`` / libvirt ``migrateSetMaxDowntime``."""

    vm_id: str
    downtime_limit_ms: float


@dataclass(frozen=True, slots=True, kw_only=True)
class SetMaxBandwidth:
    """QMP ``migrate-set-parameters max-bandwidth`` / libvirt ``migrateSetMaxSpeed``."""

    vm_id: str
    max_bandwidth_bytes_s: float | None
    """``None``: unlimited."""


@dataclass(frozen=True, slots=True, kw_only=True)
class StartPostcopy:
    """QMP ``migrate-start-postcopy`` / libvirt ``migrateStartPostCopy``."""

    vm_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class ForceComplete:
    """Nova's force-complete without post-copy: pause the source so the copy finishes."""

    vm_id: str


@dataclass(frozen=True, slots=True, kw_only=True)
class AbortMigration:
    """QMP ``migrate_cancel`` / libvirt ``abortJob``: the VM keeps running on the source."""

    vm_id: str
    reason: str


MigrationCommand = StartMigration | SetDowntimeLimit | SetMaxBandwidth | StartPostcopy | ForceComplete | AbortMigration


# ----------------------------------------------------------------------------------------------
# Observations: hypervisor -> controller


@dataclass(frozen=True, slots=True, kw_only=True)
class JobStats:
    """One poll of the migration job (``query-migrate`` / ``jobStats()``)."""

    vm_id: str
    status: JobStatus
    memory_total_bytes: int = 0
    """Guest RAM to migrate (``ram.total``)."""
    memory_processed_bytes: int = 0
    """Bytes put on the wire so far (``ram.transferred``), compression applied."""
    memory_remaining_bytes: int = 0
    """Dirty bytes still to send as of the last sync (``ram.remaining``)."""
    dirty_sync_count: int = 0
    dirty_rate_pages_s: float = 0.0
    throughput_bytes_s: float = 0.0
    expected_downtime_ms: float | None = None
    downtime_ms: float | None = None
    """Only once completed: how long the guest was paused."""
    total_time_ms: float | None = None
    setup_time_ms: float | None = None
    cpu_throttle_pct: float = 0.0
    postcopy_page_faults: int = 0
    switched_to_postcopy: bool = False
    """The job entered post-copy at some point (QEMU ``postcopy-active`` was seen; libvirt reports
    it with the ``VIR_DOMAIN_EVENT_SUSPENDED_POSTCOPY`` event): a poll may miss a short phase."""
    disk_total_bytes: int = 0
    """Block migration only: the bytes of local disk to copy (libvirt ``disk_total``)."""
    disk_processed_bytes: int = 0
    """Block migration only: disk bytes copied so far, writes sent again included (``disk_processed``)."""
    error: str = ""
    """Why the job failed (for example ``destination host crashed``)."""

    @property
    def terminal(self) -> bool:
        return self.status in TERMINAL_JOB_STATUSES

"""Migration events: every phase change, command, round and outcome, with the planner's prediction."""

from __future__ import annotations

from novacron.events import Event, event


@event
class MigrationRequested(Event):
    migration_id: str
    vm_id: str
    from_host_id: str
    to_host_id: str
    migration_type: str
    memory_bytes: int
    priority: int


@event
class MigrationQueued(Event):
    migration_id: str
    vm_id: str
    reason: str


@event
class MigrationAdmitted(Event):
    migration_id: str
    vm_id: str
    queue_wait_s: float
    running_on_source: int
    running_on_destination: int
    running_global: int


@event
class MigrationPhaseChanged(Event):
    migration_id: str
    vm_id: str
    from_phase: str
    phase: str
    round_index: int


@event
class MigrationCommandIssued(Event):
    migration_id: str
    vm_id: str
    command: str
    detail: str


@event
class MigrationRoundCompleted(Event):
    migration_id: str
    vm_id: str
    round_index: int
    round_bytes: int
    round_duration_ms: float
    remaining_bytes: int
    dirty_rate_pages_s: float
    throughput_bytes_s: float


@event
class MigrationFinished(Event):
    """One row per migration: what was asked, what the planner said, what happened.

    ``migration_type`` is the type that ran (a live migration switched to post-copy counts as
    ``postcopy``; ``predicted_type`` is the planner's). ``dirty_syncs`` is QEMU's dirty-sync count
    (setup sync + one per pre-copy round + the final sync) and ``predicted_rounds`` predicts it.
    ``rounds_bytes`` / ``rounds_durations_ms`` are per pre-copy round as the controller saw them
    (the last one includes the stop-and-copy). ``bandwidth_bytes_s`` is the last throughput seen.
    ``vm_lost`` only after a post-copy switch whose destination then failed.

    It is the migration's one terminal event, whatever the outcome: a request cancelled before
    it started (no room could be claimed) and a copy whose move the control plane refused both
    end here with ``outcome="aborted"`` and the ``reason``. ``downtime_ms`` is NaN when the
    hypervisor did not measure it (never a made-up 0).
    """

    migration_id: str
    vm_id: str
    from_host_id: str
    to_host_id: str
    migration_type: str
    outcome: str
    reason: str
    memory_bytes: int
    wws_bytes: int
    dirty_rate_pages_s: float
    bandwidth_bytes_s: float
    downtime_limit_ms: float
    downtime_ms: float
    total_time_ms: float
    bytes_sent: int
    dirty_syncs: int
    rounds_bytes: tuple[int, ...]
    rounds_durations_ms: tuple[float, ...]
    switched_to_postcopy: bool
    auto_converge: bool
    xbzrle: bool
    cpu_throttle_pct: float
    postcopy_page_faults: int
    vm_lost: bool
    predicted_type: str
    predicted_converges: bool
    predicted_total_time_ms: float
    predicted_downtime_ms: float
    predicted_rounds: int
    predicted_bytes: int


@event
class MigrationStorageCopied(Event):
    """A block migration's disk copy (libvirt's non-shared-disk mode), emitted just before its
    ``MigrationFinished`` by the real runtime: ``disk_bytes`` the request's local disk,
    ``disk_total_bytes`` what the hypervisor counted to copy, ``disk_sent_bytes`` what it sent
    (the guest's writes during the copy sent again included). The simulation's live migrations
    assume shared storage and emit none."""

    migration_id: str
    vm_id: str
    outcome: str
    disk_bytes: int
    disk_total_bytes: int
    disk_sent_bytes: int

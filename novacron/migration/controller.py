"""The migration controller: a sans-I/O state machine with OpenStack Nova's libvirt knobs.

Theory of operation
-------------------
One controller runs one migration. It receives ``JobStats`` observations and the time, moves
through ``MIGRATION_LIFECYCLE`` and returns commands for the hypervisor (see ``protocol.py``).
The knobs follow Nova's libvirt driver (``nova/virt/libvirt/migration.py``, options in
``[libvirt]``):

* ``live_migration_downtime`` / ``_steps`` / ``_delay``: the downtime limit starts at
  ``downtime / steps`` and rises linearly to ``downtime`` over ``steps`` steps, step ``i`` at
  ``i x delay x data_gib`` seconds (data at least 2 GiB, as Nova counts it).
* ``live_migration_completion_timeout`` (seconds per GiB of the migration's data, see
  ``nova_data_gib``: the guest's memory counted as at least 2 GiB, so a 256 MiB guest with the
  default 800 s/GiB is aborted after 1,600 s, not 200 s; Nova truncates the product to whole
  seconds and measures from the start of its monitor loop) with
  ``live_migration_timeout_action`` ``abort`` or ``force_complete`` (post-copy switch if
  permitted, else pause the guest so the copy ends).
* ``live_migration_permit_post_copy``: switch when a round shrinks the remaining data by less
  than 10 % (Nova's ``should_switch_to_postcopy``).
* ``live_migration_permit_auto_converge`` (not used when post-copy is permitted, as in Nova),
  xbzrle compression, ``live_migration_bandwidth``.

When the runtime commits moves through a control plane (``awaits_commit``), a completed copy
stops in ``committing``: the runtime asks the control plane and reports its answer with
``commit_decided``, which ends the migration ``completed`` or, if the move was refused (the VM
stopped or moved meanwhile, the destination failed), ``aborted``. Either way the migration has
exactly one terminal event, ``MigrationFinished``, carrying its true outcome. A figure the
hypervisor could not measure (a downtime after post-copy without statistics) is NaN, never 0.

Rounds are counted from the dirty-sync counter: a poll that sees it rise closes a round, whose
bytes are the bytes processed since the previous round closed. The simulated hypervisor is
polled at every sync, so its rounds are exact; a real one is polled every
``poll_interval_s``, which merges rounds shorter than that.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from novacron.migration.events import (
    MigrationCommandIssued,
    MigrationFinished,
    MigrationPhaseChanged,
    MigrationRequested,
    MigrationRoundCompleted,
    MigrationStorageCopied,
)
from novacron.migration.lifecycle import MIGRATION_LIFECYCLE, TERMINAL_PHASES, MigrationPhase
from novacron.migration.planner import MigrationPlan, VMMigrationProfile
from novacron.migration.protocol import (
    GIB,
    MIB,
    AbortMigration,
    ForceComplete,
    JobStats,
    JobStatus,
    MigrationCommand,
    MigrationParams,
    MigrationType,
    SetDowntimeLimit,
    StartMigration,
    StartPostcopy,
)
from novacron.ports import EventSink, Hypervisor

P = MigrationPhase


def nova_data_gib(memory_bytes: int, disk_bytes: int = 0) -> float:
    """Nova's ``LibvirtDriver._live_migration_data_gb``: the guest's memory in GiB, at least 2, plus
    each block-migrated disk, also at least 2 GiB. Both the downtime steps and the completion
    timeout scale with it."""
    disk_gib = max(disk_bytes / GIB, 2.0) if disk_bytes > 0 else 0.0
    return max(memory_bytes / GIB, 2.0) + disk_gib


@dataclass(frozen=True, slots=True, kw_only=True)
class ControllerPolicy:
    """Nova ``[libvirt]`` live-migration options (defaults are Nova's)."""

    downtime_ms: float = 500.0
    downtime_steps: int = 10
    downtime_delay_s_per_gib: float = 75.0
    completion_timeout_s_per_gib: float = 800.0
    timeout_action: str = "abort"
    permit_postcopy: bool = False
    permit_auto_converge: bool = False
    xbzrle: bool = False
    bandwidth_mib_s: float | None = None
    poll_interval_s: float = 0.5
    postcopy_min_progress_pct: float = 10.0

    def completion_timeout_s(self, memory_bytes: int, disk_bytes: int = 0) -> float:
        """Nova: ``int(live_migration_completion_timeout * data_gb)`` seconds (0: no timeout)."""
        return float(int(self.completion_timeout_s_per_gib * nova_data_gib(memory_bytes, disk_bytes)))

    def downtime_schedule(self, memory_bytes: int, disk_bytes: int = 0) -> list[tuple[float, float]]:
        """Nova's ``downtime_steps``: (seconds after start, downtime limit in ms)."""
        data_gib = nova_data_gib(memory_bytes, disk_bytes)
        delay_s = self.downtime_delay_s_per_gib * data_gib
        steps = max(self.downtime_steps, 1)
        base = self.downtime_ms / steps
        offset = (self.downtime_ms - base) / steps
        return [(delay_s * i, base + offset * i) for i in range(steps + 1)]


@dataclass(frozen=True, slots=True, kw_only=True)
class MigrationRequest:
    migration_id: str
    vm: VMMigrationProfile
    source_host_id: str
    destination_host_id: str
    priority: int = 0


@dataclass
class MigrationController:
    request: MigrationRequest
    plan: MigrationPlan
    policy: ControllerPolicy
    sink: EventSink
    phase: MigrationPhase = P.REQUESTED
    round_index: int = 0
    started_s: float = math.nan
    round_bytes: list[int] = field(default_factory=list)
    round_durations_ms: list[float] = field(default_factory=list)
    switched_to_postcopy: bool = False
    outcome_reason: str = ""
    last_stats: JobStats | None = None
    _schedule: list[tuple[float, float]] = field(default_factory=list)
    _last_sync: int = 0
    _round_started_s: float = 0.0
    _round_start_bytes: int = 0
    _remaining_history: list[int] = field(default_factory=list)
    _timeout_fired: bool = False
    _postcopy_requested: bool = False
    awaits_commit: bool = False
    """A completed copy waits in ``committing`` for ``commit_decided`` (a control plane's answer)."""
    _copied_stats: JobStats | None = None

    def __post_init__(self) -> None:
        r = self.request
        self.sink.emit(MigrationRequested, source="migration", migration_id=r.migration_id, vm_id=r.vm.vm_id,
                       from_host_id=r.source_host_id, to_host_id=r.destination_host_id,
                       migration_type=self.plan.migration_type.value, memory_bytes=r.vm.memory_bytes,
                       priority=r.priority)

    @property
    def vm_id(self) -> str:
        return self.request.vm.vm_id

    @property
    def done(self) -> bool:
        return self.phase in TERMINAL_PHASES

    @property
    def copy_ended(self) -> bool:
        """Nothing left to poll: the migration ended, or its copy did and the commit is pending."""
        return self.done or self.phase is P.COMMITTING

    @property
    def poll_interval_s(self) -> float:
        return self.policy.poll_interval_s

    @property
    def params(self) -> MigrationParams:
        pol, kind = self.policy, self.plan.migration_type
        first_downtime = self._schedule[0][1] if self._schedule else pol.downtime_ms
        postcopy = kind is MigrationType.POSTCOPY or (pol.permit_postcopy and kind is MigrationType.LIVE)
        return MigrationParams(
            downtime_limit_ms=first_downtime,
            max_bandwidth_bytes_s=None if pol.bandwidth_mib_s is None else pol.bandwidth_mib_s * MIB,
            # Nova: with post-copy permitted (and available), auto-converge is not used
            auto_converge=pol.permit_auto_converge and kind is MigrationType.LIVE and not postcopy,
            xbzrle=pol.xbzrle and kind in (MigrationType.LIVE, MigrationType.POSTCOPY),
            postcopy=postcopy,
            # Nova's block_migration: a VM with local disk bytes has no shared storage to lean on
            copy_storage=kind is not MigrationType.COLD and self.request.vm.disk_bytes > 0)

    # -- lifecycle ----------------------------------------------------------------------------

    def _move(self, phase: MigrationPhase) -> None:
        MIGRATION_LIFECYCLE.check(self.phase, phase)
        self.sink.emit(MigrationPhaseChanged, source="migration", migration_id=self.request.migration_id,
                       vm_id=self.vm_id, from_phase=self.phase.value, phase=phase.value,
                       round_index=self.round_index)
        self.phase = phase

    def _command(self, command: MigrationCommand, detail: str = "") -> MigrationCommand:
        self.sink.emit(MigrationCommandIssued, source="migration", migration_id=self.request.migration_id,
                       vm_id=self.vm_id, command=type(command).__name__, detail=detail)
        return command

    def admitted(self, now_s: float) -> None:
        self._move(P.ADMITTED)

    def cancel(self, reason: str, now_s: float) -> None:
        """Cancel before the job started (rejected or withdrawn while queued)."""
        self.outcome_reason = reason
        self._move(P.ABORTED)
        self._finish(None, now_s)

    def commit_decided(self, refusal: str, now_s: float) -> None:
        """The control plane's answer to a completed copy: empty ``refusal`` = committed."""
        if self.phase is not P.COMMITTING or not self.awaits_commit:
            raise ValueError(f"{self.request.migration_id}: commit_decided in phase {self.phase.value}; "
                             "allowed: committing, with awaits_commit")
        if refusal:
            self.outcome_reason = refusal
            self._move(P.ABORTED)
        else:
            self._move(P.COMPLETED)
        self._finish(self._copied_stats, now_s)

    def start(self, now_s: float) -> list[MigrationCommand]:
        self.started_s = self._round_started_s = now_s
        self._schedule = self.policy.downtime_schedule(self.request.vm.memory_bytes, self.request.vm.disk_bytes)
        self._move(P.PREPARING)
        params = self.params
        start = StartMigration(vm_id=self.vm_id, source_host_id=self.request.source_host_id,
                               destination_host_id=self.request.destination_host_id,
                               migration_type=self.plan.migration_type, params=params)
        self._schedule = self._schedule[1:]
        return [self._command(start, f"{self.plan.migration_type.value} downtime_limit_ms="
                                     f"{params.downtime_limit_ms:g}")]

    # -- observations -------------------------------------------------------------------------

    def observe(self, stats: JobStats, now_s: float) -> list[MigrationCommand]:
        """One poll of the job: advance the lifecycle, close rounds, apply the knobs."""
        if self.copy_ended:
            return []
        self.last_stats = stats
        if stats.terminal:
            self._terminal(stats, now_s)
            return []
        self._follow_status(stats, now_s)
        if self.phase is not P.PRECOPY:
            return []
        return self._knobs(stats, now_s)

    def _follow_status(self, stats: JobStats, now_s: float) -> None:
        kind = self.plan.migration_type
        if stats.status is JobStatus.ACTIVE and self.phase is P.PREPARING:
            self._move(P.STOP_AND_COPY if kind in (MigrationType.COLD, MigrationType.WARM) else P.PRECOPY)
        if self.phase is P.PRECOPY and stats.dirty_sync_count > max(self._last_sync, 1):
            self._close_round(stats, now_s)
        self._last_sync = max(self._last_sync, stats.dirty_sync_count)
        if stats.status is JobStatus.DEVICE and self.phase is P.PRECOPY:
            # Paused right after a post-copy switch was accepted: libvirt may report the pause
            # before the post-copy state, and on an idle host the whole post-copy phase can fall
            # between two polls. The hypervisor's switched flag tells the two pauses apart.
            self.switched_to_postcopy = stats.switched_to_postcopy
            self._move(P.POSTCOPY if stats.switched_to_postcopy else P.STOP_AND_COPY)
        if stats.status is JobStatus.POSTCOPY_ACTIVE and self.phase in (P.PRECOPY, P.PREPARING):
            if self.phase is P.PREPARING:
                self._move(P.PRECOPY)
            self.switched_to_postcopy = True
            self._move(P.POSTCOPY)

    def _close_round(self, stats: JobStats, now_s: float) -> None:
        self.round_index += 1
        round_bytes = stats.memory_processed_bytes - self._round_start_bytes
        duration_ms = (now_s - self._round_started_s) * 1000.0
        self.round_bytes.append(round_bytes)
        self.round_durations_ms.append(duration_ms)
        self._remaining_history.append(stats.memory_remaining_bytes)
        self.sink.emit(MigrationRoundCompleted, source="migration", migration_id=self.request.migration_id,
                       vm_id=self.vm_id, round_index=self.round_index, round_bytes=round_bytes,
                       round_duration_ms=duration_ms, remaining_bytes=stats.memory_remaining_bytes,
                       dirty_rate_pages_s=stats.dirty_rate_pages_s, throughput_bytes_s=stats.throughput_bytes_s)
        self._round_start_bytes = stats.memory_processed_bytes
        self._round_started_s = now_s
        self._move(P.PRECOPY)

    def _knobs(self, stats: JobStats, now_s: float) -> list[MigrationCommand]:
        commands: list[MigrationCommand] = []
        elapsed_s = now_s - self.started_s
        while self._schedule and elapsed_s >= self._schedule[0][0]:
            _, downtime_ms = self._schedule.pop(0)
            commands.append(self._command(SetDowntimeLimit(vm_id=self.vm_id, downtime_limit_ms=downtime_ms),
                                          f"downtime_limit_ms={downtime_ms:g}"))
        if self.params.postcopy and not self._postcopy_requested and self._should_switch_to_postcopy():
            self._postcopy_requested = True
            commands.append(self._command(StartPostcopy(vm_id=self.vm_id), "remaining data shrinks < 10 %/round"))
        timeout_s = self.policy.completion_timeout_s(self.request.vm.memory_bytes, self.request.vm.disk_bytes)
        if timeout_s > 0 and elapsed_s > timeout_s and not self._timeout_fired:
            self._timeout_fired = True
            commands.append(self._on_timeout(timeout_s))
        return commands

    def _should_switch_to_postcopy(self) -> bool:
        """Nova: after the first round, switch when a round cut the remaining data by < 10 %."""
        if self.plan.migration_type is MigrationType.POSTCOPY and self.round_index >= 1:
            return True
        history = self._remaining_history
        if len(history) < 2 or history[-2] <= 0:
            return False
        progress_pct = (history[-2] - history[-1]) / history[-2] * 100.0
        return progress_pct < self.policy.postcopy_min_progress_pct

    def _on_timeout(self, timeout_s: float) -> MigrationCommand:
        if self.policy.timeout_action == "force_complete":
            if self.params.postcopy and not self._postcopy_requested:
                self._postcopy_requested = True
                return self._command(StartPostcopy(vm_id=self.vm_id), f"completion timeout {timeout_s:g} s")
            return self._command(ForceComplete(vm_id=self.vm_id), f"completion timeout {timeout_s:g} s")
        self.outcome_reason = f"completion timeout {timeout_s:g} s"
        return self._command(AbortMigration(vm_id=self.vm_id, reason=self.outcome_reason), self.outcome_reason)

    def _terminal(self, stats: JobStats, now_s: float) -> None:
        if stats.status is JobStatus.COMPLETED:
            if self.phase is P.PREPARING:
                self._move(P.STOP_AND_COPY)
            if self.phase is P.PRECOPY:
                if stats.dirty_sync_count > self._last_sync:
                    self._close_round(stats, now_s)
                if stats.switched_to_postcopy:
                    self.switched_to_postcopy = True
                self._move(P.POSTCOPY if stats.switched_to_postcopy else P.STOP_AND_COPY)
            self._move(P.COMMITTING)
            if self.awaits_commit:
                self._copied_stats = stats
                return  # MigrationFinished when the control plane has decided
            self._move(P.COMPLETED)
        elif self.phase is P.POSTCOPY or (stats.switched_to_postcopy and self.phase is P.PRECOPY):
            if self.phase is P.PRECOPY:
                self.switched_to_postcopy = True
                self._move(P.POSTCOPY)
            self.outcome_reason = stats.error or "post-copy failed"
            self._move(P.FAILED)
        elif stats.status is JobStatus.CANCELLED and P.ABORTED in MIGRATION_LIFECYCLE.allowed(self.phase):
            self.outcome_reason = self.outcome_reason or "cancelled"
            self._move(P.ABORTED)
        else:
            self.outcome_reason = stats.error or self.outcome_reason or "failed"
            self._move(P.ROLLED_BACK)
        self._finish(stats, now_s)

    def _finish(self, stats: JobStats | None, now_s: float) -> None:
        r, plan = self.request, self.plan
        s = stats or JobStats(vm_id=self.vm_id, status=JobStatus.NONE)
        total_ms = s.total_time_ms if s.total_time_ms is not None else (
            0.0 if math.isnan(self.started_s) else (now_s - self.started_s) * 1000.0)
        if s.disk_total_bytes > 0:
            self.sink.emit(MigrationStorageCopied, source="migration", migration_id=r.migration_id,
                           vm_id=self.vm_id, outcome=self.phase.value, disk_bytes=r.vm.disk_bytes,
                           disk_total_bytes=s.disk_total_bytes, disk_sent_bytes=s.disk_processed_bytes)
        self.sink.emit(
            MigrationFinished, source="migration", migration_id=r.migration_id, vm_id=self.vm_id,
            from_host_id=r.source_host_id, to_host_id=r.destination_host_id,
            migration_type=MigrationType.POSTCOPY.value if self.switched_to_postcopy else plan.migration_type.value,
            outcome=self.phase.value, reason=self.outcome_reason,
            memory_bytes=r.vm.memory_bytes, wws_bytes=r.vm.wws_bytes, dirty_rate_pages_s=r.vm.dirty_rate_pages_s,
            bandwidth_bytes_s=s.throughput_bytes_s, downtime_limit_ms=self.policy.downtime_ms,
            downtime_ms=s.downtime_ms if s.downtime_ms is not None else math.nan, total_time_ms=total_ms,
            bytes_sent=s.memory_processed_bytes, dirty_syncs=s.dirty_sync_count,
            rounds_bytes=tuple(self.round_bytes), rounds_durations_ms=tuple(self.round_durations_ms),
            switched_to_postcopy=self.switched_to_postcopy or self.phase is P.FAILED,
            auto_converge=self.params.auto_converge, xbzrle=self.params.xbzrle, cpu_throttle_pct=s.cpu_throttle_pct,
            postcopy_page_faults=s.postcopy_page_faults, vm_lost=self.phase is P.FAILED,
            predicted_type=plan.migration_type.value, predicted_converges=plan.converges,
            predicted_total_time_ms=plan.predicted_total_time_ms, predicted_downtime_ms=plan.predicted_downtime_ms,
            predicted_rounds=plan.predicted_rounds, predicted_bytes=plan.predicted_bytes)


def drive_step(controller: MigrationController, hypervisor: Hypervisor, commands: list[MigrationCommand],
               now_s: float) -> list[MigrationCommand]:
    """One turn of the driver loop: perform the commands, poll, let the controller react."""
    for command in commands:
        hypervisor.execute(command)
    if controller.copy_ended:
        return []
    return controller.observe(hypervisor.job_stats(controller.vm_id), now_s)

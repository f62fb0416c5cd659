"""A model of one QEMU RAM migration, advanced one rate-limit window (100 ms) at a time.

Theory of operation
-------------------
Guest memory is ``memory_bytes / 4 KiB`` pages in three classes: *zero* pages (never written;
QEMU sends a 9-byte header for each after a cheap scan), *resident* pages (non-zero but not
written during the migration: kernel, page cache) and the *writable working set* (WWS) that a
dirty-page process writes at ``dirty_rate_pages_s`` uniformly at random. ``k`` random writes
into ``W`` pages touch ``W (1 - exp(-k / W))`` distinct pages, so the dirty log is a number,
not a bitmap: the model is analytic per window, never per page.

QEMU 7.2's migration thread (``migration/migration.c``, ``migration/ram.c``), as modelled:

* Setup: every page is marked dirty and the first dirty sync counts (``dirty-sync-count = 1``).
  It takes the profile's fixed setup time plus its setup time per GiB of guest memory (libvirt's
  Begin/Prepare, the destination QEMU starting, the bitmaps allocated).
* Each iteration sends dirty pages in address order until the window's byte budget
  (``max-bandwidth x 100 ms``, ``BUFFER_DELAY``) is spent, then waits for the next window.
  The stream has its own ceiling (``stream_cap_bytes_s``: CPU and NIC) and the bandwidth share
  the link model grants it. Zero pages cost scan time, not bytes.
* Before each iteration QEMU estimates pending = dirty pages x 4 KiB. When it is below
  ``threshold = measured bandwidth x downtime-limit``, it syncs the dirty log (one more dirty
  sync, the union of the bitmap with the pages written since the previous sync) and, if the
  estimate is still below the threshold, completes: the guest is paused, a final sync runs and
  the rest is sent unthrottled (``stop_copy_bytes_s``) with the device state. Otherwise a new
  round starts. QEMU never gives up by itself; only the controller aborts. Every sync walks the
  whole dirty bitmap: it costs ``sync_s_per_gib`` per GiB of guest memory (the guest keeps
  writing meanwhile, except during the final, paused one, which counts as downtime).
* Auto-converge (``migration_trigger_throttle``): at a sync at least 1 s after the previous
  period, if the bytes dirtied in the period exceed 50 % of the bytes sent in it twice in a
  row, the vCPUs are throttled: 20 % first, then +10 % (``cpu-throttle-initial`` /
  ``cpu-throttle-increment``), up to 99 %. The dirty rate scales by ``1 - throttle``.
* XBZRLE: from the second round, a re-sent page hits the cache with probability
  ``xbzrle_hit_rate`` and is sent as ``xbzrle_ratio`` of its size.
* A paused guest (a warm move: libvirt's non-live migration pauses it before QEMU starts) goes
  through the same iterations: nothing dirties, but the copy is still held to ``max-bandwidth``
  until the pending bytes fall under the threshold; only the rest goes unthrottled. Measured on
  the lab (``benchmarks/RESULTS_lab.md``, 2026-12-02): 317 MiB of a paused 512 MiB guest took
  10.1 s at 32 MiB/s and 2.9 s at 128 MiB/s. Its downtime is everything after QEMU's setup.
* Post-copy (``migrate-start-postcopy``): at the next iteration the source stops, sends the
  device state (the short downtime) and the destination runs; the pending pages stream in the
  background unthrottled while the guest's writes to pages not yet received fault them over
  the network (counted as ``postcopy_page_faults``).

Sources: QEMU 7.2 source as cited. The host-dependent constants are a calibration profile
(``novacron.migration.calibration``): ``LAB_CALIBRATION`` (``lab-md``) reproduces the measured rows
of LAB.md (a 512 MiB TCG guest); the shipped default ``lab-tcg`` is fitted by ``novacron
calibrate`` on guests of 256 MiB to 1 GiB (``benchmarks/RESULTS_lab.md``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from novacron.migration.calibration import CalibrationProfile
from novacron.migration.dirtying import distinct_touched
from novacron.migration.protocol import MIB, PAGE_SIZE_BYTES, JobStatus

WINDOW_S = 0.1
ZERO_PAGE_WIRE_BYTES = 9
THROTTLE_INITIAL_PCT = 20.0
THROTTLE_STEP_PCT = 10.0
THROTTLE_MAX_PCT = 99.0
THROTTLE_TRIGGER_RATIO = 0.5


StreamCalibration = CalibrationProfile
"""The host-dependent constants; profiles are data (``novacron.migration.calibration``)."""

LAB_CALIBRATION = CalibrationProfile(name="lab-md")
"""The hand-set constants that reproduce LAB.md's rows (512 MiB guest); the shipped default
profile is the fitted ``lab-tcg`` (``novacron.app.profiles``)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class DirtyPhase:
    """From ``start_s`` (since the migration began) the guest dirties at this rate."""

    start_s: float
    dirty_rate_pages_s: float


@dataclass(frozen=True, slots=True, kw_only=True)
class GuestProfile:
    memory_bytes: int
    resident_bytes: int
    wws_bytes: int
    dirty_rate_pages_s: float
    phases: tuple[DirtyPhase, ...] = ()
    cpu_demand: float = 1.0
    """Fraction of its vCPU time the guest needs to keep its dirty rate; auto-converge slows the
    writes only once the throttle eats into it (a rate-paced writer has slack, a busy loop not)."""

    def rate_at(self, elapsed_s: float) -> float:
        rate = self.dirty_rate_pages_s
        for phase in self.phases:
            if elapsed_s >= phase.start_s:
                rate = phase.dirty_rate_pages_s
        return rate


@dataclass(slots=True)
class QemuMigration:
    """The state of one migration; ``step(share_bytes_s)`` advances it by one window."""

    guest: GuestProfile
    downtime_limit_ms: float
    max_bandwidth_bytes_s: float | None
    auto_converge: bool = False
    xbzrle: bool = False
    xbzrle_cache_bytes: int = 64 * MIB
    xbzrle_ratio: float = 0.7
    """Encoded size / page size for a cache hit (XBZRLE encodes the delta to the cached page)."""
    calibration: StreamCalibration = LAB_CALIBRATION
    elapsed_s: float = 0.0
    status: JobStatus = JobStatus.SETUP
    bytes_sent: float = 0.0
    syncs: int = 0
    throttle_pct: float = 0.0
    downtime_ms: float | None = None
    postcopy_requested: bool = False
    postcopy_faults: float = 0.0
    switched_to_postcopy: bool = False
    paused: bool = False
    """The guest's vCPUs are stopped (a warm move, from the start): nothing dirties, and the copy
    still runs QEMU's rate-limited iterations until it falls under the switch-over threshold."""
    switchover_requested: bool = False
    """Complete at the next step, whatever is pending (the controller's force-complete)."""
    round_bytes: list[float] = field(default_factory=list)
    round_durations_s: list[float] = field(default_factory=list)
    _d_zero: float = 0.0
    _d_resident: float = 0.0
    _d_wws: float = 0.0
    _d_wws_resend: float = 0.0
    """Of ``_d_wws``, pages sent before (XBZRLE can hit its cache only for these)."""
    _writes: float = 0.0
    _round_started_s: float = 0.0
    _round_bytes: float = 0.0
    _period_started_s: float = 0.0
    _period_sent: float = 0.0
    _period_dirtied: float = 0.0
    _high_count: int = 0
    _bandwidth_bytes_s: float = 0.0
    _share_bytes_s: float = math.inf
    _paused_at_s: float | None = None
    """When a guest paused from the start was handed to QEMU (after setup): its downtime begins."""

    @property
    def wws_pages(self) -> float:
        return self.guest.wws_bytes / PAGE_SIZE_BYTES

    @property
    def pending_pages(self) -> float:
        return self._d_zero + self._d_resident + self._d_wws

    @property
    def pending_bytes(self) -> int:
        return int(self.pending_pages * PAGE_SIZE_BYTES)

    @property
    def finished(self) -> bool:
        return self.status in (JobStatus.COMPLETED, JobStatus.FAILED, JobStatus.CANCELLED)

    @property
    def dirty_rate_pages_s(self) -> float:
        if self.paused:
            return 0.0
        available = 1.0 - self.throttle_pct / 100.0
        return self.guest.rate_at(self.elapsed_s) * min(1.0, available / max(self.guest.cpu_demand, 1e-9))

    @property
    def paused_copy_bytes_s(self) -> float:
        """Unthrottled copy (guest paused or post-copy), within the link share."""
        return min(self.calibration.stop_copy_bytes_s, self._share_bytes_s)

    @property
    def xbzrle_hit_rate(self) -> float:
        """Random writes over the working set hit an LRU cache about as often as it covers it."""
        return min(1.0, self.xbzrle_cache_bytes / self.guest.wws_bytes) if self.guest.wws_bytes else 1.0

    @property
    def bandwidth_bytes_s(self) -> float:
        return self._bandwidth_bytes_s

    def begin(self) -> None:
        """Setup: mark every page dirty; QEMU's first dirty sync."""
        total = self.guest.memory_bytes / PAGE_SIZE_BYTES
        self._d_wws = self.wws_pages
        self._d_resident = self.guest.resident_bytes / PAGE_SIZE_BYTES
        self._d_zero = max(total - self._d_wws - self._d_resident, 0.0)
        self.elapsed_s = self.calibration.setup_time_s(self.guest.memory_bytes)
        self.syncs = 1
        self._round_started_s = self._period_started_s = self.elapsed_s
        self.status = JobStatus.ACTIVE
        if self.paused:
            self._paused_at_s = self.elapsed_s

    def step(self, share_bytes_s: float) -> None:
        """One step: a dirty sync (and the switchover if it converged), or one window of sending."""
        if self.finished:
            return
        self._share_bytes_s = max(share_bytes_s, 1.0)
        link_rate = max(min(share_bytes_s, self.calibration.stream_cap_bytes_s), 1.0)
        rate = self._budget_rate(link_rate)
        self._bandwidth_bytes_s = rate
        if self.postcopy_requested:
            self._run_postcopy()
            return
        threshold_bytes = rate / self.calibration.rate_overshoot * self.downtime_limit_ms / 1000.0
        if self.switchover_requested or self.pending_bytes < threshold_bytes:
            self._sync()
            if self.switchover_requested or self.pending_bytes < threshold_bytes:
                self._complete()
            return  # a sync takes no time; the caller may observe the bitmap before the next window
        self._send_window(rate, link_rate)

    def _budget_rate(self, link_rate: float) -> float:
        """Bytes per second the rate limiter lets through (``max-bandwidth``, if any)."""
        if self.max_bandwidth_bytes_s is None:
            return link_rate
        return min(link_rate, self.max_bandwidth_bytes_s * self.calibration.rate_overshoot)

    def _page_wire_bytes(self) -> tuple[float, float]:
        """Wire bytes of a resident page and (on average) of a pending working-set page."""
        full = float(PAGE_SIZE_BYTES)
        if self.xbzrle and self._d_wws > 0:
            hit = self.xbzrle_hit_rate * self._d_wws_resend / self._d_wws
            return full, hit * self.xbzrle_ratio * full + (1 - hit) * full
        return full, full

    def _send_window(self, budget_rate: float, link_rate: float) -> None:
        """Send until the window's byte budget is spent; scanning and sending must fit the window
        too (the thread then sleeps to the window's end, so a cheap scan costs no time)."""
        pending = self.pending_pages
        resident_bytes, wws_bytes = self._page_wire_bytes()
        per_page_bytes = (self._d_resident * resident_bytes + self._d_wws * wws_bytes
                          + self._d_zero * ZERO_PAGE_WIRE_BYTES) / pending
        per_page_s = per_page_bytes / link_rate + (self._d_zero / pending) / self.calibration.zero_scan_pages_s
        pages = min(pending, budget_rate * WINDOW_S / per_page_bytes, WINDOW_S / per_page_s)
        fraction = pages / pending
        sent = pages * per_page_bytes
        self._d_zero -= self._d_zero * fraction
        self._d_resident -= self._d_resident * fraction
        self._d_wws -= self._d_wws * fraction
        self._d_wws_resend -= self._d_wws_resend * fraction
        self._account(sent, WINDOW_S)

    def _account(self, sent: float, duration_s: float) -> None:
        self._writes += self.dirty_rate_pages_s * duration_s
        self.bytes_sent += sent
        self._round_bytes += sent
        self._period_sent += sent
        self.elapsed_s += duration_s

    def _sync(self, *, paused: bool = False) -> None:
        """Merge the pages written since the last sync into the dirty bitmap. Walking the bitmap
        costs time per GiB of guest memory; unless paused, the guest writes meanwhile (those
        writes land in the next sync)."""
        sync_s = self.calibration.sync_time_s(self.guest.memory_bytes)
        w = self.wws_pages
        touched = distinct_touched(w, self._writes)
        added = touched * (1.0 - self._d_wws / w) if w > 0 else 0.0
        self._d_wws += added
        self._d_wws_resend += added  # only pages already sent are outside the bitmap
        self._writes = 0.0
        self._period_dirtied += added * PAGE_SIZE_BYTES
        self.syncs += 1
        self.round_bytes.append(self._round_bytes)
        self.round_durations_s.append(self.elapsed_s - self._round_started_s)
        self._round_bytes = 0.0
        self.elapsed_s += sync_s
        if not paused:
            self._writes += self.dirty_rate_pages_s * sync_s
        self._round_started_s = self.elapsed_s
        if self.elapsed_s - self._period_started_s >= 1.0:
            self._maybe_throttle()

    def _maybe_throttle(self) -> None:
        high = self._period_dirtied > THROTTLE_TRIGGER_RATIO * self._period_sent
        if self.auto_converge and high:
            self._high_count += 1
            if self._high_count >= 2:
                self._high_count = 0
                self.throttle_pct = (THROTTLE_INITIAL_PCT if self.throttle_pct == 0
                                     else min(self.throttle_pct + THROTTLE_STEP_PCT, THROTTLE_MAX_PCT))
        self._period_started_s = self.elapsed_s
        self._period_sent = self._period_dirtied = 0.0

    def _complete(self) -> None:
        """Stop-and-copy: the guest is paused, the rest goes unthrottled with the device state."""
        cal = self.calibration
        synced_at_s = self.elapsed_s
        self._sync(paused=True)  # ram_save_complete's final sync
        resident_bytes, wws_bytes = self._page_wire_bytes()
        payload = (self._d_resident * resident_bytes + self._d_wws * wws_bytes
                   + self._d_zero * ZERO_PAGE_WIRE_BYTES)
        copy_s = payload / self.paused_copy_bytes_s + self._d_zero / cal.zero_scan_pages_s
        switch_ms = (self.elapsed_s - synced_at_s + copy_s) * 1000.0 + cal.device_state_ms
        self.bytes_sent += payload
        self._d_zero = self._d_resident = self._d_wws = self._d_wws_resend = 0.0
        self.elapsed_s = synced_at_s + switch_ms / 1000.0
        self.downtime_ms = (switch_ms if self._paused_at_s is None
                            else (self.elapsed_s - self._paused_at_s) * 1000.0)
        self.status = JobStatus.COMPLETED

    def _run_postcopy(self) -> None:
        """Switch, then drain the pending pages in the background while the guest faults."""
        cal = self.calibration
        if self.status is not JobStatus.POSTCOPY_ACTIVE:
            self._sync()
            self.status = JobStatus.POSTCOPY_ACTIVE
            self.switched_to_postcopy = True
            self.downtime_ms = cal.postcopy_switch_ms + cal.device_state_ms * 0.0
            self.elapsed_s += cal.postcopy_switch_ms / 1000.0
        pending_wws_before = self._d_wws
        self._send_window(self.paused_copy_bytes_s, self.paused_copy_bytes_s)
        w = self.wws_pages
        if w > 0:
            mean_pending = 0.5 * (pending_wws_before + self._d_wws)
            writes = self.guest.rate_at(self.elapsed_s) * WINDOW_S
            self.postcopy_faults += min(writes * mean_pending / w, mean_pending)
        self._writes = 0.0
        if self.pending_pages < 1.0:
            self.round_bytes.append(self._round_bytes)
            self.round_durations_s.append(self.elapsed_s - self._round_started_s)
            self.status = JobStatus.COMPLETED

    def fail(self, reason_status: JobStatus = JobStatus.FAILED) -> None:
        self.status = reason_status


def lab_guest(dirty_rate_pages_s: float) -> GuestProfile:
    """LAB.md's guest: 512 MiB, ~67 MiB of non-zero kernel/page cache, a 128 MiB working set
    (untouched when idle); its dirtier is rate-paced, using ~40 % of a TCG vCPU at 100k pages/s."""
    return GuestProfile(memory_bytes=512 * MIB, resident_bytes=67 * MIB,
                        wws_bytes=128 * MIB if dirty_rate_pages_s > 0 else 0,
                        dirty_rate_pages_s=dirty_rate_pages_s, cpu_demand=0.4)


def run_alone(migration: QemuMigration, *, share_bytes_s: float = math.inf, until_s: float = 3600.0,
              postcopy_after_s: float | None = None) -> QemuMigration:
    """Run one migration with the link to itself until it ends or ``until_s`` (QEMU never gives up)."""
    migration.begin()
    while not migration.finished and migration.elapsed_s < until_s:
        if postcopy_after_s is not None and migration.elapsed_s >= postcopy_after_s:
            migration.postcopy_requested = True
        migration.step(share_bytes_s)
    return migration

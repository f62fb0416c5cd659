"""The migration planner: which type to use for a VM, and what it will cost.

Theory of operation
-------------------
Pre-copy (Clark et al., "Live Migration of Virtual Machines", NSDI 2005) sends all memory
while the guest runs, then in rounds the pages dirtied during the previous round, and stops
the guest to copy the rest once that is small. With link bandwidth ``B`` and dirty rate ``D``
the volume of round ``i`` is ``V_i = V_0 (D/B)^i``: geometric, converging when ``D < B``.
Akoush et al. ("Predicting the Performance of Virtual Machine Migration", MASCOTS 2010) add
the *writable working set* cap: a guest that writes ``D`` pages/s over a working set of ``W``
pages dirties ``W (1 - exp(-D t / W))`` distinct pages in ``t`` seconds, never more than
``W``. The planner iterates that model round by round with QEMU's switchover rule (stop when
the dirty volume after a sync is below ``B x downtime_limit``), so its round count is QEMU's
dirty-sync count: the setup sync, one per round, and the final sync.

If the dirty volume stops shrinking (by less than ``MIN_SHRINK`` per round) or exceeds
``max_rounds``, pre-copy will not converge: the planner proposes post-copy (Hines & Gopalan,
"Post-Copy Based Live Virtual Machine Migration Using Adaptive Pre-Paging and Dynamic
Self-Ballooning", VEE 2009): one pre-copy pass, then the destination runs and pulls the rest,
so downtime is only the switch and total time is bounded by memory / bandwidth. Warm
migration (suspend, copy, resume) is the pre-copy of a guest that writes nothing, held to the
bandwidth limit like any other, with a downtime equal to its copy time; a stopped VM moves cold
(its definition and any local disk).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from novacron.migration.calibration import CalibrationProfile
from novacron.migration.dirtying import distinct_touched
from novacron.migration.protocol import GIB, PAGE_SIZE_BYTES, MigrationType, PowerState

MIN_SHRINK = 0.10
"""A round that shrinks the dirty volume by less than this is not converging (Nova's rule)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class VMMigrationProfile:
    """What the planner knows about a VM."""

    vm_id: str
    memory_bytes: int
    wws_bytes: int
    dirty_rate_pages_s: float
    power_state: PowerState = PowerState.RUNNING
    nonzero_bytes: int | None = None
    """Bytes of memory that are not zero pages (zero pages cost almost nothing); default: all."""
    disk_bytes: int = 0

    @property
    def payload_bytes(self) -> int:
        return self.memory_bytes if self.nonzero_bytes is None else min(self.nonzero_bytes, self.memory_bytes)


@dataclass(frozen=True, slots=True, kw_only=True)
class LinkEstimate:
    bandwidth_bytes_s: float
    """Throughput of the pre-copy stream (after any bandwidth limit)."""
    stop_copy_bytes_s: float | None = None
    """Throughput once the guest is paused (unthrottled); default: ``bandwidth_bytes_s``."""
    stream_cap_bytes_s: float | None = None
    """The stream's own ceiling while the guest runs (CPU, NIC); default: ``bandwidth_bytes_s``."""
    setup_s: float = 0.01
    setup_s_per_gib: float = 0.0
    sync_s_per_gib: float = 0.0
    zero_scan_pages_s: float = math.inf
    device_state_ms: float = 13.0
    postcopy_switch_ms: float = 2.0
    cold_overhead_s: float = 2.0
    """Defining the domain on the destination and undefining it on the source."""

    @property
    def paused_bytes_s(self) -> float:
        return self.stop_copy_bytes_s or self.bandwidth_bytes_s

    @property
    def running_cap_bytes_s(self) -> float:
        return self.stream_cap_bytes_s or self.bandwidth_bytes_s

    def setup_time_s(self, memory_bytes: float) -> float:
        return self.setup_s + self.setup_s_per_gib * memory_bytes / GIB

    def sync_time_s(self, memory_bytes: float) -> float:
        return self.sync_s_per_gib * memory_bytes / GIB


def link_from_profile(profile: CalibrationProfile, *, max_bandwidth_bytes_s: float | None = None,
                      link_bytes_s: float = math.inf) -> LinkEstimate:
    """The planner's view of a link under a calibration profile: the same constants the
    simulation's QEMU model uses, the stream capped by the bandwidth limit and the link share."""
    cap = min(profile.stream_cap_bytes_s, link_bytes_s)
    limit = math.inf if max_bandwidth_bytes_s is None else max_bandwidth_bytes_s * profile.rate_overshoot
    return LinkEstimate(bandwidth_bytes_s=min(cap, limit), stream_cap_bytes_s=cap,
                        stop_copy_bytes_s=min(profile.stop_copy_bytes_s, link_bytes_s),
                        setup_s=profile.setup_s, setup_s_per_gib=profile.setup_s_per_gib,
                        sync_s_per_gib=profile.sync_s_per_gib, zero_scan_pages_s=profile.zero_scan_pages_s,
                        device_state_ms=profile.device_state_ms, postcopy_switch_ms=profile.postcopy_switch_ms)


@dataclass(frozen=True, slots=True, kw_only=True)
class MigrationPlan:
    vm_id: str
    migration_type: MigrationType
    converges: bool
    predicted_total_time_ms: float
    predicted_downtime_ms: float
    """The downtime libvirt reports: for a live move the switch-over (final sync, last copy, device
    state); a warm move is paused by libvirt before QEMU starts, so its downtime is the whole copy
    after QEMU's setup; a cold move is down throughout."""
    predicted_rounds: int
    """QEMU dirty syncs: the setup sync, one per pre-copy round, the final sync."""
    predicted_bytes: int
    reason: str


@dataclass(frozen=True, slots=True, kw_only=True)
class PrecopyPrediction:
    converges: bool
    precopy_s: float
    downtime_ms: float
    syncs: int
    bytes_sent: float
    last_round_bytes: float


WINDOW_S = 0.1
"""QEMU's rate-limit window (``BUFFER_DELAY``): a round ends within one window of the threshold."""


def _touched_bytes(wws_pages: float, writes: float) -> float:
    """Distinct working-set bytes hit by ``writes`` uniform random page writes."""
    return distinct_touched(wws_pages, writes) * PAGE_SIZE_BYTES


def _round_seconds(volume: float, zero_pages: float, link: LinkEstimate) -> float:
    """Sending ``volume`` bytes (and scanning ``zero_pages``): the rate limit or the stream's
    own ceiling plus the zero-page scan, whichever is slower."""
    limited = volume / link.bandwidth_bytes_s
    capped = volume / link.running_cap_bytes_s + zero_pages / link.zero_scan_pages_s
    return max(limited, capped)


def predict_precopy(vm: VMMigrationProfile, link: LinkEstimate, downtime_limit_ms: float,
                    max_rounds: int = 30) -> PrecopyPrediction:
    """Iterate the WWS-capped geometric model with QEMU's switch-over rule, round by round.

    As in QEMU (and the simulation): a round sends until the pending bytes fall under the
    threshold ``bandwidth x downtime limit`` (a residual stays, within one window of it); a dirty
    sync (costing ``sync_s_per_gib``) adds the working-set pages written meanwhile; if the
    pending bytes are still under the threshold the guest stops and the rest goes at the
    paused rate after a final sync."""
    bandwidth = link.bandwidth_bytes_s
    threshold = bandwidth * downtime_limit_ms / 1000.0
    window_bytes = bandwidth * WINDOW_S
    residual_bytes = 0.5 * (threshold + max(threshold - window_bytes, 0.0))
    wws_pages = vm.wws_bytes / PAGE_SIZE_BYTES
    sync_s = link.sync_time_s(vm.memory_bytes)
    pending = float(vm.payload_bytes)
    zero_pages = max(vm.memory_bytes - vm.payload_bytes, 0) / PAGE_SIZE_BYTES
    elapsed_s, sent, syncs = link.setup_time_s(vm.memory_bytes), 0.0, 1
    previous, writes = math.inf, 0.0
    for _ in range(max_rounds):
        # QEMU's pending estimate counts every dirty page, zero or not, and a pass walks memory in
        # address order: the residual it leaves under the threshold is zero and non-zero pages alike
        pending_all = pending + zero_pages * PAGE_SIZE_BYTES
        sending = pending_all >= threshold
        left_share = min(residual_bytes / pending_all, 1.0) if sending else 1.0
        left, zero_left = pending * left_share, zero_pages * left_share
        round_s = _round_seconds(pending - left, zero_pages - zero_left, link) if sending else 0.0
        zero_pages = zero_left
        elapsed_s += round_s + sync_s
        sent += pending - left
        writes += vm.dirty_rate_pages_s * (round_s + sync_s)
        wws_left = min(left, float(vm.wws_bytes))
        added = _touched_bytes(wws_pages, writes) * (1.0 - wws_left / vm.wws_bytes) if vm.wws_bytes else 0.0
        writes = vm.dirty_rate_pages_s * sync_s  # written while the bitmap was walked: the next sync's
        pending = left + added
        syncs += 1
        if pending + zero_pages * PAGE_SIZE_BYTES < threshold:
            final = pending + _touched_bytes(wws_pages, writes) * (1.0 - min(pending, vm.wws_bytes or 1.0)
                                                                   / (vm.wws_bytes or 1.0))
            switch_s = sync_s + final / link.paused_bytes_s + zero_pages / link.zero_scan_pages_s
            downtime_ms = switch_s * 1000.0 + link.device_state_ms
            return PrecopyPrediction(converges=True, precopy_s=elapsed_s, downtime_ms=downtime_ms,
                                     syncs=syncs + 1, bytes_sent=sent + final, last_round_bytes=final)
        if pending > previous * (1.0 - MIN_SHRINK):
            break
        previous = pending
    return PrecopyPrediction(converges=False, precopy_s=elapsed_s, downtime_ms=math.inf, syncs=syncs,
                             bytes_sent=sent, last_round_bytes=pending)


def plan_migration(vm: VMMigrationProfile, link: LinkEstimate, downtime_limit_ms: float, *,
                   permit_postcopy: bool = True, permit_warm: bool = True, force: MigrationType | None = None,
                   max_rounds: int = 30) -> MigrationPlan:
    """Choose the migration type for ``vm`` and predict its cost."""
    if vm.power_state is PowerState.SHUTOFF or force is MigrationType.COLD:
        return _cold(vm, link)
    if force is MigrationType.WARM:
        return _warm(vm, link, downtime_limit_ms, "warm requested")
    precopy = predict_precopy(vm, link, downtime_limit_ms, max_rounds)
    if force is MigrationType.POSTCOPY:
        return _postcopy(vm, link, precopy, "post-copy requested")
    if precopy.converges or force is MigrationType.LIVE:
        reason = "pre-copy converges" if precopy.converges else "live requested; pre-copy will not converge"
        return MigrationPlan(vm_id=vm.vm_id, migration_type=MigrationType.LIVE, converges=precopy.converges,
                             predicted_total_time_ms=(precopy.precopy_s * 1000 + precopy.downtime_ms
                                                      if precopy.converges else math.inf),
                             predicted_downtime_ms=precopy.downtime_ms, predicted_rounds=precopy.syncs,
                             predicted_bytes=int(precopy.bytes_sent), reason=reason)
    if permit_postcopy:
        return _postcopy(vm, link, precopy, "pre-copy will not converge")
    if permit_warm:
        return _warm(vm, link, downtime_limit_ms, "pre-copy will not converge and post-copy is not permitted")
    return MigrationPlan(vm_id=vm.vm_id, migration_type=MigrationType.LIVE, converges=False,
                         predicted_total_time_ms=math.inf, predicted_downtime_ms=math.inf,
                         predicted_rounds=precopy.syncs, predicted_bytes=int(precopy.bytes_sent),
                         reason="pre-copy will not converge; nothing else permitted")


def _cold(vm: VMMigrationProfile, link: LinkEstimate) -> MigrationPlan:
    total_ms = (link.cold_overhead_s + vm.disk_bytes / link.paused_bytes_s) * 1000.0
    return MigrationPlan(vm_id=vm.vm_id, migration_type=MigrationType.COLD, converges=True,
                         predicted_total_time_ms=total_ms, predicted_downtime_ms=total_ms, predicted_rounds=0,
                         predicted_bytes=vm.disk_bytes, reason="VM is shut off")


def _warm(vm: VMMigrationProfile, link: LinkEstimate, downtime_limit_ms: float, reason: str) -> MigrationPlan:
    """A paused guest's move, as QEMU runs it (and the simulation's QEMU model): pre-copy of a guest
    that writes nothing, held to the bandwidth limit and the stream's ceiling until the pending bytes
    fall under the switch-over threshold, the rest at the paused rate. Measured on the lab
    (``benchmarks/RESULTS_lab.md``, 2026-12-02): 317 MiB of a paused 512 MiB guest took 10.1 s at
    32 MiB/s, 2.9 s at 128 MiB/s and 1.7 s unlimited. libvirt pauses the guest before QEMU starts, so
    the downtime it reports is all of the copy: the total time after the setup."""
    copy = predict_precopy(replace(vm, dirty_rate_pages_s=0.0), link, downtime_limit_ms)
    total_ms = copy.precopy_s * 1000.0 + copy.downtime_ms
    downtime_ms = total_ms - link.setup_time_s(vm.memory_bytes) * 1000.0
    return MigrationPlan(vm_id=vm.vm_id, migration_type=MigrationType.WARM, converges=True,
                         predicted_total_time_ms=total_ms, predicted_downtime_ms=downtime_ms,
                         predicted_rounds=copy.syncs, predicted_bytes=int(copy.bytes_sent), reason=reason)


def _postcopy(vm: VMMigrationProfile, link: LinkEstimate, precopy: PrecopyPrediction, reason: str) -> MigrationPlan:
    """One full pre-copy pass, then switch; the working set follows at the unthrottled rate."""
    zero_pages = max(vm.memory_bytes - vm.payload_bytes, 0) / PAGE_SIZE_BYTES
    first_pass_s = (link.setup_time_s(vm.memory_bytes) + _round_seconds(vm.payload_bytes, zero_pages, link)
                    + link.sync_time_s(vm.memory_bytes))
    remaining = float(min(vm.wws_bytes, vm.payload_bytes))
    total_ms = (first_pass_s + remaining / link.paused_bytes_s) * 1000.0 + link.postcopy_switch_ms
    return MigrationPlan(vm_id=vm.vm_id, migration_type=MigrationType.POSTCOPY, converges=True,
                         predicted_total_time_ms=total_ms, predicted_downtime_ms=link.postcopy_switch_ms,
                         predicted_rounds=3, predicted_bytes=int(vm.payload_bytes + remaining), reason=reason)

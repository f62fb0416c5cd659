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
migration (suspend, copy, resume) has a downtime equal to its copy time; a stopped VM moves
cold (its definition and any local disk).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from novacron.migration.protocol import PAGE_SIZE_BYTES, MigrationType, PowerState

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
    setup_s: float = 0.01
    device_state_ms: float = 13.0
    postcopy_switch_ms: float = 2.0
    cold_overhead_s: float = 2.0
    """Defining the domain on the destination and undefining it on the source."""

    @property
    def paused_bytes_s(self) -> float:
        return self.stop_copy_bytes_s or self.bandwidth_bytes_s


@dataclass(frozen=True, slots=True, kw_only=True)
class MigrationPlan:
    vm_id: str
    migration_type: MigrationType
    converges: bool
    predicted_total_time_ms: float
    predicted_downtime_ms: float
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


def predict_precopy(vm: VMMigrationProfile, link: LinkEstimate, downtime_limit_ms: float,
                    max_rounds: int = 30) -> PrecopyPrediction:
    """Iterate the WWS-capped geometric model with QEMU's switchover rule."""
    bandwidth = link.bandwidth_bytes_s
    threshold = bandwidth * downtime_limit_ms / 1000.0
    wws_pages = vm.wws_bytes / PAGE_SIZE_BYTES
    volume = float(vm.payload_bytes)
    elapsed_s, sent, syncs = link.setup_s, 0.0, 1
    previous = math.inf
    for _ in range(max_rounds):
        round_s = volume / bandwidth
        elapsed_s += round_s
        sent += volume
        writes = vm.dirty_rate_pages_s * round_s
        dirty = wws_pages * -math.expm1(-writes / wws_pages) * PAGE_SIZE_BYTES if wws_pages > 0 else 0.0
        syncs += 1
        if dirty <= threshold:
            downtime_ms = dirty / link.paused_bytes_s * 1000.0 + link.device_state_ms
            return PrecopyPrediction(converges=True, precopy_s=elapsed_s, downtime_ms=downtime_ms,
                                     syncs=syncs + 1, bytes_sent=sent + dirty, last_round_bytes=dirty)
        if dirty > previous * (1.0 - MIN_SHRINK):
            break
        previous, volume = dirty, dirty
    return PrecopyPrediction(converges=False, precopy_s=elapsed_s, downtime_ms=math.inf, syncs=syncs,
                             bytes_sent=sent, last_round_bytes=volume)


def plan_migration(vm: VMMigrationProfile, link: LinkEstimate, downtime_limit_ms: float, *,
                   permit_postcopy: bool = True, permit_warm: bool = True, force: MigrationType | None = None,
                   max_rounds: int = 30) -> MigrationPlan:
    """Choose the migration type for ``vm`` and predict its cost."""
    if vm.power_state is PowerState.SHUTOFF or force is MigrationType.COLD:
        return _cold(vm, link)
    if force is MigrationType.WARM:
        return _warm(vm, link, "warm requested")
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
        return _warm(vm, link, "pre-copy will not converge and post-copy is not permitted")
    return MigrationPlan(vm_id=vm.vm_id, migration_type=MigrationType.LIVE, converges=False,
                         predicted_total_time_ms=math.inf, predicted_downtime_ms=math.inf,
                         predicted_rounds=precopy.syncs, predicted_bytes=int(precopy.bytes_sent),
                         reason="pre-copy will not converge; nothing else permitted")


def _cold(vm: VMMigrationProfile, link: LinkEstimate) -> MigrationPlan:
    total_ms = (link.cold_overhead_s + vm.disk_bytes / link.paused_bytes_s) * 1000.0
    return MigrationPlan(vm_id=vm.vm_id, migration_type=MigrationType.COLD, converges=True,
                         predicted_total_time_ms=total_ms, predicted_downtime_ms=total_ms, predicted_rounds=0,
                         predicted_bytes=vm.disk_bytes, reason="VM is shut off")


def _warm(vm: VMMigrationProfile, link: LinkEstimate, reason: str) -> MigrationPlan:
    copy_s = vm.payload_bytes / link.paused_bytes_s
    total_ms = (link.setup_s + copy_s) * 1000.0 + link.device_state_ms
    return MigrationPlan(vm_id=vm.vm_id, migration_type=MigrationType.WARM, converges=True,
                         predicted_total_time_ms=total_ms, predicted_downtime_ms=total_ms, predicted_rounds=2,
                         predicted_bytes=vm.payload_bytes, reason=reason)


def _postcopy(vm: VMMigrationProfile, link: LinkEstimate, precopy: PrecopyPrediction, reason: str) -> MigrationPlan:
    """One full pre-copy pass, then switch; the working set follows at the unthrottled rate."""
    first_pass_s = link.setup_s + vm.payload_bytes / link.bandwidth_bytes_s
    remaining = float(min(vm.wws_bytes, vm.payload_bytes))
    total_ms = (first_pass_s + remaining / link.paused_bytes_s) * 1000.0 + link.postcopy_switch_ms
    return MigrationPlan(vm_id=vm.vm_id, migration_type=MigrationType.POSTCOPY, converges=True,
                         predicted_total_time_ms=total_ms, predicted_downtime_ms=link.postcopy_switch_ms,
                         predicted_rounds=3, predicted_bytes=int(vm.payload_bytes + remaining), reason=reason)

"""Moving a VM between datacenters: its memory and its disk over the WAN link.

Theory of operation
-------------------
Inside a cluster, shared storage is assumed and only memory moves. Between datacenters the disk
must move too:

- **cold** (the VM is stopped): define on the destination, copy the disk, undefine on the source
  -- the planner's cold plan (``novacron.migration.planner``) with the disk's bytes over the WAN
  share, plus the handshake round trips. Downtime is the whole move.
- **block live** (libvirt's non-shared-disk mode: QEMU's drive-mirror beside the memory
  pre-copy): the disk is copied in bulk while the guest runs, and every block the guest writes
  meanwhile is sent again; once the bulk copy has caught up the mirror stays synchronous, taking
  the guest's write rate ``w`` off the link for the rest of the move. With link share ``B`` the
  bulk phase takes ``disk / (B - w)`` and converges only if ``w < B``. Then memory pre-copy runs
  on ``B - w`` (the planner's round-by-round model: Clark et al. 2005 with the Akoush et al. 2010
  working-set cap and QEMU's switch-over rule); its downtime is the move's (the mirror is in
  step when the guest stops). Bytes on the WAN: the disk, what the guest wrote during the
  move, and the memory pre-copy.

The WAN share is ``bandwidth x share``: migration streams use part of the link, the rest stays
for everything else. Setup costs ``HANDSHAKE_RTTS`` round trips (TCP and TLS set-up, libvirt's
prepare/perform/finish phases) on top of the planner's own setup.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

from novacron.migration.planner import LinkEstimate, VMMigrationProfile, plan_migration, predict_precopy
from novacron.migration.protocol import MigrationType

HANDSHAKE_RTTS = 4


@dataclass(frozen=True, slots=True, kw_only=True)
class WanMove:
    vm_id: str
    kind: str
    """``cold`` or ``block-live``."""
    converges: bool
    total_time_ms: float
    downtime_ms: float
    disk_phase_s: float
    wan_bytes: int


def wan_link(bandwidth_mbit_s: float, share: float, rtt_ms: float) -> LinkEstimate:
    """The planner's view of a WAN link's share for migration streams."""
    bytes_s = bandwidth_mbit_s * 1e6 / 8 * share
    return LinkEstimate(bandwidth_bytes_s=bytes_s, setup_s=HANDSHAKE_RTTS * rtt_ms / 1000.0,
                        cold_overhead_s=2.0 + HANDSHAKE_RTTS * rtt_ms / 1000.0)


def plan_cold(vm: VMMigrationProfile, link: LinkEstimate) -> WanMove:
    plan = plan_migration(vm, link, downtime_limit_ms=0.0, force=MigrationType.COLD)
    return WanMove(vm_id=vm.vm_id, kind="cold", converges=True, total_time_ms=plan.predicted_total_time_ms,
                   downtime_ms=plan.predicted_downtime_ms, disk_phase_s=vm.disk_bytes / link.paused_bytes_s,
                   wan_bytes=vm.disk_bytes)


def plan_block_live(vm: VMMigrationProfile, link: LinkEstimate, *, disk_write_bytes_s: float,
                    downtime_limit_ms: float) -> WanMove:
    free_bytes_s = link.bandwidth_bytes_s - disk_write_bytes_s
    if free_bytes_s <= 0:
        return WanMove(vm_id=vm.vm_id, kind="block-live", converges=False, total_time_ms=math.inf,
                       downtime_ms=math.inf, disk_phase_s=math.inf, wan_bytes=0)
    disk_s = vm.disk_bytes / free_bytes_s
    memory_link = replace(link, bandwidth_bytes_s=free_bytes_s)
    precopy = predict_precopy(vm, memory_link, downtime_limit_ms)
    total_s = disk_s + precopy.precopy_s + precopy.downtime_ms / 1000.0
    written = disk_write_bytes_s * (disk_s + precopy.precopy_s)
    return WanMove(vm_id=vm.vm_id, kind="block-live", converges=precopy.converges,
                   total_time_ms=total_s * 1000.0 if precopy.converges else math.inf,
                   downtime_ms=precopy.downtime_ms, disk_phase_s=disk_s,
                   wan_bytes=int(vm.disk_bytes + written + precopy.bytes_sent))

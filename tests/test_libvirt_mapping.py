"""How the libvirt backend maps the controller's commands and libvirt's job statistics (no daemon)."""

from __future__ import annotations

import pytest

libvirt = pytest.importorskip("libvirt", reason="libvirt-python is not installed (the 'real' extra)")

from backends.libvirt_hypervisor import (  # noqa: E402
    job_stats_from_libvirt,
    migration_flags,
    migration_parameters,
    with_disk_counters_from_polls,
)
from novacron.migration.protocol import MIB, JobStatus, MigrationParams, MigrationType  # noqa: E402

# jobStats(COMPLETED) of a real lab migration (256 MiB guest, 20k pages/s), as libvirt 9.0 returned it
COMPLETED_STATS = {"operation": 4, "time_elapsed": 629, "downtime": 50, "setup_time": 0,
                   "data_total": 268828672, "data_processed": 145261913, "memory_total": 268828672,
                   "memory_processed": 145261913, "memory_remaining": 0, "memory_bps": 401386508,
                   "memory_dirty_rate": 0, "memory_iteration": 3, "memory_postcopy_requests": 0, "type": 3}


def test_completed_job_stats_carry_downtime_total_time_and_syncs() -> None:
    stats = job_stats_from_libvirt("vm", COMPLETED_STATS, JobStatus.COMPLETED)
    assert (stats.downtime_ms, stats.total_time_ms, stats.dirty_sync_count) == (50.0, 629.0, 3)
    assert stats.memory_processed_bytes == 145261913 and stats.expected_downtime_ms is None


def test_a_running_job_reports_libvirts_downtime_as_the_expected_one() -> None:
    stats = job_stats_from_libvirt("vm", {**COMPLETED_STATS, "type": 2, "downtime": 917}, JobStatus.ACTIVE)
    assert stats.expected_downtime_ms == 917.0 and stats.downtime_ms is None and stats.total_time_ms is None


def test_live_postcopy_xbzrle_and_auto_converge_map_to_libvirt_flags() -> None:
    params = MigrationParams(postcopy=True, xbzrle=True, auto_converge=True, max_bandwidth_bytes_s=64 * MIB)
    flags = migration_flags(MigrationType.LIVE, params, persistent=True)
    for flag in (libvirt.VIR_MIGRATE_LIVE, libvirt.VIR_MIGRATE_POSTCOPY, libvirt.VIR_MIGRATE_COMPRESSED,
                 libvirt.VIR_MIGRATE_AUTO_CONVERGE, libvirt.VIR_MIGRATE_PERSIST_DEST,
                 libvirt.VIR_MIGRATE_UNDEFINE_SOURCE):
        assert flags & flag
    typed = migration_parameters(params, "tcp://127.0.0.1")
    assert typed[libvirt.VIR_MIGRATE_PARAM_BANDWIDTH] == 64
    assert typed[libvirt.VIR_MIGRATE_PARAM_COMPRESSION] == "xbzrle"
    assert typed[libvirt.VIR_MIGRATE_PARAM_URI] == "tcp://127.0.0.1"


def test_warm_is_not_live_and_cold_is_offline() -> None:
    assert not migration_flags(MigrationType.WARM, MigrationParams(), persistent=False) & libvirt.VIR_MIGRATE_LIVE
    cold = migration_flags(MigrationType.COLD, MigrationParams(), persistent=True)
    assert cold & libvirt.VIR_MIGRATE_OFFLINE and not cold & libvirt.VIR_MIGRATE_LIVE


def test_unlimited_bandwidth_sets_no_libvirt_limit() -> None:
    assert libvirt.VIR_MIGRATE_PARAM_BANDWIDTH not in migration_parameters(
        MigrationParams(max_bandwidth_bytes_s=None), None)


def test_copy_storage_asks_for_libvirts_non_shared_disk_mode() -> None:
    assert migration_flags(MigrationType.LIVE, MigrationParams(copy_storage=True), persistent=False) & \
        libvirt.VIR_MIGRATE_NON_SHARED_DISK
    assert not migration_flags(MigrationType.LIVE, MigrationParams(), persistent=False) & \
        libvirt.VIR_MIGRATE_NON_SHARED_DISK


def test_the_disk_counters_of_a_block_migration_come_from_the_last_poll() -> None:
    # libvirt 9.0, a 32 MiB block migration in the lab: polls show the mirror, the completed stats do not
    running = job_stats_from_libvirt("vm", {**COMPLETED_STATS, "type": 2, "disk_total": 33554432,
                                            "disk_processed": 33554432}, JobStatus.DEVICE)
    completed = job_stats_from_libvirt("vm", {**COMPLETED_STATS, "disk_total": 0, "disk_processed": 0},
                                       JobStatus.COMPLETED)
    final = with_disk_counters_from_polls(completed, running)
    assert (final.disk_total_bytes, final.disk_processed_bytes, final.downtime_ms) == (33554432, 33554432, 50.0)
    assert with_disk_counters_from_polls(completed, None) == completed

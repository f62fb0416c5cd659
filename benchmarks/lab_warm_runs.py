"""Real warm (paused-guest) migrations under a bandwidth limit, with libvirt's completed-job numbers.

Theory of operation
-------------------
A warm move is libvirt's non-live migration: libvirt pauses the guest, then QEMU migrates it.
Whether the copy of a paused guest is held to the migration bandwidth limit (``max-bandwidth``,
libvirt's migrate speed) decides how the planner and the simulation must time it. This script
migrates the lab's dirtying guest warm, one run at a time, through the same code as the libvirt
tests (``backends.lab.migrate.run_lab_migration``), at each guest size and bandwidth limit, and
appends one row per run to a CSV: libvirt's total time and downtime, the bytes, QEMU's setup
time, zero and normal pages and stream rate (read as ``benchmarks.lab_size_runs`` reads them),
the planner's prediction, and the 1-minute load average before and after.

    NOVACRON_LAB_STATE=/tmp/warm-lab python -m backends.lab up
    NOVACRON_LAB_STATE=/tmp/warm-lab python -m benchmarks.lab_warm_runs --out FILE.csv
"""

from __future__ import annotations

import argparse
import csv
import os
import sys
from pathlib import Path

import backends.libvirt_hypervisor as libvirt_hypervisor
from backends.lab.lab import LabInfo, running_lab
from backends.lab.migrate import LabMigrationSpec, run_lab_migration
from benchmarks.lab_size_runs import CompletedStats
from novacron.migration.controller import ControllerPolicy
from novacron.migration.protocol import MigrationType

COLUMNS = ("vm_id", "memory_mib", "dirty_mib", "bandwidth_mib_s", "repeat", "outcome", "total_time_ms",
           "downtime_ms", "bytes_sent", "setup_time_ms", "memory_normal", "memory_constant", "memory_bps",
           "memory_iteration", "planned_total_ms", "planned_downtime_ms", "healthy", "load_before", "load_after")
MEMORY_MIB = (256, 512)
BANDWIDTHS_MIB_S: tuple[float | None, ...] = (32.0, 128.0, None)


def warm_spec(vm_id: str, memory_mib: int, bandwidth_mib_s: float | None) -> LabMigrationSpec:
    """A guest whose working set is half its memory (written before the pause, never during it)."""
    policy = ControllerPolicy(downtime_ms=300.0, downtime_steps=1, bandwidth_mib_s=bandwidth_mib_s,
                              poll_interval_s=0.1, completion_timeout_s_per_gib=60.0)
    return LabMigrationSpec(vm_id=vm_id, migration_type=MigrationType.WARM, memory_mib=memory_mib,
                            dirty_mib=memory_mib // 2, dirty_rate_pages_s=2000, bandwidth_mib_s=bandwidth_mib_s,
                            downtime_limit_ms=300.0, policy=policy)


def measure(lab: LabInfo, recorder: CompletedStats, memory_mib: int, bandwidth_mib_s: float | None,
            repeat: int) -> dict[str, object]:
    """One warm migration; its row (libvirt's completed-job numbers and the planner's prediction)."""
    vm_id = f"warm-{memory_mib}-{'unl' if bandwidth_mib_s is None else int(bandwidth_mib_s)}-{repeat}"
    load_before = os.getloadavg()[0]
    spec = warm_spec(vm_id, memory_mib, bandwidth_mib_s)
    result = run_lab_migration(lab, spec)
    f, raw = result.finished, recorder.by_vm.pop(vm_id, {})
    return {"vm_id": vm_id, "memory_mib": memory_mib, "dirty_mib": spec.dirty_mib,
            "bandwidth_mib_s": "" if bandwidth_mib_s is None else bandwidth_mib_s, "repeat": repeat,
            "outcome": f.outcome, "total_time_ms": round(f.total_time_ms, 1), "downtime_ms": round(f.downtime_ms, 1),
            "bytes_sent": f.bytes_sent, "setup_time_ms": raw.get("setup_time", ""),
            "memory_normal": raw.get("memory_normal", ""), "memory_constant": raw.get("memory_constant", ""),
            "memory_bps": raw.get("memory_bps", ""), "memory_iteration": raw.get("memory_iteration", ""),
            "planned_total_ms": round(result.plan.predicted_total_time_ms, 1),
            "planned_downtime_ms": round(result.plan.predicted_downtime_ms, 1), "healthy": result.health.healthy,
            "load_before": round(load_before, 2), "load_after": round(os.getloadavg()[0], 2)}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args(argv)
    lab = running_lab()
    if lab is None:
        print("no running lab: python -m backends.lab up (same NOVACRON_LAB_STATE)", file=sys.stderr)
        return 2
    recorder = CompletedStats()
    libvirt_hypervisor.job_stats_from_libvirt = recorder
    settings = [(repeat, memory_mib, bandwidth) for repeat in range(args.repeats) for memory_mib in MEMORY_MIB
                for bandwidth in BANDWIDTHS_MIB_S]
    new_file = not args.out.exists()
    with args.out.open("a", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=COLUMNS)
        if new_file:
            writer.writeheader()
        for repeat, memory_mib, bandwidth in settings:
            row = measure(lab, recorder, memory_mib, bandwidth, repeat)
            writer.writerow(row)
            handle.flush()
            print(", ".join(f"{name}={row[name]}" for name in COLUMNS), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Real lab migrations across guest sizes, with QEMU's own counters (issue 15 item 2).

Theory of operation
-------------------
The quiet calibration grid (``benchmarks/data/lab_quiet_2026-11-30``) has one run per setting and
three training sizes, so it cannot tell a sub-linear growth of migration time with guest memory
from run-to-run noise. This script migrates, one at a time, the same kind of points through the
same code as ``novacron calibrate`` (``backends.lab.calibrate.lab_spec`` and
``backends.lab.migrate.run_lab_migration``) and appends one row per run to a CSV with the columns
of ``real.csv`` plus what libvirt's completed-job statistics say about where the time went:
QEMU's ``setup_time`` (from the migrate command to the first iteration), the zero pages
(``memory_constant``) and normal pages (``memory_normal``) it sent, its average stream rate
(``memory_bps``), and the 1-minute load average before and after the run.

The completed-job dictionary is read as libvirt returns it, by recording the argument of
``backends.libvirt_hypervisor.job_stats_from_libvirt`` (the function that maps it onto the
controller's ``JobStats``) while the run is driven; nothing is replaced.

Sets of points (``--set``):

* ``sweep``: one guest with a 16 MiB working set, no writes, 150 ms limit, at 256 MiB to 2 GiB,
  unlimited bandwidth and 32 MiB/s, repeated; the time beyond the bytes is what grows with size.
* ``big``: the 16 training settings of the 1 GiB guests at 2 GiB (a fourth, extrapolated size).
* ``repeat``: the training grid's unlimited-bandwidth points again (run-to-run spread).
* ``grid``: every point of ``novacron calibrate``'s grid (``calibration_grid.full_grid()``,
  training and held-out, with their own indices and splits), so that one session gives the fit
  its runs and the QEMU counters to hold terms at; the file is a ``real.csv`` that
  ``novacron calibrate --reuse-real`` reads (the extra columns are ignored).

    NOVACRON_LAB_STATE=/tmp/fit-lab novacron lab up
    NOVACRON_LAB_STATE=/tmp/fit-lab python -m benchmarks.lab_size_runs --set sweep --out FILE.csv
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import backends.libvirt_hypervisor as libvirt_hypervisor
from backends.lab.calibrate import lab_spec
from backends.lab.calibration_grid import REAL_COLUMNS, GridPoint, full_grid, point_columns, training_grid
from backends.lab.lab import running_lab
from backends.lab.migrate import run_lab_migration
from novacron.migration import protocol

QEMU_COLUMNS = ("setup_time_ms", "time_elapsed_ms", "memory_constant", "memory_normal", "memory_bps",
                "memory_iteration", "load_before", "load_after", "repeat_of")
SWEEP_MEMORY_MIB = (256, 512, 768, 1024, 1536, 2048)


def sweep_points(first: int, repeats: int) -> list[tuple[GridPoint, int]]:
    points: list[tuple[GridPoint, int]] = []
    for bandwidth in (None, 32.0):
        for memory in SWEEP_MEMORY_MIB:
            for _ in range(repeats):
                points.append((GridPoint(first + len(points), "sweep", memory, 16, 0, bandwidth, 150.0), -1))
    return points


def big_points(first: int) -> list[tuple[GridPoint, int]]:
    return [(GridPoint(first + k, "size_2048", 2048, p.wws_mib, p.dirty_rate_pages_s, p.bandwidth_mib_s,
                       p.downtime_limit_ms), p.index)
            for k, p in enumerate(p for p in training_grid() if p.memory_mib == 1024)]


def repeat_points(first: int) -> list[tuple[GridPoint, int]]:
    return [(GridPoint(first + k, "repeat", p.memory_mib, p.wws_mib, p.dirty_rate_pages_s, None,
                       p.downtime_limit_ms), p.index)
            for k, p in enumerate(p for p in training_grid() if p.bandwidth_mib_s is None)]


def grid_points() -> list[tuple[GridPoint, int]]:
    """The calibrate grid as it is; ``--first-index`` does not apply (the fit reads the splits)."""
    return [(p, -1) for p in full_grid()]


class CompletedStats:
    """Keeps the last completed-job dictionary libvirt returned, per VM."""

    def __init__(self) -> None:
        self.by_vm: dict[str, dict[str, Any]] = {}
        self._mapper = libvirt_hypervisor.job_stats_from_libvirt

    def __call__(self, vm_id: str, stats: Mapping[str, Any], status: protocol.JobStatus) -> protocol.JobStats:
        if status is protocol.JobStatus.COMPLETED and stats.get("time_elapsed"):
            self.by_vm[vm_id] = dict(stats)
        return self._mapper(vm_id, stats, status)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--set", choices=("sweep", "big", "repeat", "grid"), required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--first-index", type=int, default=100)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--seed", type=int, default=15, help="shuffles the order (drift is not a size effect)")
    args = parser.parse_args(argv)
    lab = running_lab()
    if lab is None:
        print("no running lab: novacron lab up (same NOVACRON_LAB_STATE)", file=sys.stderr)
        return 2
    points = {"sweep": lambda: sweep_points(args.first_index, args.repeats),
              "big": lambda: big_points(args.first_index),
              "repeat": lambda: repeat_points(args.first_index),
              "grid": grid_points}[args.set]()
    random.Random(args.seed).shuffle(points)
    recorder = CompletedStats()
    libvirt_hypervisor.job_stats_from_libvirt = recorder
    new_file = not args.out.exists()
    with args.out.open("a", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=(*REAL_COLUMNS, *QEMU_COLUMNS))
        if new_file:
            writer.writeheader()
        for n, (point, repeat_of) in enumerate(points, 1):
            load_before = os.getloadavg()[0]
            result = run_lab_migration(lab, lab_spec(point))
            f, raw = result.finished, recorder.by_vm.pop(f"cal-{point.index:03d}", {})
            row = {**point_columns(point), "outcome": f.outcome, "total_time_ms": round(f.total_time_ms, 1),
                   "downtime_ms": round(f.downtime_ms, 1), "bytes_sent": f.bytes_sent,
                   "dirty_syncs": f.dirty_syncs, "healthy": result.health.healthy,
                   "health": result.health.describe(), "load_average": round(os.getloadavg()[0], 2),
                   "setup_time_ms": raw.get("setup_time", ""), "time_elapsed_ms": raw.get("time_elapsed", ""),
                   "memory_constant": raw.get("memory_constant", ""), "memory_normal": raw.get("memory_normal", ""),
                   "memory_bps": raw.get("memory_bps", ""), "memory_iteration": raw.get("memory_iteration", ""),
                   "load_before": round(load_before, 2), "load_after": round(os.getloadavg()[0], 2),
                   "repeat_of": repeat_of}
            writer.writerow(row)
            handle.flush()
            print(f"{n}/{len(points)} #{point.index} {point.describe()}: {f.outcome} {f.total_time_ms:.0f} ms, "
                  f"down {f.downtime_ms:.0f} ms, {f.bytes_sent / 2**20:.0f} MiB, {f.dirty_syncs} syncs, "
                  f"setup {row['setup_time_ms']} ms, zero pages {row['memory_constant']}, "
                  f"load {load_before:.2f}->{row['load_after']}, "
                  f"{'healthy' if result.health.healthy else 'UNHEALTHY'}", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())

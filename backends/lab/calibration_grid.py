"""The grid ``novacron calibrate`` migrates, and the real runs' table (no libvirt needed here).

Theory of operation
-------------------
A profile fitted on one guest size does not say how migration time grows with memory. The
grid therefore varies everything a migration's cost depends on: guest memory (three training
sizes, 256 MiB to 1 GiB), the dirtier's working set, its dirty rate (idle included), the
bandwidth limit (unlimited included) and the downtime limit. The training points are a
balanced design: for each size, every (dirty rate, bandwidth) pair, with the working set and
the downtime limit rotated through their values so that each appears with every size. The
held-out points use values the training grid never uses (384 and 768 MiB guests, other working
sets, rates, limits), so their error says how the fitted model generalises. Leave-one-size-out
refits on two training sizes and predicts the third.

A real run is one row of ``REAL_COLUMNS``; ``novacron calibrate`` appends each row to a CSV as
soon as it is measured, so a long grid can be resumed and re-fitted without the lab.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

TRAIN_MEMORY_MIB = (256, 512, 1024)
TRAIN_RATES_PAGES_S = (0, 2000, 8000, 25000)
TRAIN_BANDWIDTHS_MIB_S: tuple[float | None, ...] = (32.0, 128.0, 512.0, None)
TRAIN_WWS_MIB = (16, 64, 128)
TRAIN_DOWNTIMES_MS = (50.0, 150.0, 400.0)
HELD_OUT_MEMORY_MIB = (384, 768)
HELD_OUT_RATES_PAGES_S = (4000, 12000, 1000)
HELD_OUT_BANDWIDTHS_MIB_S: tuple[float | None, ...] = (64.0, 200.0, None)
HELD_OUT_WWS_MIB = (48, 96)
HELD_OUT_DOWNTIMES_MS = (100.0, 250.0)
COMPLETION_TIMEOUT_S_PER_GIB = 6.0
"""Nova's ``live_migration_completion_timeout`` for calibration runs: with Nova's 2 GiB floor a
run that does not converge is aborted after 12 s (the simulation uses the same horizon)."""

REAL_COLUMNS = ("index", "split", "memory_mib", "wws_mib", "dirty_rate_pages_s", "bandwidth_mib_s",
                "downtime_limit_ms", "outcome", "total_time_ms", "downtime_ms", "bytes_sent", "dirty_syncs",
                "healthy", "health", "load_average")


@dataclass(frozen=True, slots=True)
class GridPoint:
    index: int
    split: str
    """``train`` or ``held_out``."""
    memory_mib: int
    wws_mib: int
    dirty_rate_pages_s: int
    bandwidth_mib_s: float | None
    """None: unlimited (libvirt's default)."""
    downtime_limit_ms: float

    @property
    def train(self) -> bool:
        return self.split == "train"

    @property
    def horizon_s(self) -> float:
        """When the completion timeout aborts a run that has not converged (Nova's formula)."""
        return completion_timeout_s(COMPLETION_TIMEOUT_S_PER_GIB, self.memory_mib)

    def describe(self) -> str:
        bandwidth = "unlimited" if self.bandwidth_mib_s is None else f"{self.bandwidth_mib_s:g} MiB/s"
        return (f"{self.memory_mib} MiB guest, {self.wws_mib} MiB working set, {self.dirty_rate_pages_s} pages/s, "
                f"{bandwidth}, {self.downtime_limit_ms:g} ms")


def completion_timeout_s(s_per_gib: float, memory_mib: float, disk_gib: float = 0.0) -> float:
    """Nova's completion timeout: ``live_migration_completion_timeout`` x the data in GiB, where
    the memory counts at least 2 GiB (``LibvirtDriver._live_migration_data_gb``)."""
    return s_per_gib * (max(memory_mib / 1024.0, 2.0) + disk_gib)


def training_grid() -> list[GridPoint]:
    points: list[GridPoint] = []
    for memory in TRAIN_MEMORY_MIB:
        for k, (rate, bandwidth) in enumerate(itertools.product(TRAIN_RATES_PAGES_S, TRAIN_BANDWIDTHS_MIB_S)):
            wws = TRAIN_WWS_MIB[(k + TRAIN_MEMORY_MIB.index(memory)) % len(TRAIN_WWS_MIB)]
            downtime = TRAIN_DOWNTIMES_MS[(k // len(TRAIN_WWS_MIB) + k) % len(TRAIN_DOWNTIMES_MS)]
            points.append(GridPoint(len(points), "train", memory, wws, rate, bandwidth, downtime))
    return points


def held_out_grid(first_index: int) -> list[GridPoint]:
    points = []
    combos = itertools.product(HELD_OUT_MEMORY_MIB, HELD_OUT_RATES_PAGES_S, HELD_OUT_BANDWIDTHS_MIB_S)
    for k, (memory, rate, bandwidth) in enumerate(combos):
        wws = HELD_OUT_WWS_MIB[k % len(HELD_OUT_WWS_MIB)]
        downtime = HELD_OUT_DOWNTIMES_MS[(k // 2) % len(HELD_OUT_DOWNTIMES_MS)]
        points.append(GridPoint(first_index + k, "held_out", memory, wws, rate, bandwidth, downtime))
    return points


def full_grid() -> list[GridPoint]:
    train = training_grid()
    return train + held_out_grid(len(train))


def point_from_row(row: Mapping[Any, Any]) -> GridPoint:
    bandwidth = float(row["bandwidth_mib_s"])
    return GridPoint(int(row["index"]), str(row["split"]), int(row["memory_mib"]), int(row["wws_mib"]),
                     int(row["dirty_rate_pages_s"]), None if bandwidth <= 0 or math.isnan(bandwidth) else bandwidth,
                     float(row["downtime_limit_ms"]))


def point_columns(point: GridPoint) -> dict[str, object]:
    return {"index": point.index, "split": point.split, "memory_mib": point.memory_mib, "wws_mib": point.wws_mib,
            "dirty_rate_pages_s": point.dirty_rate_pages_s,
            "bandwidth_mib_s": 0.0 if point.bandwidth_mib_s is None else point.bandwidth_mib_s,
            "downtime_limit_ms": point.downtime_limit_ms}

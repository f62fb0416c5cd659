"""``novacron calibrate``: real lab migrations against the simulation and the planner.

Theory of operation
-------------------
The simulation is only useful for checking targets before deployment if its migration figures
agree with real migrations. This module runs one grid of migrations three ways:

* **real**: ``run_lab_migration`` on the lab's two libvirtd hosts (the core's controller
  driving libvirt, a constant downtime limit, the guest's health checked after each run);
* **sim**: the simulation's QEMU model (``sim.migration.qemu_model.QemuMigration``, the model behind
  the simulated hypervisor) for the same guest, bandwidth limit and downtime limit;
* **planner**: ``plan_migration``'s analytic prediction (``novacron.migration.planner``), with
  the nominal bandwidth limit and again with the fitted stream parameters as its link estimate.

Each is written to Parquet (``real.parquet``, ``sim.parquet``, ``planner.parquet``), and the
relative error ``|predicted - real| / real`` per metric (total time, downtime, bytes, dirty
syncs) is summarised by its median and 90th percentile. The simulation's stream parameters are
then fitted by grid search on half of the real runs (alternate grid points): the effective
bandwidth of the pre-copy stream and the fixed per-migration overhead minimise the median
total-time error, the paused-copy rate and device-state time the downtime error. The error on
the held-out half (``sim_fitted``) is the number that says whether the simulation can be trusted.
Downtime in the tens of milliseconds is dominated by noise (scheduling on a loaded 2-core
machine), so its relative error is reported but not used as an acceptance criterion.
"""

from __future__ import annotations

import dataclasses
import itertools
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from backends.lab.lab import LabInfo
from backends.lab.migrate import GUEST_RESIDENT_MIB, LabMigrationSpec, lab_plan, run_lab_migration
from novacron.migration.planner import LinkEstimate
from novacron.migration.protocol import MIB, MigrationType
from sim.migration.qemu_model import LAB_CALIBRATION, GuestProfile, QemuMigration, StreamCalibration, run_alone

METRICS = ("total_time_ms", "downtime_ms", "bytes_sent", "dirty_syncs")
DEFAULT_RATES_PAGES_S = (1000, 4000, 10000)
DEFAULT_BANDWIDTHS_MIB_S = (64.0, 256.0)
DEFAULT_DOWNTIMES_MS = (100.0, 300.0)
MEMORY_MIB, DIRTY_MIB = 256, 64


@dataclass(frozen=True, slots=True)
class GridPoint:
    index: int
    dirty_rate_pages_s: int
    bandwidth_mib_s: float
    downtime_limit_ms: float

    @property
    def train(self) -> bool:
        """Alternate grid points fit the simulation; the others are held out to test it."""
        return self.index % 2 == 0


def grid(rates: Sequence[int] = DEFAULT_RATES_PAGES_S, bandwidths: Sequence[float] = DEFAULT_BANDWIDTHS_MIB_S,
         downtimes: Sequence[float] = DEFAULT_DOWNTIMES_MS) -> list[GridPoint]:
    return [GridPoint(i, r, b, d) for i, (r, b, d) in enumerate(itertools.product(rates, bandwidths, downtimes))]


def _spec(point: GridPoint) -> LabMigrationSpec:
    return LabMigrationSpec(vm_id=f"cal-{point.index:02d}", migration_type=MigrationType.LIVE, memory_mib=MEMORY_MIB,
                            dirty_mib=DIRTY_MIB, dirty_rate_pages_s=point.dirty_rate_pages_s,
                            bandwidth_mib_s=point.bandwidth_mib_s, downtime_limit_ms=point.downtime_limit_ms)


def _row(point: GridPoint, **values: object) -> dict[str, object]:
    return {"index": point.index, "dirty_rate_pages_s": point.dirty_rate_pages_s,
            "bandwidth_mib_s": point.bandwidth_mib_s, "downtime_limit_ms": point.downtime_limit_ms,
            "train": point.train, **values}


def run_real(lab: LabInfo, points: Sequence[GridPoint], progress: Callable[[str], None] = print) -> pd.DataFrame:
    rows = []
    for point in points:
        result = run_lab_migration(lab, _spec(point))
        f = result.finished
        rows.append(_row(point, outcome=f.outcome, total_time_ms=f.total_time_ms, downtime_ms=f.downtime_ms,
                         bytes_sent=float(f.bytes_sent), dirty_syncs=float(f.dirty_syncs),
                         healthy=result.health.healthy, health=result.health.describe()))
        progress(f"  real {point.index + 1}/{len(points)}: {point.dirty_rate_pages_s} pages/s, "
                 f"{point.bandwidth_mib_s:g} MiB/s, {point.downtime_limit_ms:g} ms -> {f.outcome}, "
                 f"{f.total_time_ms:.0f} ms total, {f.downtime_ms:.0f} ms down, {f.dirty_syncs} syncs, "
                 f"{'healthy' if result.health.healthy else 'UNHEALTHY: ' + result.health.describe()}")
    return pd.DataFrame(rows)


def sim_guest(point: GridPoint) -> GuestProfile:
    return GuestProfile(memory_bytes=MEMORY_MIB * MIB, resident_bytes=GUEST_RESIDENT_MIB * MIB,
                        wws_bytes=DIRTY_MIB * MIB, dirty_rate_pages_s=float(point.dirty_rate_pages_s),
                        cpu_demand=0.4)


def simulate(point: GridPoint, calibration: StreamCalibration) -> dict[str, object]:
    migration = QemuMigration(guest=sim_guest(point), downtime_limit_ms=point.downtime_limit_ms,
                              max_bandwidth_bytes_s=point.bandwidth_mib_s * MIB, calibration=calibration)
    run_alone(migration, until_s=600.0)
    done = migration.downtime_ms is not None
    return {"total_time_ms": migration.elapsed_s * 1000.0 if done else math.inf,
            "downtime_ms": migration.downtime_ms if done else math.inf,
            "bytes_sent": migration.bytes_sent, "dirty_syncs": float(migration.syncs)}


def run_sim(points: Sequence[GridPoint], calibration: StreamCalibration = LAB_CALIBRATION) -> pd.DataFrame:
    return pd.DataFrame([_row(p, **simulate(p, calibration)) for p in points])


def planner_link(calibration: StreamCalibration) -> LinkEstimate:
    """The planner's link estimate from the simulation's (fitted) stream parameters."""
    return LinkEstimate(bandwidth_bytes_s=calibration.stream_cap_bytes_s,
                        stop_copy_bytes_s=calibration.stop_copy_bytes_s, setup_s=calibration.setup_s,
                        device_state_ms=calibration.device_state_ms)


def run_planner(points: Sequence[GridPoint], link: LinkEstimate | None = None) -> pd.DataFrame:
    rows = []
    for point in points:
        plan = lab_plan(_spec(point), link)
        rows.append(_row(point, total_time_ms=plan.predicted_total_time_ms, downtime_ms=plan.predicted_downtime_ms,
                         bytes_sent=float(plan.predicted_bytes), dirty_syncs=float(plan.predicted_rounds)))
    return pd.DataFrame(rows)


def relative_errors(real: pd.DataFrame, predicted: pd.DataFrame) -> pd.DataFrame:
    """Per run and metric: |predicted - real| / real, in percent (only completed real runs)."""
    done = real[real["outcome"] == "completed"].set_index("index")
    pred = predicted.set_index("index")
    done = done.loc[done.index.intersection(pred.index)]
    pred = pred.loc[done.index]
    errors = {m: (pred[m] - done[m]).abs() / done[m].where(done[m] > 0) * 100.0 for m in METRICS}
    frame = pd.DataFrame(errors)
    frame["train"] = done["train"]
    return frame


def summarise(errors: pd.DataFrame, label: str) -> list[dict[str, object]]:
    rows = []
    for metric in METRICS:
        values = errors[metric].replace([np.inf, -np.inf], np.nan).dropna().to_numpy()
        rows.append({"model": label, "metric": metric, "runs": len(values),
                     "median_error_pct": float(np.median(values)) if len(values) else math.nan,
                     "p90_error_pct": float(np.percentile(values, 90)) if len(values) else math.nan})
    return rows


def _median_error(real: pd.DataFrame, points: Sequence[GridPoint], calibration: StreamCalibration,
                  metric: str) -> float:
    predicted = pd.DataFrame([_row(p, **simulate(p, calibration)) for p in points])
    values = relative_errors(real, predicted)[metric].replace([np.inf], np.nan).dropna()
    return float(values.median()) if len(values) else math.inf


def fit_calibration(real: pd.DataFrame, points: Sequence[GridPoint]) -> StreamCalibration:
    """Grid-search the stream parameters on the training points (see the module docstring)."""
    train_points = [p for p in points if p.train
                    and (real.set_index("index").loc[p.index, "outcome"] == "completed")]
    best = LAB_CALIBRATION
    best_error = math.inf
    for cap_mib_s, setup_s in itertools.product(range(100, 801, 25), np.arange(0.0, 1.01, 0.05)):
        candidate = dataclasses.replace(LAB_CALIBRATION, stream_cap_bytes_s=cap_mib_s * MIB, setup_s=float(setup_s))
        error = _median_error(real, train_points, candidate, "total_time_ms")
        if error < best_error:
            best, best_error = candidate, error
    best_error = math.inf
    fitted = best
    for stop_mib_s, device_ms in itertools.product((200, 400, 800, 1200, 2400), range(5, 81, 5)):
        candidate = dataclasses.replace(best, stop_copy_bytes_s=stop_mib_s * MIB, device_state_ms=float(device_ms))
        error = _median_error(real, train_points, candidate, "downtime_ms")
        if error < best_error:
            fitted, best_error = candidate, error
    return fitted


def calibrate(lab: LabInfo | None, out_dir: Path, points: Sequence[GridPoint],
              progress: Callable[[str], None] = print) -> pd.DataFrame:
    """Run the grid three ways, fit the simulation, write Parquet files; return the error table.
    Without a lab, the real runs are read back from ``out_dir/real.parquet`` (re-analysis)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    if lab is None:
        real = pd.read_parquet(out_dir / "real.parquet")
        points = [p for p in points if p.index in set(real["index"])]
    else:
        real = run_real(lab, points, progress)
        real.to_parquet(out_dir / "real.parquet", index=False)  # first: the expensive part
    sim = run_sim(points)
    planner = run_planner(points)
    fitted = fit_calibration(real, points)
    sim_fitted = run_sim(points, fitted)
    planner_fitted = run_planner(points, planner_link(fitted))
    for name, frame in (("sim", sim), ("planner", planner), ("sim_fitted", sim_fitted),
                        ("planner_fitted", planner_fitted)):
        frame.to_parquet(out_dir / f"{name}.parquet", index=False)
    held_out = ~real.set_index("index")["train"]
    table = []
    for label, frame in (("planner", planner), ("sim (default calibration)", sim)):
        table += summarise(relative_errors(real, frame), label + ", all runs")
    for label, frame in (("sim fitted", sim_fitted), ("planner with fitted link", planner_fitted)):
        fitted_errors = relative_errors(real, frame)
        table += summarise(fitted_errors[fitted_errors.index.isin(held_out[held_out].index)], label + ", held-out runs")
    result = pd.DataFrame(table)
    result.to_parquet(out_dir / "errors.parquet", index=False)
    (out_dir / "fitted_calibration.txt").write_text(
        f"stream_cap_mib_s={fitted.stream_cap_bytes_s / MIB:g} setup_s={fitted.setup_s:g} "
        f"stop_copy_mib_s={fitted.stop_copy_bytes_s / MIB:g} device_state_ms={fitted.device_state_ms:g}\n")
    return result


def format_errors(table: pd.DataFrame) -> str:
    lines = ["| model | metric | runs | median error % | p90 error % |", "|---|---|---|---|---|"]
    for row in table.itertuples():
        lines.append(f"| {row.model} | {row.metric} | {row.runs} | {row.median_error_pct:.1f} | "
                     f"{row.p90_error_pct:.1f} |")
    return "\n".join(lines)

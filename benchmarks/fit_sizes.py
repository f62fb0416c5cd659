"""Where the per-size cost of a lab migration goes, and fits that hold it to QEMU's counters.

Theory of operation
-------------------
Reads the runs of ``benchmarks/lab_size_runs.py`` (``benchmarks/data/lab_sizes_2026-12-01``: a
size sweep, the 1 GiB training settings at 2 GiB, repeats of the unlimited-bandwidth training
points) and prints:

1. QEMU's ``setup_time`` against guest memory (least squares: ms + ms/GiB);
2. for the sweep, the time outside QEMU's setup and the downtime against the bytes sent and the
   zero pages (least squares), per bandwidth class: what a zero page costs;
3. the repeats against the quiet grid they repeat (``lab_quiet_2026-11-30``) and against each other;
4. fit variants of ``calibration_fit.fit_and_evaluate`` on the quiet grid, each evaluated on its
   held-out points, leave-one-size-out and on the 2 GiB runs: the shipped procedure, and the same
   with ``setup_s_per_gib`` and/or ``zero_scan_pages_s`` held at the values of 1. and 2. (the
   fixed setup starting from 2.'s intercept).

    python -m benchmarks.fit_sizes [--variants]
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import numpy as np
import pandas as pd

from backends.lab.calibration_fit import (
    fit_and_evaluate,
    format_errors,
    score,
    usable_runs,
)
from novacron.app.profiles import load_profile
from novacron.migration.protocol import MIB

DATA = Path(__file__).parent / "data"
GRID = DATA / "lab_quiet_2026-11-30" / "real.csv"
NEW = DATA / "lab_sizes_2026-12-01"


def new_runs() -> pd.DataFrame:
    return pd.concat([pd.read_csv(NEW / name) for name in ("sweep.csv", "size_2048.csv", "repeat.csv")],
                     ignore_index=True)


def setup_per_gib(runs: pd.DataFrame) -> tuple[float, float, float]:
    """QEMU's setup-time = a + b x GiB over the completed runs: (a s, b s/GiB, residual sd s)."""
    done = runs[runs["outcome"] == "completed"]
    x = np.c_[np.ones(len(done)), done["memory_mib"] / 1024.0]
    y = done["setup_time_ms"].astype(float) / 1000.0
    coef = np.linalg.lstsq(x, y, rcond=None)[0]
    return float(coef[0]), float(coef[1]), float(np.std(y - x @ coef))


def stream_terms(sweep: pd.DataFrame, bandwidth: float) -> tuple[float, float, float]:
    """Time outside setup and downtime = fixed + MiB / rate + zero pages / zero rate, one bandwidth
    class of the sweep: (fixed s, rate MiB/s, zero pages/s)."""
    runs = sweep[(sweep["bandwidth_mib_s"] == bandwidth) & (sweep["outcome"] == "completed")]
    rest = (runs["total_time_ms"] - runs["setup_time_ms"] - runs["downtime_ms"]) / 1000.0
    x = np.c_[np.ones(len(runs)), runs["bytes_sent"] / MIB, runs["memory_constant"]]
    coef = np.linalg.lstsq(x, rest, rcond=None)[0]
    return float(coef[0]), 1.0 / float(coef[1]), 1.0 / float(coef[2]) if coef[2] > 0 else float("inf")


def repeats_against_grid(runs: pd.DataFrame) -> pd.DataFrame:
    grid = pd.read_csv(GRID).set_index("index")
    rep = runs[runs["split"] == "repeat"].copy()
    rep["grid_ms"] = rep["repeat_of"].map(grid["total_time_ms"])
    rep["vs_grid_pct"] = (rep["total_time_ms"] / rep["grid_ms"] - 1.0) * 100.0
    pair_median = rep.groupby("repeat_of")["total_time_ms"].transform("median")
    rep["vs_pair_pct"] = (rep["total_time_ms"] - pair_median).abs() / pair_median * 100.0
    return rep


def variants(runs: pd.DataFrame) -> None:
    grid = usable_runs(pd.read_csv(GRID))
    big = runs[runs["split"] == "size_2048"]
    _, slope_s, _ = setup_per_gib(runs)
    fixed_s, _, zero_rate = stream_terms(runs[runs["split"] == "sweep"], 0.0)
    md, tcg = load_profile("lab-md"), load_profile("lab-tcg")
    cases = {
        "shipped procedure (start lab-md, all fitted)": (md, {}),
        "setup/GiB held (QEMU), start lab-tcg": (dataclasses.replace(tcg, setup_s=fixed_s),
                                                 {"setup_s_per_gib": slope_s}),
        "setup/GiB and zero scan held, start lab-md": (md, {"setup_s_per_gib": slope_s,
                                                            "zero_scan_pages_s": zero_rate}),
        "setup/GiB and zero scan held, start lab-tcg": (dataclasses.replace(tcg, setup_s=fixed_s),
                                                        {"setup_s_per_gib": slope_s, "zero_scan_pages_s": zero_rate}),
    }
    for label, (start, held) in cases.items():
        result = fit_and_evaluate(grid, start, held=held)
        rows: list[dict[str, object]] = [{str(k): v for k, v in r.items()} for r in result.errors.to_dict("records")]
        rows += score(big, result.profile, "2048 MiB runs of 2026-12-01")
        p = result.profile
        print(f"\n### {label}\nheld: {held}\nfitted: stream {p.stream_cap_bytes_s / MIB:.0f} MiB/s, setup "
              f"{p.setup_s:.3f} s + {p.setup_s_per_gib:.3f} s/GiB, sync {p.sync_s_per_gib * 1000:.2f} ms/GiB, "
              f"zero scan {p.zero_scan_pages_s:.0f} pages/s, stop-and-copy {p.stop_copy_bytes_s / MIB:.0f} MiB/s, "
              f"device state {p.device_state_ms:.1f} ms\n")
        print(format_errors(pd.DataFrame(rows)))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--variants", action="store_true", help="also run the fit variants (~1 min)")
    args = parser.parse_args()
    runs = new_runs()
    a, b, sd = setup_per_gib(runs)
    print(f"QEMU setup-time: {a:.3f} s + {b:.3f} s/GiB (residual sd {sd * 1000:.0f} ms, "
          f"{int((runs['outcome'] == 'completed').sum())} runs)")
    print(runs[runs["outcome"] == "completed"].groupby("memory_mib")["setup_time_ms"]
          .agg(["count", "median", "min", "max"]).to_string())
    sweep = runs[runs["split"] == "sweep"]
    for bandwidth in (0.0, 32.0):
        fixed, rate, zero = stream_terms(sweep, bandwidth)
        print(f"sweep, bandwidth {bandwidth or 'unlimited'}: outside setup and downtime {fixed:.3f} s + bytes / "
              f"{rate:.0f} MiB/s + zero pages / {zero:.3g} pages/s")
    rep = repeats_against_grid(runs)
    print(f"repeats: {len(rep)} runs of {rep['repeat_of'].nunique()} grid points; against the quiet grid median "
          f"{rep['vs_grid_pct'].median():+.1f} % (range {rep['vs_grid_pct'].min():+.1f} to "
          f"{rep['vs_grid_pct'].max():+.1f} %); two repeats against their median: median "
          f"{rep['vs_pair_pct'].median():.1f} %, max {rep['vs_pair_pct'].max():.1f} %; load average "
          f"{runs['load_before'].min():.2f}-{runs['load_after'].max():.2f}")
    if args.variants:
        variants(runs)


if __name__ == "__main__":
    main()

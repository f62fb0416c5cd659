"""One lab session's whole calibration grid: the fit with and without QEMU's measured terms.

Theory of operation
-------------------
Holding QEMU's setup per GiB and the zero-page rate at measured values improved
leave-one-size-out but worsened the held-out points when the values came from another session
than the grid (``fit_sizes``; the CPU-bound TCG stream moves ~18 % between sessions). This
script reads one session that ran the whole grid and the 2 GiB points with QEMU's counters
(``lab_size_runs --set grid`` and ``--set big``, default ``benchmarks/data/lab_grid_2026-12-02``)
and compares, all on that session's runs:

(a) the fit as ``novacron calibrate`` does it (every parameter fitted, start ``lab-md``);
(b) the same fit with ``setup_s_per_gib`` and ``zero_scan_pages_s`` held at the values this
    session's training runs measure (``fit_sizes.setup_per_gib`` over their ``setup_time``;
    ``fit_sizes.stream_terms`` over their unlimited-bandwidth runs' zero pages);
and, for reference, the shipped ``lab-tcg`` unchanged. Each is scored on the held-out points,
leave-one-size-out, and the 2 GiB points (profile fitted on the whole training set), sim and
planner. Leave-one-size-out of (b) is also run "strictly": the held values re-measured in each
fold from the two sizes it trains on, so the left-out size's counters never reach its fit.

    python -m benchmarks.fit_session [--data DIR] [--start lab-md] [--write-profile FILE]
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import pandas as pd

from backends.lab.calibrate import with_lab_provenance
from backends.lab.calibration_fit import (
    FitResult,
    fit_and_evaluate,
    fit_profile,
    format_errors,
    score,
    usable_runs,
)
from benchmarks.fit_sizes import GRID as QUIET_GRID
from benchmarks.fit_sizes import setup_per_gib, stream_terms
from novacron.app.profiles import dumps_profile, load_profile
from novacron.migration.calibration import CalibrationProfile, model_bounds
from novacron.migration.protocol import MIB

DATA = Path(__file__).parent / "data" / "lab_grid_2026-12-02"


def held_values(train: pd.DataFrame) -> dict[str, float]:
    """QEMU's setup per GiB and the zero-page rate, measured from these training runs' counters."""
    _, setup_s_per_gib, _ = setup_per_gib(train)
    _, _, zero_pages_s = stream_terms(train, 0.0)
    # a zero-page cost the runs cannot resolve from noise comes out infinite: as fast as a profile may say
    return {"setup_s_per_gib": setup_s_per_gib,
            "zero_scan_pages_s": min(zero_pages_s, model_bounds("zero_scan_pages_s")[1])}


def strict_loso(grid: pd.DataFrame, start: CalibrationProfile) -> list[dict[str, object]]:
    """Leave-one-size-out with the held values measured on the two sizes each fold trains on."""
    train = grid[grid["split"] == "train"]
    rows: list[dict[str, object]] = []
    for size in sorted(train["memory_mib"].unique()):
        fold = train[train["memory_mib"] != size]
        fitted = fit_profile(fold, start, passes=4, held=held_values(fold))
        rows += score(train[train["memory_mib"] == size], fitted, f"leave out {size} MiB, held per fold")
    return rows


def run_variant(grid: pd.DataFrame, big: pd.DataFrame, held: Mapping[str, float],
                start_name: str) -> tuple[FitResult, pd.DataFrame]:
    """Fit (held terms fixed, if any), evaluate as ``calibrate`` does, then score the 2 GiB runs."""
    start = load_profile(start_name)
    result = fit_and_evaluate(grid, start, held=held)
    rows = result.errors.to_dict("records") + score(big, result.profile, "2048 MiB points")
    if held:
        rows += strict_loso(grid, start)
    return result, pd.DataFrame(rows)


def session_profile(profile: CalibrationProfile, data: Path, runs: int,
                    held: Mapping[str, float]) -> CalibrationProfile:
    """Variant (b)'s profile with the provenance of this session (not of its start profile)."""
    held_text = ", ".join(f"{name} = {value:.6g}" for name, value in held.items())
    return with_lab_provenance(
        profile, data / "hosts.json", name="session-b", date=data.name[-10:], runs=runs,
        source=f"benchmarks.fit_session variant (b) on {data.name}: {runs} real migrations, "
               f"held at this session's QEMU counters ({held_text})")


def describe(profile: CalibrationProfile) -> str:
    return (f"stream {profile.stream_cap_bytes_s / MIB:.0f} MiB/s, setup {profile.setup_s:.3f} s + "
            f"{profile.setup_s_per_gib:.3f} s/GiB, sync {profile.sync_s_per_gib * 1000:.2f} ms/GiB, zero scan "
            f"{profile.zero_scan_pages_s:.3g} pages/s, stop-and-copy {profile.stop_copy_bytes_s / MIB:.0f} MiB/s, "
            f"device state {profile.device_state_ms:.1f} ms")


def session_facts(grid: pd.DataFrame, big: pd.DataFrame) -> None:
    both = pd.concat([grid, big], ignore_index=True)
    a, b, sd = setup_per_gib(both)
    print(f"runs: grid {len(grid)} ({int((grid['outcome'] == 'completed').sum())} completed, "
          f"{int((grid['healthy'].astype(str).str.lower() != 'true').sum())} unhealthy), 2 GiB {len(big)} "
          f"({int((big['outcome'] == 'completed').sum())} completed); load average before/after runs "
          f"{both['load_before'].min():.2f}-{both['load_after'].max():.2f} (median {both['load_before'].median():.2f})")
    print(f"QEMU setup over all completed runs of the session: {a:.3f} s + {b:.3f} s/GiB (sd {sd * 1000:.0f} ms)")
    print(both[both["outcome"] == "completed"].groupby("memory_mib")["setup_time_ms"]
          .agg(["count", "median", "min", "max"]).to_string())
    quiet = pd.read_csv(QUIET_GRID).set_index("index")
    done = grid[(grid["outcome"] == "completed") & grid["index"].map(quiet["outcome"]).eq("completed")]
    ratio = done["total_time_ms"] / done["index"].map(quiet["total_time_ms"])
    print(f"this grid against the quiet grid of 2026-11-30, same points: total time median {ratio.median() - 1:+.1%} "
          f"(quartiles {ratio.quantile(0.25) - 1:+.1%} / {ratio.quantile(0.75) - 1:+.1%}, {len(done)} runs)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--start", default="lab-md", help="the profile the fits start from (calibrate: lab-md)")
    parser.add_argument("--write-profile", type=Path, help="write variant (b)'s fitted profile here")
    args = parser.parse_args()
    grid = usable_runs(pd.read_csv(args.data / "real.csv"))
    big = pd.read_csv(args.data / "size_2048.csv")
    session_facts(grid, big)
    held = held_values(grid[grid["split"] == "train"])
    print(f"held values from this session's training runs: {held}")
    with ProcessPoolExecutor(max_workers=2) as pool:
        futures = {"(a) all fitted": pool.submit(run_variant, grid, big, {}, args.start),
                   "(b) setup/GiB and zero scan held": pool.submit(run_variant, grid, big, held, args.start)}
        shipped = load_profile("lab-tcg")
        held_out = grid[grid["split"] == "held_out"]
        reference = pd.DataFrame(score(held_out, shipped, "held-out points") + score(big, shipped, "2048 MiB points"))
        print(f"\n### shipped lab-tcg ({describe(shipped)})\n\n{format_errors(reference)}")
        for label, future in futures.items():
            result, table = future.result()
            print(f"\n### {label}: {describe(result.profile)}\n\n{format_errors(table)}")
            table.to_csv(args.data / f"errors_{label[1]}_start_{args.start}.csv", index=False)
            if label.startswith("(b)") and args.write_profile:
                profile = session_profile(result.profile, args.data, len(grid), held)
                args.write_profile.write_text(dumps_profile(profile, "variant (b) of benchmarks.fit_session"))


if __name__ == "__main__":
    main()

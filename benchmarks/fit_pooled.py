"""Two quiet sessions of the same calibration grid: fit across sessions and fit them pooled.

Theory of operation
-------------------
The whole grid of ``calibration_grid.full_grid()`` (48 training, 18 held-out points, the same
indices and splits) was measured on two quiet days: ``lab_quiet_2026-11-30`` (the runs the
shipped ``lab-tcg`` is fitted on) and ``lab_grid_2026-12-02`` (``fit_session``). Their total
times differ by a session shift (median +5.9 %, quartiles +0.6 / +18 %) larger than the
differences between candidate profiles, so one session of single runs cannot rank profiles.
This script asks two questions of the same fit ``novacron calibrate`` runs (every parameter
fitted, ``calibration_fit.fit_profile`` from ``lab-md``, the same passes):

1. **Across sessions**: the profile fitted on one day's training runs, scored on the other
   day's held-out points and on its whole grid (66 runs; for the other day these are all unseen).
2. **Pooled**: one profile fitted on both days' training runs (96 runs, each run weighs the
   same), scored on each day's held-out points, on the 2 GiB points of 2026-12-01 and 2026-12-02,
   and leave-one-guest-size-out on the pooled data (each fold leaves a size out of both days).

For reference it also scores the shipped ``lab-tcg`` unchanged, and it runs the single-session
leave-one-size-out (each day's fit without one size) on the *same* left-out runs of both days,
so the pooled folds are compared with the one-session procedure on identical runs: a pooled
fold sees twice the runs of the sizes it keeps, but no run of the size it leaves out.

Runs of the second day get their grid index + ``INDEX_OFFSET`` in pooled frames, because
``calibration_fit`` joins predictions to runs by index. The twelve fits go to a
``ProcessPoolExecutor`` with two workers (the machine's cores); the scoring is cheap and runs in
the parent. Tables are ``calibration_fit.format_errors`` rows; ``--out`` also writes them as CSV.

    python -m benchmarks.fit_pooled [--start lab-md] [--out DIR] [--write-profile FILE]
"""

from __future__ import annotations

import argparse
import resource
import time
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path

import pandas as pd

from backends.lab.calibrate import with_lab_provenance
from backends.lab.calibration_fit import (
    PREDICTORS,
    fit_profile,
    format_errors,
    per_run,
    predict,
    score,
    summary,
    usable_runs,
)
from benchmarks.fit_session import describe
from novacron.app.profiles import dumps_profile, load_profile
from novacron.migration.calibration import CalibrationProfile

DATA = Path(__file__).parent / "data"
SESSIONS = {"2026-11-30": DATA / "lab_quiet_2026-11-30", "2026-12-02": DATA / "lab_grid_2026-12-02"}
BIG = {"2026-12-01": DATA / "lab_sizes_2026-12-01" / "size_2048.csv",
       "2026-12-02": DATA / "lab_grid_2026-12-02" / "size_2048.csv"}
INDEX_OFFSET = 1000
FULL_PASSES, FOLD_PASSES = 6, 4
"""As ``fit_and_evaluate``: the full fit with its default passes, leave-one-size-out folds with 4."""


def load_runs(path: Path, k: int, session: str) -> pd.DataFrame:
    runs = usable_runs(pd.read_csv(path)).copy()
    runs["index"] = runs["index"] + k * INDEX_OFFSET
    runs["session"] = session
    return runs


def fit_task(train: pd.DataFrame, start_name: str, passes: int) -> tuple[CalibrationProfile, float]:
    """One fit in a worker: the profile and the worker's CPU seconds."""
    cpu = time.process_time()
    profile = fit_profile(train, load_profile(start_name), passes=passes)
    return profile, time.process_time() - cpu


def evaluate(runs: pd.DataFrame, profile: CalibrationProfile, what: str,
             label: str) -> tuple[list[dict[str, object]], list[dict[str, object]]]:
    """Per model: the ``summary`` row and the median signed total-time error (prediction against
    real, runs both completed: the session shift), from one prediction of the runs."""
    rows, signed = [], []
    for model, predictor in PREDICTORS:
        errors = per_run(runs, predict(runs, profile, predictor))
        rows.append({**summary(errors, f"{model}, {what}"), "profile": label})
        signed.append({"profile": label, "evaluation": f"{model}, {what}",
                       "signed_median_pct": float(errors["total_time_signed_pct"].median())})
    return rows, signed


def cell(row: dict[str, object]) -> str:
    text = f"{row['total_median_pct']:.1f} / {row['total_p90_pct']:.1f}, {row['downtime_ok_pct']:.0f}"
    notes = []
    if row["syncs_within_one_pct"] < 100:  # type: ignore[operator]
        notes.append(f"syncs {row['syncs_within_one_pct']:.0f}")
    right, total = str(row["verdict_right"]).split("/")
    if right != total:
        notes.append(f"verdicts {row['verdict_right']}")
    return text + (f" ({', '.join(notes)})" if notes else "")


def wide(rows: pd.DataFrame, columns: list[str]) -> str:
    """Rows ``model, evaluation`` x profile columns, cells median / p90 %, downtime ok %."""
    rows = rows.copy()
    evaluations = list(dict.fromkeys(rows["evaluation"]))
    lines = ["| evaluation (runs, completed) | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for evaluation in evaluations:
        sub = rows[rows["evaluation"] == evaluation].set_index("profile")
        first = sub.iloc[0]
        cells = [cell(sub.loc[c].to_dict()) if c in sub.index else "-" for c in columns]
        lines.append(f"| {evaluation} ({first['runs']}, {first['completed']}) | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--start", default="lab-md", help="the profile the fits start from (calibrate: lab-md)")
    parser.add_argument("--out", type=Path, help="write the error tables and profiles here")
    parser.add_argument("--write-profile", type=Path, help="write the pooled profile (TOML) here")
    args = parser.parse_args()
    wall, cpu0 = time.monotonic(), time.process_time()

    days = list(SESSIONS)
    grids = {day: load_runs(path / "real.csv", k, day) for k, (day, path) in enumerate(SESSIONS.items())}
    bigs = {day: load_runs(path, k, day) for k, (day, path) in enumerate(BIG.items())}
    pooled = pd.concat(grids.values(), ignore_index=True)
    train = {**{day: g[g["split"] == "train"] for day, g in grids.items()},
             "pooled": pooled[pooled["split"] == "train"]}
    sizes = sorted(int(s) for s in train["pooled"]["memory_mib"].unique())
    print("training runs:", {k: len(v) for k, v in train.items()}, "sizes:", sizes)

    fits: dict[tuple[str, int | None], Future[tuple[CalibrationProfile, float]]] = {}
    with ProcessPoolExecutor(max_workers=2) as pool:
        for name, frame in train.items():
            fits[(name, None)] = pool.submit(fit_task, frame, args.start, FULL_PASSES)
        for name, frame in train.items():
            for size in sizes:
                fits[(name, size)] = pool.submit(fit_task, frame[frame["memory_mib"] != size], args.start, FOLD_PASSES)
        done = {key: future.result() for key, future in fits.items()}
    worker_cpu = sum(c for _, c in done.values())
    profiles = {name: done[(name, None)][0] for name in train}
    profiles["lab-tcg"] = load_profile("lab-tcg")
    label = {days[0]: f"fit {days[0]}", days[1]: f"fit {days[1]}", "pooled": "fit pooled", "lab-tcg": "lab-tcg"}
    for name, profile in profiles.items():
        print(f"{label[name]}: {describe(profile)}")

    # whole-profile evaluations
    rows: list[dict[str, object]] = []
    signed: list[dict[str, object]] = []
    evaluations = []
    for day, g in grids.items():
        evaluations += [(f"held-out points {day}", g[g["split"] == "held_out"]), (f"whole grid {day}", g)]
    for day, b in bigs.items():
        evaluations.append((f"2048 MiB points {day}", b))
    for name, profile in profiles.items():
        for what, runs in evaluations:
            summaries, medians = evaluate(runs, profile, what, label[name])
            rows += summaries
            signed += medians
    table = pd.DataFrame(rows)

    # leave one size out: each fit family's folds scored on the left-out size of each day and of both
    loso_rows: list[dict[str, object]] = []
    for name in train:
        for size in sizes:
            fold = done[(name, size)][0]
            targets = [(day, g[(g["split"] == "train") & (g["memory_mib"] == size)]) for day, g in grids.items()]
            targets.append(("both days", train["pooled"][train["pooled"]["memory_mib"] == size]))
            for where, runs in targets:
                for r in score(runs, fold, f"leave out {size} MiB, scored {where}"):
                    loso_rows.append({**r, "profile": label[name]})
    loso = pd.DataFrame(loso_rows)

    columns = [label[n] for n in ("lab-tcg", days[0], days[1], "pooled")]
    print("\n### Profiles on held-out points, whole grids and 2 GiB points\n")
    print(wide(table, columns))
    print("\n### Leave one guest size out (fold fits; lab-tcg is not re-fitted, so it has no column)\n")
    print(wide(loso, [label[n] for n in (days[0], days[1], "pooled")]))
    print("\n### Median signed total-time error %, prediction against real\n")
    piv = pd.DataFrame(signed).pivot(index="evaluation", columns="profile", values="signed_median_pct")[columns]
    print("| evaluation | " + " | ".join(columns) + " |\n" + "|---" * (len(columns) + 1) + "|")
    for evaluation, values in piv.iterrows():
        print(f"| {evaluation} | " + " | ".join(f"{v:+.1f}" for v in values) + " |")
    for name in profiles:
        print(f"\n### {label[name]} (full table)\n\n{format_errors(table[table['profile'] == label[name]])}")
    print(f"\n### pooled leave-one-size-out (full table)\n\n{format_errors(loso[loso['profile'] == 'fit pooled'])}")

    if args.out:
        args.out.mkdir(parents=True, exist_ok=True)
        table.to_csv(args.out / "errors.csv", index=False)
        loso.to_csv(args.out / "errors_loso.csv", index=False)
        pd.DataFrame(signed).to_csv(args.out / "signed.csv", index=False)
    if args.write_profile:
        pooled_profile = profiles["pooled"]
        held_out = table[(table["profile"] == "fit pooled") & table["evaluation"].str.startswith("sim, held-out")]
        fit_errors = tuple((f"held_out_{day.replace('-', '')}_{key}", round(float(held_out[held_out['evaluation']
                           .str.endswith(day)][col].iloc[0]), 2))
                           for day in days for key, col in (("total_time_median_pct", "total_median_pct"),
                                                            ("total_time_p90_pct", "total_p90_pct"),
                                                            ("downtime_ok_pct", "downtime_ok_pct")))
        profile = with_lab_provenance(
            pooled_profile, SESSIONS[days[0]] / "hosts.json", name="lab-tcg",
            source=f"benchmarks.fit_pooled: fitted on the training runs of two quiet sessions of the same grid "
                   f"({' and '.join(days)}; {len(train['pooled'])} training runs of {len(pooled)})",
            date=f"{days[0]} and {days[1]}", runs=len(pooled), fit_errors=fit_errors)
        args.write_profile.write_text(dumps_profile(profile, "benchmarks.fit_pooled, pooled fit of two sessions"))
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(f"\nwall {time.monotonic() - wall:.1f} s; CPU: fits {worker_cpu:.1f} s in the workers, parent "
          f"{time.process_time() - cpu0:.1f} s (children's rusage {children.ru_utime + children.ru_stime:.1f} s)")


if __name__ == "__main__":
    main()

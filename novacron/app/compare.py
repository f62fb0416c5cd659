"""``novacron compare RUN_A RUN_B``: two runs of one scenario side by side (typically sim and real).

Theory of operation
-------------------
Both directories are read with ``load_run``; they must be runs of the same scenario (the
summaries' ``scenario``), else the comparison means nothing and the command says which two it got.
Three tables come out:

- every metric either run has, with both values and the relative difference of B from A
  (``(B - A) / |A|``; none when A is 0 or one side lacks the metric);
- every target either run was checked against, with both verdicts (pass / fail / not measured)
  and whether they agree; a target only one run was checked against disagrees (the other side
  reads "absent");
- migrations matched by VM (the k-th migration of a VM in A with its k-th in B): the planner's
  prediction and each run's measured total time and downtime, with B's relative error against A's
  measurement and against the prediction. With A the simulation and B the real run, that is
  predicted versus measured.

The verdicts decide the exit status (0 all agree, 1 one disagrees), so CI can require that a real
run agrees with its simulation; metrics differ by nature and never decide it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from novacron.app.analysis import Run, RunNotFound, load_run

if TYPE_CHECKING:
    from matplotlib.figure import Figure

ABSENT = "absent"
"""The verdict column of a target one run was not checked against."""
MIGRATION_COLUMNS = ("vm_id", "nth", "migration_id_a", "migration_id_b", "outcome_a", "outcome_b",
                     "predicted_total_time_ms", "total_time_ms_a", "total_time_ms_b", "total_time_rel_diff",
                     "total_time_rel_error_vs_prediction_b", "downtime_ms_a", "downtime_ms_b", "downtime_rel_diff")


class CompareError(ValueError):
    """The two directories cannot be compared; the message is one line."""


def relative_difference(a: float | None, b: float | None) -> float | None:
    """``(b - a) / |a|``; None when either is missing or not finite, or ``a`` is 0."""
    if a is None or b is None or not (math.isfinite(a) and math.isfinite(b)) or a == 0:
        return None
    return (b - a) / abs(a)


@dataclass(frozen=True)
class Comparison:
    a: Run
    b: Run
    metrics: pd.DataFrame
    verdicts: pd.DataFrame
    migrations: pd.DataFrame

    @property
    def disagreements(self) -> list[str]:
        return list(self.verdicts.loc[~self.verdicts["agree"], "target"])

    @property
    def agree(self) -> bool:
        return not self.disagreements

    def as_dict(self) -> dict[str, Any]:
        def records(df: pd.DataFrame) -> list[dict[str, Any]]:
            return [{str(k): _json_value(v) for k, v in row.items()} for row in df.to_dict(orient="records")]

        return {"scenario": self.a.summary["scenario"],
                "run_a": {"path": str(self.a.path), "runtime": self.a.summary["runtime"], "seed": self.a.seed},
                "run_b": {"path": str(self.b.path), "runtime": self.b.summary["runtime"], "seed": self.b.seed},
                "verdicts_agree": self.agree, "disagreements": self.disagreements,
                "verdicts": records(self.verdicts), "metrics": records(self.metrics),
                "migrations": records(self.migrations)}


def _json_value(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if hasattr(value, "item"):  # numpy scalars
        return _json_value(value.item())
    return value


def load_pair(path_a: str | Path, path_b: str | Path) -> tuple[Run, Run]:
    """Both runs, or a ``CompareError`` naming the directory that is not one or the two scenarios."""
    runs = []
    for label, path in (("RUN_A", path_a), ("RUN_B", path_b)):
        try:
            runs.append(load_run(path, check_events=True))
        except RunNotFound as exc:
            raise CompareError(f"{label} {exc}") from None
    a, b = runs
    if a.summary["scenario"] != b.summary["scenario"]:
        raise CompareError(f"RUN_A {a.path} ran scenario {a.summary['scenario']!r} but RUN_B {b.path} ran "
                           f"{b.summary['scenario']!r}; allowed: two runs of the same scenario")
    return a, b


def compare_runs(a: Run, b: Run) -> Comparison:
    return Comparison(a, b, _metric_table(a, b), _verdict_table(a, b), _migration_table(a, b))


def _metric_table(a: Run, b: Run) -> pd.DataFrame:
    ma, mb = a.metrics, b.metrics
    rows = [{"metric": name, "a": ma.get(name), "b": mb.get(name),
             "rel_diff": relative_difference(ma.get(name), mb.get(name))}
            for name in sorted(set(ma) | set(mb))]
    return pd.DataFrame(rows, columns=["metric", "a", "b", "rel_diff"])


def _verdict_table(a: Run, b: Run) -> pd.DataFrame:
    by_a = {r.target.name: r for r in a.verdict.results}
    by_b = {r.target.name: r for r in b.verdict.results}
    rows = []
    for name in list(by_a) + [n for n in by_b if n not in by_a]:
        ra, rb = by_a.get(name), by_b.get(name)
        either = ra or rb
        assert either is not None
        verdict_a = ra.verdict.value if ra else ABSENT
        verdict_b = rb.verdict.value if rb else ABSENT
        rows.append({"target": name, "metric": either.target.metric, "role": either.target.role.value,
                     "verdict_a": verdict_a, "verdict_b": verdict_b,
                     "measured_a": ra.measured if ra else None, "measured_b": rb.measured if rb else None,
                     "agree": verdict_a == verdict_b})
    columns = ["target", "metric", "role", "verdict_a", "verdict_b", "measured_a", "measured_b", "agree"]
    return pd.DataFrame(rows, columns=columns).astype({"agree": bool})


def _finished_by_vm(run: Run) -> dict[tuple[str, int], dict[str, Any]]:
    df = run.of_type("MigrationFinished")
    out: dict[tuple[str, int], dict[str, Any]] = {}
    if df.empty:
        return out
    for vm_id, group in df.sort_values("seq").groupby("vm_id", sort=True):
        for nth, row in enumerate(group.to_dict(orient="records")):
            out[(str(vm_id), nth)] = {str(k): v for k, v in row.items()}
    return out


def _migration_table(a: Run, b: Run) -> pd.DataFrame:
    fa, fb = _finished_by_vm(a), _finished_by_vm(b)
    rows = []
    for key in sorted(set(fa) & set(fb)):
        ra, rb = fa[key], fb[key]
        predicted = float(ra["predicted_total_time_ms"])
        rows.append({
            "vm_id": key[0], "nth": key[1], "migration_id_a": ra["migration_id"], "migration_id_b": rb["migration_id"],
            "outcome_a": ra["outcome"], "outcome_b": rb["outcome"], "predicted_total_time_ms": predicted,
            "total_time_ms_a": float(ra["total_time_ms"]), "total_time_ms_b": float(rb["total_time_ms"]),
            "total_time_rel_diff": relative_difference(float(ra["total_time_ms"]), float(rb["total_time_ms"])),
            "total_time_rel_error_vs_prediction_b": relative_difference(predicted, float(rb["total_time_ms"])),
            "downtime_ms_a": float(ra["downtime_ms"]), "downtime_ms_b": float(rb["downtime_ms"]),
            "downtime_rel_diff": relative_difference(float(ra["downtime_ms"]), float(rb["downtime_ms"]))})
    return pd.DataFrame(rows, columns=list(MIGRATION_COLUMNS))


def _number(value: Any) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "—"
    return f"{float(value):.4g}"


def _percent(value: Any) -> str:
    return "—" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{100 * value:+.1f} %"


def format_comparison(c: Comparison) -> str:
    a, b = c.a.summary, c.b.summary
    lines = [f"scenario {a['scenario']}: A = {c.a.path} ({a['runtime']}, seed {a['seed']}), "
             f"B = {c.b.path} ({b['runtime']}, seed {b['seed']})", "", "verdicts:"]
    for row in c.verdicts.to_dict(orient="records"):
        mark = "agree" if row["agree"] else "DISAGREE"
        lines.append(f"  {mark:8s}  {row['target']}: A {row['verdict_a']}, B {row['verdict_b']}")
    lines += ["", "metrics (relative difference of B from A):"]
    for row in c.metrics.to_dict(orient="records"):
        lines.append(f"  {row['metric']}: A {_number(row['a'])}, B {_number(row['b'])}, {_percent(row['rel_diff'])}")
    lines += ["", f"migrations matched by VM: {len(c.migrations)}"]
    for row in c.migrations.to_dict(orient="records"):
        lines.append(f"  {row['vm_id']} #{row['nth']}: predicted {_number(row['predicted_total_time_ms'])} ms, "
                     f"A {_number(row['total_time_ms_a'])} ms ({row['outcome_a']}), "
                     f"B {_number(row['total_time_ms_b'])} ms ({row['outcome_b']}), "
                     f"{_percent(row['total_time_rel_diff'])}; downtime A {_number(row['downtime_ms_a'])} ms, "
                     f"B {_number(row['downtime_ms_b'])} ms")
    verdict = "every verdict agrees" if c.agree else f"verdicts disagree: {', '.join(c.disagreements)}"
    lines += ["", verdict]
    return "\n".join(lines)


def plot_comparison(c: Comparison) -> Figure:
    """Left: each migration's total time, B against A (with the planner's prediction), on a
    diagonal of agreement. Right: the relative difference of B from A for each target's metric,
    coloured by whether the verdicts agree."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter

    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    m = c.migrations
    if m.empty:
        left.text(0.5, 0.5, "no migration in both runs", ha="center", va="center", transform=left.transAxes)
    else:
        left.scatter(m["total_time_ms_a"], m["total_time_ms_b"], s=14, label="measured: B vs A")
        finite = m[m["predicted_total_time_ms"].map(math.isfinite)]
        left.scatter(finite["predicted_total_time_ms"], finite["total_time_ms_b"], s=14, marker="x",
                     label="B vs the planner's prediction")
        values = pd.concat([m["total_time_ms_a"], m["total_time_ms_b"], finite["predicted_total_time_ms"]])
        low, high = max(float(values.min()), 1.0), max(float(values.max()), 2.0)
        left.plot([low, high], [low, high], color="grey", ls=":", lw=1, label="agreement")
        left.set(xscale="log", yscale="log")
        left.xaxis.set_minor_formatter(NullFormatter())
        left.yaxis.set_minor_formatter(NullFormatter())
        left.legend(loc="upper left", fontsize=8)
    left.set(xlabel="A: measured (or predicted, x) total time (ms)", ylabel="B: measured total time (ms)",
             title="Migrations matched by VM")
    v = c.verdicts.merge(c.metrics, on="metric", how="left")
    diffs = v["rel_diff"].map(lambda x: 0.0 if x is None or pd.isna(x) else 100.0 * float(x))
    colours = ["C2" if agree else "C3" for agree in v["agree"]]
    right.barh(range(len(v)), diffs, color=colours)
    right.set_yticks(range(len(v)), [f"{t} ({'agree' if ok else 'DISAGREE'})" for t, ok in zip(v["target"],
                                                                                              v["agree"], strict=True)],
                     fontsize=7)
    right.axvline(0, color="grey", lw=1)
    right.invert_yaxis()
    right.set(xlabel="B relative to A (%)", title="Targets: B's metric vs A's (green: verdicts agree)")
    fig.suptitle(f"novacron compare: {c.a.summary['scenario']} — A {c.a.summary['runtime']}, "
                 f"B {c.b.summary['runtime']}", fontsize=10)
    fig.tight_layout()
    return fig


def check_plot_path(path: Path) -> None:
    """A ``CompareError`` unless ``path`` names a file matplotlib can write (its suffix picks the format:
    without one, matplotlib would write ``PATH.png`` behind the caller's back)."""
    from matplotlib.backend_bases import FigureCanvasBase

    formats = sorted(FigureCanvasBase.get_supported_filetypes())
    if path.is_dir() or path.suffix.lstrip(".").lower() not in formats:
        what = ("is a folder" if path.is_dir() else f"suffix {path.suffix!r} is not an image format" if path.suffix
                else "has no suffix to choose the image format")
        raise CompareError(f"--plot {path}: {what}; allowed: a file ending in .{', .'.join(formats)}")


def write_plot(c: Comparison, path: Path) -> Path:
    import matplotlib.pyplot as plt

    fig = plot_comparison(c)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path

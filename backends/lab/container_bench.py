"""Real container migrations against the core's checkpoint/restore model: the error table.

Theory of operation
-------------------
Each grid point (link x state size x dirty rate) is one ``migrate_container`` run. Its prediction
is ``novacron.migration.kinds.plan("container_to_container", ...)`` for the same workload: memory
= the state moved, the service's working set, and as measured in the run its dirty rate (page
writes from the first round to the freeze) and the link's rate (the first, full, round's), with
the run's own ``final_mib`` and ``max_rounds`` as the model's ``final_dump_mib`` and
``max_pre_dumps``. Two predictions per point:

- the model's defaults (CRIU's fixed costs as assumed in ``KindMigrationParams``);
- fitted: ``freeze_s`` = the median measured freeze, ``restore_rate_mib_s`` at its ceiling (the
  restore side has every page in place when the commit arrives: nothing is mapped at restore),
  and ``restore_fixed_s`` = the median residual of the other points' downtimes once the
  model's variable terms are taken out -- leave-one-out, so no point predicts itself.

Errors are (predicted - measured) / measured.
"""

from __future__ import annotations

import itertools
import json
import statistics
import tempfile
from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from backends.lab.container_rig import (
    ContainerMigrationReport,
    ContainerMigrationSpec,
    migrate_container,
    report_from_json,
)
from novacron.migration.kinds import KindMigrationParams, KindMigrationPlan, Workload, plan, pre_copy_rounds

PATH = "container_to_container"
RESTORE_RATE_CEILING_MIB_S = 1e6


def model_params(spec: ContainerMigrationSpec, base: KindMigrationParams | None = None) -> KindMigrationParams:
    return replace(base or KindMigrationParams(), final_dump_mib=spec.final_mib, max_pre_dumps=spec.max_rounds)


def workload(report: ContainerMigrationReport) -> Workload:
    return Workload(memory_mib=report.state_pages / 256, wws_mib=report.spec.wws_mib,
                    dirty_rate_mib_s=report.dirty_rate_mib_s, bandwidth_mib_s=report.link_mib_s)


def predict(report: ContainerMigrationReport, params: KindMigrationParams) -> KindMigrationPlan:
    return plan(PATH, workload(report), model_params(report.spec, params))


def predicted_final_mib(report: ContainerMigrationReport) -> float:
    return pre_copy_rounds(workload(report), report.spec.final_mib, report.spec.max_rounds)[1]


def restore_residual_s(report: ContainerMigrationReport, params: KindMigrationParams) -> float:
    """The measured downtime less every term of the model's downtime but ``restore_fixed_s``."""
    variable = predict(report, replace(params, restore_fixed_s=0.0)).downtime_s
    return report.downtime_s - variable


def fitted_params(reports: Sequence[ContainerMigrationReport]) -> KindMigrationParams:
    """Fixed costs fitted to ``reports`` (see the module docstring)."""
    if not reports:
        raise ValueError("fitting needs at least one measured migration")
    base = replace(KindMigrationParams(), freeze_s=statistics.median(r.freeze_wait_s for r in reports),
                   restore_rate_mib_s=RESTORE_RATE_CEILING_MIB_S)
    return replace(base, restore_fixed_s=max(0.0, statistics.median(restore_residual_s(r, base) for r in reports)))


@dataclass(frozen=True, slots=True)
class ErrorRow:
    """One grid point: its repeated runs and the model's predictions for each (median over runs)."""

    runs: tuple[ContainerMigrationReport, ...]
    default_downtime_s: float
    fitted_downtime_s: float
    fitted_total_s: float
    model_rounds: int
    model_final_mib: float
    fitted_restore_fixed_s: float

    @property
    def downtime_s(self) -> float:
        return statistics.median(r.downtime_s for r in self.runs)


def error_rows(groups: Sequence[Sequence[ContainerMigrationReport]]) -> list[ErrorRow]:
    """Predictions per grid point; the fitted ones leave the point's own runs out of the fit."""
    rows = []
    for i, runs in enumerate(groups):
        others = [r for j, group in enumerate(groups) if j != i for r in group] or list(runs)
        params = fitted_params(others)
        fitted = [predict(r, params) for r in runs]
        rows.append(ErrorRow(
            tuple(runs), statistics.median(predict(r, KindMigrationParams()).downtime_s for r in runs),
            statistics.median(p.downtime_s for p in fitted), statistics.median(p.total_s for p in fitted),
            fitted[0].pre_dumps, statistics.median(predicted_final_mib(r) for r in runs), params.restore_fixed_s))
    return rows


def error_pct(predicted: float, measured: float) -> str:
    return f"{(predicted - measured) / measured * 100:+.0f} %" if measured > 0 else "n/a"


def format_table(rows: Sequence[ErrorRow]) -> str:
    lines = ["| link Mbit/s | state MiB | dirty MiB/s set (measured) | runs | link MiB/s | rounds real/model | "
             "final KiB real/model | "
             "downtime ms real: median (min-max) | / usual reply gap | model, defaults | error | "
             "model, fitted (LOO) | error | total s real | model, fitted | error | replies / problems |",
             "|" + "---|" * 17]
    for row in rows:
        first, runs = row.runs[0], row.runs
        total_s = statistics.median(r.total_s for r in runs)
        lines.append(
            f"| {first.spec.link_mbit:g} | {first.spec.state_mib:g} | {first.spec.dirty_rate_mib_s:g} "
            f"({statistics.median(r.dirty_rate_mib_s for r in runs):.1f}) | {len(runs)} | "
            f"{statistics.median(r.link_mib_s for r in runs):.1f} | "
            f"{statistics.median(len(r.round_pages) for r in runs):g}/{row.model_rounds} | "
            f"{statistics.median(r.final_pages * 4 for r in runs):.0f}/{row.model_final_mib * 1024:.0f} | "
            f"{row.downtime_s * 1000:.1f} ({min(r.downtime_s for r in runs) * 1000:.1f}-"
            f"{max(r.downtime_s for r in runs) * 1000:.1f}) | "
            f"{statistics.median(r.downtime_s / max(r.replies.median_gap_s, 1e-9) for r in runs):.1f} | "
            f"{row.default_downtime_s * 1000:.0f} | "
            f"{error_pct(row.default_downtime_s, row.downtime_s)} | {row.fitted_downtime_s * 1000:.1f} | "
            f"{error_pct(row.fitted_downtime_s, row.downtime_s)} | {total_s:.2f} | {row.fitted_total_s:.2f} | "
            f"{error_pct(row.fitted_total_s, total_s)} | {sum(r.replies.replies for r in runs)} / "
            f"{sum(len(r.replies.problems) for r in runs)} |")
    return "\n".join(lines)


def grid_specs(state_mib: Sequence[float], dirty_rate_mib_s: Sequence[float], link_mbit: Sequence[float], *,
               wws_mib: float, final_mib: float, max_rounds: int) -> list[ContainerMigrationSpec]:
    """One spec per (link, state size, dirty rate); ``ValueError`` naming the first bad figure."""
    return [ContainerMigrationSpec(state_mib=m, dirty_rate_mib_s=d, wws_mib=min(wws_mib, m), link_mbit=link,
                                   final_mib=final_mib, max_rounds=max_rounds)
            for link, m, d in itertools.product(link_mbit, state_mib, dirty_rate_mib_s)]


def run_grid(specs: Sequence[ContainerMigrationSpec], repeats: int, out: Path | None) -> int:
    """Every spec ``repeats`` times (interleaved, so a slow spell of the machine hits every point),
    then the error table; exit 1 when any run lost, repeated or reordered a reply or a page."""
    groups: list[list[ContainerMigrationReport]] = [[] for _ in specs]
    with tempfile.TemporaryDirectory(prefix="novacron-ct-") as scratch:
        for repeat, (index, spec) in itertools.product(range(repeats), enumerate(specs)):
            report = migrate_container(spec, Path(scratch) / f"run-{index}-{repeat}")
            print(report.summary(), flush=True)
            groups[index].append(report)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        reports = [asdict(r) for group in groups for r in group]
        (out / "runs.json").write_text(json.dumps(reports, indent=1) + "\n")
    return write_table(groups, out)


def load_groups(path: Path) -> list[list[ContainerMigrationReport]]:
    """The runs of an earlier ``run_grid`` (its ``runs.json``), grouped by spec in their order;
    ``ValueError`` naming the file for anything unreadable."""
    try:
        docs = json.loads(path.read_text())
        if not isinstance(docs, list):
            raise ValueError("allowed a list of runs")
        reports = [report_from_json(doc) for doc in docs]
    except (OSError, TypeError, ValueError) as exc:  # JSON and UTF-8 errors are ValueErrors
        raise ValueError(f"{path}: not a runs.json of container-migrate ({type(exc).__name__}: {exc})") from None
    if not reports:
        raise ValueError(f"{path}: holds no runs")
    groups: dict[ContainerMigrationSpec, list[ContainerMigrationReport]] = {}
    for report in reports:
        groups.setdefault(report.spec, []).append(report)
    return list(groups.values())


def write_table(groups: Sequence[Sequence[ContainerMigrationReport]], out: Path | None) -> int:
    reports = [r for group in groups for r in group]
    rows = error_rows(groups)
    overall = fitted_params(reports)
    table = (format_table(rows) + "\n\nrestore_fixed_s fitted leaving each point out: "
             + ", ".join(f"{row.fitted_restore_fixed_s * 1000:.1f} ms" for row in rows)
             + f"; on all points: {overall.restore_fixed_s * 1000:.1f} ms (freeze_s {overall.freeze_s * 1000:.2f} ms)")
    print(table)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        (out / "errors.md").write_text(table + "\n")
    return 0 if all(not r.replies.problems and r.digests_equal for r in reports) else 1

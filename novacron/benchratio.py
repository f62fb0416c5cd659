"""Tracked benchmark ratios: regressions judged against a baseline measured in the same run.

Theory of operation
-------------------
Wall-clock numbers from one machine say little about another, and even on one machine they drift
with load. A ratio to a baseline measured in the same run (NovaCron's L1 against a plain dict,
the simulation against a bare SimPy loop) cancels most of that. A benchmark declares its
baseline with ``benchmark.extra_info["baseline"] = "<name of the baseline benchmark>"``; its
tracked ratio is ``median(subject) / median(baseline)`` — lower is better. Medians over several
rounds resist outliers. A ratio regresses when it grows by more than the tolerance relative to
the previous run's ratio; the default tolerance (30 %) is wider than the run-to-run spread of
medians measured on the 2-core CI machine. A benchmark that measures its baseline inside one round (the simulation
against a bare SimPy loop) reports the ratio itself as ``extra_info["baseline_ratio"]``.

Input is pytest-benchmark's JSON (``--benchmark-json``); this module only reads dicts.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

DEFAULT_TOLERANCE = 0.30


@dataclass(frozen=True, slots=True)
class Ratio:
    """How much slower ``subject`` ran than ``baseline`` in the same run (``value`` > 1: slower)."""

    subject: str
    baseline: str
    value: float


@dataclass(frozen=True, slots=True)
class Comparison:
    subject: str
    baseline: str
    previous: float | None
    current: float
    regressed: bool

    def describe(self) -> str:
        if self.previous is None:
            return f"{self.subject} / {self.baseline}: {self.current:.3g} (new)"
        change = (self.current / self.previous - 1) * 100
        verdict = "REGRESSED" if self.regressed else "ok"
        return (f"{self.subject} / {self.baseline}: {self.previous:.3g} -> {self.current:.3g} "
                f"({change:+.1f} %) {verdict}")


def _short(name: str) -> str:
    return name.split("::")[-1]


def check_report(report: object) -> Mapping[str, Any]:
    """``report`` if it has the shape this module reads (pytest-benchmark's JSON): ``benchmarks``, a
    list of objects, each with a ``name``, a positive ``stats.median`` and, if any, an ``extra_info``
    whose ``baseline`` is a name and ``baseline_ratio`` a positive number. ``ValueError`` naming the
    first field that is not."""
    if not isinstance(report, Mapping):
        raise ValueError(f"the top level is a JSON {type(report).__name__}, not an object with 'benchmarks'")
    benchmarks = report.get("benchmarks")
    if not isinstance(benchmarks, list):
        raise ValueError("'benchmarks' is missing or not a list")
    for index, bench in enumerate(benchmarks):
        where = f"benchmarks[{index}]"
        if not isinstance(bench, Mapping):
            raise ValueError(f"{where} is not an object")
        if not isinstance(bench.get("name"), str):
            raise ValueError(f"{where}.name is missing or not a string")
        stats = bench.get("stats")
        _check_positive(stats.get("median") if isinstance(stats, Mapping) else None, f"{where}.stats.median")
        info = bench.get("extra_info")
        if info is None:
            continue
        if not isinstance(info, Mapping):
            raise ValueError(f"{where}.extra_info is not an object")
        baseline = info.get("baseline")
        if baseline is not None and not isinstance(baseline, str):
            raise ValueError(f"{where}.extra_info.baseline = {baseline!r} is not a benchmark name")
        if baseline and "baseline_ratio" in info:  # read only with a baseline, as tracked_ratios does
            _check_positive(info["baseline_ratio"], f"{where}.extra_info.baseline_ratio")
    return report


def _check_positive(value: object, field: str) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value < float("inf"):
        raise ValueError(f"{field} = {value!r}; allowed: a positive number")


def tracked_ratios(report: Mapping[str, Any], *, strict: bool = True) -> list[Ratio]:
    """Every subject/baseline ratio declared in one pytest-benchmark JSON report.

    A baseline that did not run (a ``-k`` selection left it out) raises when ``strict``, else the
    ratio is left out. A report of another shape raises ``ValueError`` (``check_report``)."""
    check_report(report)
    medians = {_short(b["name"]): float(b["stats"]["median"]) for b in report.get("benchmarks", [])}
    ratios = []
    for bench in report.get("benchmarks", []):
        info = bench.get("extra_info") or {}
        baseline = info.get("baseline")
        if not baseline:
            continue
        if "baseline_ratio" in info:
            ratios.append(Ratio(_short(bench["name"]), baseline, float(info["baseline_ratio"])))
            continue
        if baseline not in medians:
            if not strict:
                continue
            raise ValueError(f"benchmark {_short(bench['name'])} names baseline {baseline!r}, "
                             f"which did not run; ran: {', '.join(sorted(medians))}")
        ratios.append(Ratio(_short(bench["name"]), baseline, medians[_short(bench["name"])] / medians[baseline]))
    return ratios


def compare(previous: Mapping[str, Any] | None, current: Mapping[str, Any],
            tolerance: float = DEFAULT_TOLERANCE) -> list[Comparison]:
    before = {(r.subject, r.baseline): r.value for r in tracked_ratios(previous, strict=False)} if previous else {}
    out = []
    for ratio in tracked_ratios(current, strict=False):
        prev = before.get((ratio.subject, ratio.baseline))
        regressed = prev is not None and ratio.value > prev * (1 + tolerance)
        out.append(Comparison(ratio.subject, ratio.baseline, prev, ratio.value, regressed))
    return out

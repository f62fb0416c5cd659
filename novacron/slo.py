"""The target catalogue: every NovaCron target as data, and the evaluator that checks a run.

Targets come from the NovaCron Phase 1 analysis as summarised in DESIGN.md. A target names the
metric it reads (a key of the run's metrics), a comparator and a threshold. ``kind`` tells
whether it is a measured outcome (``outcome``), a reference figure from the analysis that is
reported but does not fail a check (``reference``), or a configuration limit the run must
respect (``config``). A target whose metric a run did not produce is ``not measured``, never a
pass.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from enum import Enum


class Comparator(Enum):
    LT = "<"
    LE = "<="
    GT = ">"
    GE = ">="
    EQ = "=="
    BETWEEN = "between"

    def holds(self, value: float, threshold: float | tuple[float, float]) -> bool:
        if isinstance(threshold, tuple):
            low, high = threshold
            return low <= value <= high
        return {
            Comparator.LT: value < threshold,
            Comparator.LE: value <= threshold,
            Comparator.GT: value > threshold,
            Comparator.GE: value >= threshold,
            Comparator.EQ: math.isclose(value, threshold),
            Comparator.BETWEEN: False,
        }[self]


class Status(Enum):
    PASS = "pass"
    FAIL = "FAIL"
    NOT_MEASURED = "not measured"


@dataclass(frozen=True, slots=True, kw_only=True)
class Target:
    name: str
    metric: str
    unit: str
    comparator: Comparator
    threshold: float | tuple[float, float]
    source: str
    kind: str = "outcome"

    def describe_threshold(self) -> str:
        if isinstance(self.threshold, tuple):
            return f"{self.threshold[0]:g}–{self.threshold[1]:g} {self.unit}"
        return f"{self.comparator.value} {self.threshold:g} {self.unit}"


ANALYSIS = "NovaCron Phase 1 analysis (DESIGN.md, Targets)"


def _t(name: str, metric: str, unit: str, cmp: str, threshold: float | tuple[float, float],
       kind: str = "outcome") -> Target:
    comparator = Comparator.BETWEEN if isinstance(threshold, tuple) else Comparator(cmp)
    return Target(name=name, metric=metric, unit=unit, comparator=comparator,
                  threshold=threshold, source=ANALYSIS, kind=kind)


CATALOGUE: tuple[Target, ...] = (
    _t("live migration downtime (max)", "migration.live.downtime_max_ms", "ms", "<", 5000),
    _t("live migration downtime p99 (stretch)", "migration.live.downtime_p99_ms", "ms", "<", 1000),
    _t("warm migration downtime (max)", "migration.warm.downtime_max_ms", "ms", "<", 30000),
    _t("cache hit rate, all tiers", "cache.overall.hit_rate_pct", "%", ">", 98.0),
    _t("L1 hit rate (analysis figure)", "cache.l1.hit_rate_pct", "%", ">=", 85.0, "reference"),
    _t("L2 hit rate (analysis figure)", "cache.l2.hit_rate_pct", "%", ">=", 95.0, "reference"),
    _t("L3 hit rate (analysis figure)", "cache.l3.hit_rate_pct", "%", ">=", 99.0, "reference"),
    _t("election timeout range", "raft.election_timeout_ms_range_ok", "bool", "==", 1.0, "config"),
    _t("heartbeat interval", "raft.heartbeat_interval_ms", "ms", "==", 50.0, "config"),
    _t("cluster formation (WAN)", "raft.formation_s", "s", "<", 30.0),
    _t("partition recovery", "raft.partition_recovery_s", "s", "<", 30.0),
    _t("leader failover (crash to new leader's commit)", "raft.failover_ms", "ms", "<", 1000.0),
    _t("uptime", "cluster.uptime_pct", "%", ">", 99.9),
    _t("peak CPU utilisation", "cluster.peak_cpu_pct", "%", "<", 80.0),
    _t("peak memory utilisation", "cluster.peak_memory_pct", "%", "<", 85.0),
    _t("policy evaluation, 5 policies", "scheduler.policy_eval_p99_ms", "ms", "<", 10.0),
    _t("concurrent migrations per node", "migration.max_concurrent_per_host", "", "<=", 2, "config"),
    _t("concurrent migrations in all", "migration.max_concurrent_global", "", "<=", 10, "config"),
    _t("CPU headroom kept", "scheduler.min_headroom_cpu_pct", "%", ">=", 20.0),
    _t("memory headroom kept", "scheduler.min_headroom_memory_pct", "%", ">=", 10.0),
    _t("network headroom kept", "scheduler.min_headroom_network_pct", "%", ">=", 30.0),
    _t("I/O headroom kept", "scheduler.min_headroom_io_pct", "%", ">=", 20.0),
    _t("L1 capacity", "cache.l1.capacity_items", "items", "==", 10000, "config"),
    _t("L1 TTL", "cache.l1.ttl_s", "s", "==", 300.0, "config"),
    _t("L1 cleanup interval", "cache.l1.cleanup_interval_s", "s", "==", 30.0, "config"),
    _t("decision cache TTL", "scheduler.decision_cache_ttl_s", "s", "==", 120.0, "config"),
    _t("Raft managers", "raft.managers", "", "between", (1, 7), "config"),
    _t("formation timeout", "raft.formation_timeout_s", "s", "==", 120.0, "config"),
)


@dataclass(frozen=True, slots=True)
class TargetResult:
    target: Target
    measured: float | None
    status: Status

    def as_row(self) -> dict[str, object]:
        return {
            "target": self.target.name,
            "metric": self.target.metric,
            "threshold": self.target.describe_threshold(),
            "measured": self.measured,
            "unit": self.target.unit,
            "status": self.status.value,
            "kind": self.target.kind,
        }

    @property
    def missed(self) -> bool:
        """A missed target fails a check; reference figures never do."""
        return self.status is Status.FAIL and self.target.kind != "reference"


def evaluate(metrics: Mapping[str, float], catalogue: Iterable[Target] = CATALOGUE) -> list[TargetResult]:
    results = []
    for target in catalogue:
        value = metrics.get(target.metric)
        if value is None or (isinstance(value, float) and math.isnan(value)):
            results.append(TargetResult(target, None, Status.NOT_MEASURED))
            continue
        ok = target.comparator.holds(float(value), target.threshold)
        results.append(TargetResult(target, float(value), Status.PASS if ok else Status.FAIL))
    return results


def format_table(results: Iterable[TargetResult], *, include_unmeasured: bool = False) -> str:
    """The target table as aligned text, as ``novacron run`` prints it."""
    rows = [r for r in results if include_unmeasured or r.status is not Status.NOT_MEASURED]
    header = ("target", "threshold", "measured", "status")
    body = [(r.target.name, r.target.describe_threshold(), _fmt(r.measured, r.target.unit), _status_text(r))
            for r in rows]
    widths = [max(len(str(x)) for x in col) for col in zip(header, *body, strict=False)]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)) for row in (header, *body)]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def _status_text(result: TargetResult) -> str:
    return status_label(result.status.value, result.target.kind)


def status_label(status: str, kind: str) -> str:
    """How a row's status reads: reference figures are compared, never failed."""
    if kind != "reference" or status == Status.NOT_MEASURED.value:
        return status
    return "below (reference figure)" if status == Status.FAIL.value else "meets (reference figure)"


def format_measured(value: float | None, unit: str) -> str:
    return _fmt(value, unit)


def _fmt(value: float | None, unit: str) -> str:
    if value is None:
        return "—"
    if value.is_integer() and abs(value) < 1e12:
        return f"{int(value):,} {unit}".strip()
    return f"{value:.4g} {unit}".strip()

"""Migration metrics from ``MigrationFinished`` / ``MigrationAdmitted`` events alone.

Names: ``migration.<type>.downtime_{p50,p95,p99,max}_ms`` and ``total_time_{p50,p95,p99,max}_ms``
over completed migrations of each type (the type actually run: a live migration that switched
to post-copy counts as post-copy; the downtime figures are left out, so not measured, when one
of them has no measured downtime), ``migration.<outcome>`` counts, ``migration.vms_lost``,
the observed peaks of concurrency, and the planner's median relative error on total time.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from novacron.events import Event
from novacron.migration.events import MigrationAdmitted, MigrationFinished
from novacron.streaming import EventsByType, fold_events, running_max

Metrics = dict[str, float]

TYPES = ("cold", "warm", "live", "postcopy")
OUTCOMES = ("completed", "aborted", "rolled_back", "failed")


def _percentiles(prefix: str, values: list[float], metrics: Metrics) -> None:
    data = np.asarray(values, dtype=float)
    for p in (50, 95, 99):
        metrics[f"{prefix}_p{p}_ms"] = float(np.percentile(data, p))
    metrics[f"{prefix}_max_ms"] = float(data.max())


class MigrationFold:
    """Outcome counts and, per type, the completed migrations' times (one pair per migration:
    kept), the planner's errors, and the admission peaks."""

    def __init__(self) -> None:
        self.finished = 0
        self.outcomes = dict.fromkeys(OUTCOMES, 0)
        self.vms_lost = 0
        self.downtime_ms: dict[str, list[float]] = {kind: [] for kind in TYPES}
        self.total_time_ms: dict[str, list[float]] = {kind: [] for kind in TYPES}
        self.errors: list[float] = []
        self.peak_global: float | None = None
        self.peak_per_host: float | None = None
        self.queue_wait_s: list[float] = []

    def handlers(self) -> Mapping[type[Event], Callable[[Any], None]]:
        return {MigrationFinished: self._finished, MigrationAdmitted: self._admitted}

    def _finished(self, f: MigrationFinished) -> None:
        self.finished += 1
        if f.outcome in self.outcomes:
            self.outcomes[f.outcome] += 1
        self.vms_lost += bool(f.vm_lost)
        if f.outcome != "completed":
            return
        if f.migration_type in self.downtime_ms:
            self.downtime_ms[f.migration_type].append(f.downtime_ms)
            self.total_time_ms[f.migration_type].append(f.total_time_ms)
        if (f.migration_type == f.predicted_type and math.isfinite(f.predicted_total_time_ms)
                and f.predicted_total_time_ms > 0):
            self.errors.append(abs(f.total_time_ms / f.predicted_total_time_ms - 1.0))

    def _admitted(self, a: MigrationAdmitted) -> None:
        self.peak_global = running_max(self.peak_global, a.running_global)
        self.peak_per_host = running_max(self.peak_per_host, max(a.running_on_source, a.running_on_destination))
        self.queue_wait_s.append(a.queue_wait_s)

    def result(self) -> Metrics:
        metrics: Metrics = {}
        if self.finished:
            metrics["migration.requested"] = float(self.finished)
            for outcome, count in self.outcomes.items():
                metrics[f"migration.{outcome}"] = float(count)
            metrics["migration.vms_lost"] = float(self.vms_lost)
            for kind in TYPES:
                if not self.downtime_ms[kind]:
                    continue
                metrics[f"migration.{kind}.completed"] = float(len(self.downtime_ms[kind]))
                if all(math.isfinite(d) for d in self.downtime_ms[kind]):  # one unmeasured: the tail is unknown
                    _percentiles(f"migration.{kind}.downtime", self.downtime_ms[kind], metrics)
                _percentiles(f"migration.{kind}.total_time", self.total_time_ms[kind], metrics)
            if self.errors:
                metrics["migration.planner.total_time_error_p50_pct"] = 100.0 * float(np.median(self.errors))
            if self.peak_global is not None and self.peak_per_host is not None:
                metrics["migration.peak_running_global"] = float(self.peak_global)
                metrics["migration.peak_running_per_host"] = float(self.peak_per_host)
                metrics["migration.queue_wait_p95_s"] = float(np.percentile(self.queue_wait_s, 95))
        return metrics


def migration_metrics(events: EventsByType) -> Metrics:
    return fold_events(MigrationFold(), events)

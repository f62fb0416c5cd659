"""Migration metrics from ``MigrationFinished`` / ``MigrationAdmitted`` events alone.

Names: ``migration.<type>.downtime_{p50,p95,p99,max}_ms`` and ``total_time_{p50,p95,p99,max}_ms``
over completed migrations of each type (the type actually run: a live migration that switched
to post-copy counts as post-copy; the downtime figures are left out, so not measured, when one
of them has no measured downtime), ``migration.<outcome>`` counts, ``migration.vms_lost``,
the observed peaks of concurrency, and the planner's median relative error on total time.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from novacron.migration.events import MigrationAdmitted, MigrationFinished

if TYPE_CHECKING:
    from novacron.metrics import EventsByType

Metrics = dict[str, float]

TYPES = ("cold", "warm", "live", "postcopy")
OUTCOMES = ("completed", "aborted", "rolled_back", "failed")


def _percentiles(prefix: str, values: list[float], metrics: Metrics) -> None:
    data = np.asarray(values, dtype=float)
    for p in (50, 95, 99):
        metrics[f"{prefix}_p{p}_ms"] = float(np.percentile(data, p))
    metrics[f"{prefix}_max_ms"] = float(data.max())


def migration_metrics(events: EventsByType) -> Metrics:
    finished = events.of(MigrationFinished)
    if not finished:
        return {}
    metrics: Metrics = {"migration.requested": float(len(finished))}
    for outcome in OUTCOMES:
        metrics[f"migration.{outcome}"] = float(sum(1 for f in finished if f.outcome == outcome))
    metrics["migration.vms_lost"] = float(sum(1 for f in finished if f.vm_lost))
    done = [f for f in finished if f.outcome == "completed"]
    for kind in TYPES:
        rows = [f for f in done if f.migration_type == kind]
        if not rows:
            continue
        metrics[f"migration.{kind}.completed"] = float(len(rows))
        downtimes = [f.downtime_ms for f in rows]
        if all(math.isfinite(d) for d in downtimes):  # one unmeasured downtime: the tail is unknown
            _percentiles(f"migration.{kind}.downtime", downtimes, metrics)
        _percentiles(f"migration.{kind}.total_time", [f.total_time_ms for f in rows], metrics)
    errors = [abs(f.total_time_ms / f.predicted_total_time_ms - 1.0) for f in done
              if f.migration_type == f.predicted_type and math.isfinite(f.predicted_total_time_ms)
              and f.predicted_total_time_ms > 0]
    if errors:
        metrics["migration.planner.total_time_error_p50_pct"] = 100.0 * float(np.median(errors))
    admitted = events.of(MigrationAdmitted)
    if admitted:
        metrics["migration.peak_running_global"] = float(max(a.running_global for a in admitted))
        metrics["migration.peak_running_per_host"] = float(
            max(max(a.running_on_source, a.running_on_destination) for a in admitted))
        metrics["migration.queue_wait_p95_s"] = float(np.percentile([a.queue_wait_s for a in admitted], 95))
    return metrics

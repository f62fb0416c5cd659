"""Migration metrics by path between workload kinds, from ``KindMigrationFinished`` alone.

Names: ``migration.kind.<path>.{attempts,completed,success_pct}`` and
``migration.kind.<path>.downtime_{p50,p95,p99,max}_ms`` / ``total_time_...`` over completed ones.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from novacron.events import Event
from novacron.migration.events import KindMigrationFinished
from novacron.migration.kinds import PATHS
from novacron.streaming import Metrics

STATS = ("p50", "p95", "p99", "max")


def _kind_metric_rows() -> tuple[tuple[str, str, str], ...]:
    rows: list[tuple[str, str, str]] = []
    for path in PATHS:
        label = path.replace("_to_", " -> ").replace("_", " ")
        rows += [(f"migration.kind.{path}.attempts", "", f"{label} migrations attempted"),
                 (f"migration.kind.{path}.completed", "", f"{label} migrations completed"),
                 (f"migration.kind.{path}.success_pct", "%", f"{label} migrations completed over attempted")]
        for what in ("downtime", "total_time"):
            rows += [(f"migration.kind.{path}.{what}_{stat}_ms", "ms",
                      f"{stat} {what.replace('_', ' ')} of completed {label} migrations") for stat in STATS]
    return tuple(rows)


KIND_MIGRATION_METRICS = _kind_metric_rows()


class KindMigrationFold:
    def __init__(self) -> None:
        self.attempts = dict.fromkeys(PATHS, 0)
        self.downtime_ms: dict[str, list[float]] = {p: [] for p in PATHS}
        self.total_time_ms: dict[str, list[float]] = {p: [] for p in PATHS}

    def handlers(self) -> Mapping[type[Event], Callable[[Any], None]]:
        return {KindMigrationFinished: self._finished}

    def _finished(self, ev: KindMigrationFinished) -> None:
        self.attempts[ev.path] += 1
        if ev.outcome == "completed":
            self.downtime_ms[ev.path].append(ev.downtime_ms)
            self.total_time_ms[ev.path].append(ev.total_time_ms)

    def result(self) -> Metrics:
        m: Metrics = {}
        for path, attempts in self.attempts.items():
            if not attempts:
                continue
            done, prefix = self.downtime_ms[path], f"migration.kind.{path}"
            m.update({f"{prefix}.attempts": float(attempts), f"{prefix}.completed": float(len(done)),
                      f"{prefix}.success_pct": 100.0 * len(done) / attempts})
            for what, values in (("downtime", done), ("total_time", self.total_time_ms[path])):
                if values:
                    data = np.asarray(values)
                    m.update({f"{prefix}.{what}_p{p}_ms": float(np.percentile(data, p)) for p in (50, 95, 99)})
                    m[f"{prefix}.{what}_max_ms"] = float(data.max())
        return m

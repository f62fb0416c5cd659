"""``novacron export-metrics RUN_DIR``: a run's telemetry as OpenMetrics text.

The events stream from ``events.parquet`` one record batch at a time (only the event types the
reducer reads) through ``novacron.telemetry.TelemetryReducer``. OpenMetrics wants each family's
samples together and each series' samples in time order, so the samples are grouped per family
and series before writing (the memory of the samples, not of the log). Timestamps are the
run-relative ``t_s`` plus ``start_unix_s``, so a simulated run can be placed at any date and
backfilled into Prometheus (``promtool tsdb create-blocks-from openmetrics FILE DIR``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TextIO

import pyarrow as pa
import pyarrow.compute as pc

from novacron.app.eventstore import check_log, scan_batches, table_to_events
from novacron.events import Event
from novacron.telemetry import FAMILIES, Labels, Sample, TelemetryReducer

READ_TYPES = ("HostUtilisationSampled", "ClusterUtilisationSampled", "VMPlaced", "VMRejected", "HostFailed",
              "MigrationRoundCompleted", "MigrationFinished", "TermStarted", "LeaderElected", "ManagerCrashed",
              "CacheStatsSampled", "HostDevicesSampled", "ManagerHeartbeatsSampled")
"""The event types ``TelemetryReducer`` turns into samples (a test keeps the two in step)."""


def iter_events(log: Path) -> Iterator[Event]:
    schema = check_log(log)
    for batch in scan_batches(log, columns=schema.names, filter=pc.field("type").isin(list(READ_TYPES))):
        yield from table_to_events(pa.Table.from_batches([batch], schema=schema))


def write_openmetrics(samples: Iterable[Sample], out: TextIO, *, start_unix_s: float = 0.0) -> int:
    """Write ``samples`` as OpenMetrics text; the number of samples written. Within a series, a
    later sample at the same timestamp replaces the earlier one (OpenMetrics forbids two)."""
    series: dict[str, dict[Labels, dict[float, float]]] = {}
    for s in samples:
        series.setdefault(s.family, {}).setdefault(s.labels, {})[s.t_s] = s.value
    written = 0
    for name, family in FAMILIES.items():
        if name not in series:
            continue
        out.write(f"# TYPE {name} {family.kind}\n# HELP {name} {family.help}\n")
        sample_name = name + ("_total" if family.kind == "counter" else "")
        for labels, points in sorted(series[name].items()):
            label_text = _labels(labels)
            for t_s in sorted(points):
                out.write(f"{sample_name}{label_text} {_number(points[t_s])} {_number(t_s + start_unix_s)}\n")
                written += 1
    out.write("# EOF\n")
    return written


def export_run(run_dir: Path, out: TextIO, *, start_unix_s: float = 0.0) -> int:
    return write_openmetrics(TelemetryReducer().reduce(iter_events(run_dir / "events.parquet")), out,
                             start_unix_s=start_unix_s)


def _labels(labels: Labels) -> str:
    if not labels:
        return ""
    return "{" + ",".join(f'{key}="{_escape(value)}"' for key, value in labels) + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))

"""The run directory: what every run leaves behind, whichever runtime produced it.

``events.parquet`` (the log), ``scenario.toml`` (exactly what ran), ``summary.json`` (seed,
metrics, the target table, the event-log hash) and the report. Files are written to temporary
names and renamed, so an interrupted run never leaves a half-written file under a final name.

A run writes its directory as it goes (``RunWriter``): every event is handed to the log writer
(one row group buffered at most, the hash updated per event) and to the metrics fold; at the end
the log is closed, the metrics read off the fold, and the summary written. Nothing reads the log
back, so a month of simulated time needs the memory of the live cluster, not of its log.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from novacron import __version__
from novacron.app.eventstore import DEFAULT_ROW_GROUP_EVENTS, EventLogWriter
from novacron.app.spill import SpillDirectory
from novacron.events import SCHEMA_VERSION, Event
from novacron.metrics import MetricsFold
from novacron.slo import CATALOGUE, RunVerdict, Target, evaluate

SUMMARY = "summary.json"
EVENTS = "events.parquet"
SCENARIO = "scenario.toml"


@dataclass(frozen=True, slots=True, kw_only=True)
class RunInfo:
    scenario: str
    seed: int
    runtime: str
    wall_s: float


def _atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def _json_safe(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def build_summary(info: RunInfo, metrics: Mapping[str, float], verdict: RunVerdict,
                  events_sha256: str, event_count: int) -> dict[str, Any]:
    return {
        "novacron_version": __version__,
        "schema_version": SCHEMA_VERSION,
        "scenario": info.scenario,
        "seed": info.seed,
        "runtime": info.runtime,
        "wall_s": round(info.wall_s, 3),
        "events": event_count,
        "events_sha256": events_sha256,
        "metrics": {k: _json_safe(v) for k, v in sorted(metrics.items())},
        **verdict.as_dict(),
        "missed_targets": [r.target.name for r in verdict.blocking()],
    }


class RunWriter:
    """A run directory written while the run goes: ``feed`` every event, then ``finish``."""

    def __init__(self, run_dir: Path, row_group_events: int = DEFAULT_ROW_GROUP_EVENTS) -> None:
        run_dir.mkdir(parents=True, exist_ok=True)
        self.run_dir = run_dir
        self.log = EventLogWriter(run_dir / EVENTS, row_group_events)
        self._spill = SpillDirectory(run_dir)
        self.metrics = MetricsFold(self._spill.columns)

    def feed(self, ev: Event) -> None:
        self.log.append(ev)
        self.metrics.feed(ev)

    def finish(self, info: RunInfo, scenario_text: str, *, extra_metrics: Mapping[str, float] | None = None,
               targets: Iterable[Target] = CATALOGUE, not_applicable: Iterable[str] = (),
               ) -> tuple[dict[str, Any], RunVerdict]:
        """Close the log, fold the metrics (plus ``extra_metrics``), write the scenario and summary."""
        self.log.close()
        try:
            metrics = {**self.metrics.result(), **(extra_metrics or {})}
        finally:
            self._spill.remove()
        return _write_summary(self.run_dir, info, metrics, scenario_text, self.log.sha256(), self.log.count,
                              targets=targets, not_applicable=not_applicable)

    def abort(self) -> None:
        self.log.abort()
        self._spill.remove()


def _write_summary(run_dir: Path, info: RunInfo, metrics: Mapping[str, float], scenario_text: str,
                   events_sha256: str, event_count: int, *, targets: Iterable[Target],
                   not_applicable: Iterable[str]) -> tuple[dict[str, Any], RunVerdict]:
    _atomic_write_text(run_dir / SCENARIO, scenario_text)
    verdict = evaluate(metrics, targets, not_applicable=not_applicable)
    summary = build_summary(info, metrics, verdict, events_sha256, event_count)
    _atomic_write_text(run_dir / SUMMARY, json.dumps(summary, indent=2) + "\n")
    return summary, verdict


def write_run(run_dir: Path, info: RunInfo, events: Sequence[Event], metrics: Mapping[str, float],
              scenario_text: str, *, targets: Iterable[Target] = CATALOGUE,
              not_applicable: Iterable[str] = ()) -> tuple[dict[str, Any], RunVerdict]:
    """The run directory of a log held in memory, with metrics computed by the caller."""
    run_dir.mkdir(parents=True, exist_ok=True)
    log = EventLogWriter(run_dir / EVENTS)
    for ev in events:
        log.append(ev)
    log.close()
    return _write_summary(run_dir, info, metrics, scenario_text, log.sha256(), log.count, targets=targets,
                          not_applicable=not_applicable)


def write_artefact_run(run_dir: Path, events: Sequence[Event], *, name: str, runtime: str, wall_s: float,
                       description: str, seed: int = 0) -> dict[str, Any]:
    """A run directory for events that real parts recorded without a scenario (a manager's log,
    a lab migration, a calibration grid), so ``load_run``, ``novacron report`` and the notebooks
    open it like a simulated run. Its metrics come from the events by the same extractors; it is
    checked against the catalogue targets its events measure (the others are listed as not
    applicable: a manager's log alone says nothing of migrations). ``scenario.toml`` names it and
    says what it is."""
    from novacron.metrics import compute_metrics

    metrics = compute_metrics(events)
    measured = tuple(t for t in CATALOGUE if t.metric in metrics)
    skipped = tuple(t.name for t in CATALOGUE if t.metric not in metrics)
    scenario_text = f"# {description}\nname = {json.dumps(name)}\n"
    summary, _ = write_run(run_dir, RunInfo(scenario=name, seed=seed, runtime=runtime, wall_s=wall_s), events,
                           metrics, scenario_text, targets=measured, not_applicable=skipped)
    return summary

"""The end of every run, whichever runtime produced it: metrics, verdict, run directory, report.

Both runtimes hand their event log and the settings they echo to ``record_run``: the metrics are
computed from the events alone (``novacron.metrics``), checked against the scenario's targets
(the one verdict object), written as a run directory (``novacron.app.rundir``) and rendered
(``novacron.app.report``). A simulated and a real run of one scenario differ only in their events.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from novacron.app.eventstore import read_events
from novacron.app.report import write_report
from novacron.app.rundir import EVENTS, RunInfo, write_run
from novacron.events import Event
from novacron.metrics import compute_metrics
from novacron.scenario import Scenario, scenario_targets
from novacron.slo import RunVerdict


@dataclass(frozen=True)
class RunResult:
    """What a run leaves to its caller, whichever runtime produced it."""

    run_dir: Path
    summary: dict[str, Any]
    verdict: RunVerdict

    @property
    def events(self) -> list[Event]:
        """The run's events, read back from its directory (a long run's log may not fit in memory)."""
        return read_events(self.run_dir / EVENTS)


def record_run(run_dir: Path, info: RunInfo, events: Sequence[Event], config_metrics: Mapping[str, float],
               scenario: Scenario, scenario_text: str, *, report: bool = True) -> RunResult:
    """The end of every run, simulated or real: metrics from the events (plus the settings the
    run echoes), the scenario's targets, the run directory and the report."""
    metrics = compute_metrics(events)
    metrics.update(config_metrics)
    targets, not_applicable = scenario_targets(scenario)
    summary, verdict = write_run(run_dir, info, events, metrics, scenario_text, targets=targets,
                                 not_applicable=not_applicable)
    if report:
        write_report(run_dir)
    return RunResult(run_dir, summary, verdict)

"""Loading runs for analysis: a run directory into pandas DataFrames.

>>> run = load_run("runs/default-seed7")         # doctest: +SKIP
>>> run.events[run.events.type == "VMPlaced"]     # doctest: +SKIP
>>> run.targets                                   # the pass/fail table  # doctest: +SKIP
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd

from novacron.app.eventstore import read_events, read_table, table_to_dataframe
from novacron.app.rundir import EVENTS, SUMMARY
from novacron.events import Event


class RunNotFound(FileNotFoundError):
    """The directory is not a NovaCron run directory."""


@dataclass(frozen=True)
class Run:
    path: Path
    summary: dict[str, Any]

    @cached_property
    def events(self) -> pd.DataFrame:
        """Every event as one row; columns are the union of the event types' fields."""
        return table_to_dataframe(read_table(self.path / EVENTS))

    def typed_events(self) -> list[Event]:
        return read_events(self.path / EVENTS)

    def of_type(self, type_name: str) -> pd.DataFrame:
        """The events of one type, with only the columns that type uses."""
        df = self.events[self.events["type"] == type_name]
        return df.dropna(axis="columns", how="all").reset_index(drop=True)

    @property
    def metrics(self) -> dict[str, float]:
        return dict(self.summary.get("metrics", {}))

    @property
    def targets(self) -> pd.DataFrame:
        return pd.DataFrame(self.summary.get("targets", []))

    @property
    def seed(self) -> int:
        return int(self.summary["seed"])


def load_run(run_dir: str | Path) -> Run:
    path = Path(run_dir)
    summary_path = path / SUMMARY
    if not summary_path.is_file() or not (path / EVENTS).is_file():
        raise RunNotFound(f"{path}: not a NovaCron run directory (needs {SUMMARY} and {EVENTS})")
    return Run(path=path, summary=json.loads(summary_path.read_text()))


def load_runs(run_dirs: list[str | Path]) -> pd.DataFrame:
    """One row per run: seed, scenario and every metric, for comparing runs side by side."""
    rows = []
    for run_dir in run_dirs:
        run = load_run(run_dir)
        rows.append({"run": str(run.path), "scenario": run.summary["scenario"], "seed": run.seed,
                     **run.metrics})
    return pd.DataFrame(rows)

"""Loading runs for analysis: a run directory into pandas DataFrames.

>>> run = load_run("runs/default-seed7")         # doctest: +SKIP
>>> run.events[run.events.type == "VMPlaced"]     # doctest: +SKIP
>>> run.targets                                   # the verdict table  # doctest: +SKIP
>>> run.verdict.passed()                          # the one verdict object  # doctest: +SKIP
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
from novacron.slo import RunVerdict


class RunNotFound(FileNotFoundError):
    """The directory is not a (readable) NovaCron run directory; the message is one line."""


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

    @cached_property
    def verdict(self) -> RunVerdict:
        """Every target's verdict (pass / fail / not measured), required and reference apart."""
        return RunVerdict.from_dict(self.summary)

    @property
    def targets(self) -> pd.DataFrame:
        """One row per target: name, metric, threshold, measured, unit, role, verdict."""
        return pd.DataFrame([r.as_row() for r in self.verdict.results])

    @property
    def seed(self) -> int:
        return int(self.summary["seed"])


SUMMARY_KEYS = ("scenario", "seed", "runtime", "novacron_version", "events", "events_sha256", "metrics",
                "targets", "settings")


def load_run(run_dir: str | Path, *, check_events: bool = False) -> Run:
    """A run directory; ``check_events`` also reads the event log (to fail early on a corrupt one)."""
    path = Path(run_dir)
    summary_path = path / SUMMARY
    if not summary_path.is_file() or not (path / EVENTS).is_file():
        raise RunNotFound(f"{path}: not a NovaCron run directory (needs {SUMMARY} and {EVENTS})")
    run = Run(path=path, summary=_read_summary(summary_path))
    if check_events:
        try:
            read_table(path / EVENTS)
        except Exception as exc:  # pyarrow raises several types for a damaged file
            raise RunNotFound(f"{path / EVENTS}: not a readable event log ({type(exc).__name__}: "
                              f"{' '.join(str(exc).split())[:120]})") from None
    return run


def _read_summary(path: Path) -> dict[str, Any]:
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RunNotFound(f"{path}: not a readable summary ({type(exc).__name__}: "
                          f"{' '.join(str(exc).split())[:120]})") from None
    missing = [k for k in SUMMARY_KEYS if not isinstance(summary, dict) or k not in summary]
    if missing:
        raise RunNotFound(f"{path}: not a NovaCron summary: missing {', '.join(missing)}")
    types = {"metrics": dict, "targets": list, "settings": list, "seed": int, "events": int,
             "events_sha256": str, "scenario": str, "runtime": str, "novacron_version": str}
    wrong = [k for k, kind in types.items() if not isinstance(summary[k], kind) or isinstance(summary[k], bool)]
    if wrong:
        raise RunNotFound(f"{path}: malformed summary: {wrong[0]} = {summary[wrong[0]]!r:.40} is not a "
                          f"{types[wrong[0]].__name__}")
    try:
        RunVerdict.from_dict(summary)
    except (KeyError, ValueError, TypeError, AttributeError) as exc:
        raise RunNotFound(f"{path}: malformed summary ({type(exc).__name__}: {' '.join(str(exc).split())[:120]})"
                          ) from None
    return summary  # type: ignore[no-any-return]


def load_runs(run_dirs: list[str | Path]) -> pd.DataFrame:
    """One row per run: seed, scenario and every metric, for comparing runs side by side."""
    rows = []
    for run_dir in run_dirs:
        run = load_run(run_dir)
        rows.append({"run": str(run.path), "scenario": run.summary["scenario"], "seed": run.seed,
                     **run.metrics})
    return pd.DataFrame(rows)

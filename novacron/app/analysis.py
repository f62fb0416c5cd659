"""Loading runs for analysis: a run directory into pandas DataFrames.

>>> run = load_run("runs/default-seed7")         # doctest: +SKIP
>>> run.events[run.events.type == "VMPlaced"]     # doctest: +SKIP
>>> run.targets                                   # the verdict table  # doctest: +SKIP
>>> run.verdict.passed()                          # the one verdict object  # doctest: +SKIP

A long run's log is large (a month of scale-1000 is about 9 million events), so reads push the
column selection and the row filter down to the Parquet file (``pyarrow.dataset``): ``of_type``
and ``migrations()`` read only the rows of one event type and only its columns, and
``load_run(path, columns=[...], filter=...)`` makes ``run.events`` such a selection:

>>> run = load_run("runs/scale-1000-seed7")                                  # doctest: +SKIP
>>> run.migrations()                               # MigrationFinished rows only  # doctest: +SKIP
>>> run.read(columns=["t_s", "cpu_pct"], filter=pc.field("type") == "ClusterUtilisationSampled")  # doctest: +SKIP
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow.compute as pc

from novacron.app.eventstore import check_log, read_events, read_table, scan_batches, table_to_dataframe
from novacron.app.rundir import EVENTS, SUMMARY
from novacron.events import BASE_FIELDS, REGISTRY, Event
from novacron.slo import RunVerdict


class RunNotFound(FileNotFoundError):
    """The directory is not a (readable) NovaCron run directory; the message is one line."""


@dataclass(frozen=True)
class Run:
    path: Path
    summary: dict[str, Any]
    columns: tuple[str, ...] | None = None
    """The columns ``events`` reads (``None``: all)."""
    filter: pc.Expression | None = None
    """The rows ``events`` reads (``None``: all)."""

    @cached_property
    def events(self) -> pd.DataFrame:
        """Every event as one row (or the ``columns`` and ``filter`` the run was loaded with);
        columns are the union of the event types' fields."""
        return self.read(columns=self.columns, filter=self.filter)

    def read(self, *, columns: Sequence[str] | None = None,
             filter: pc.Expression | None = None) -> pd.DataFrame:
        """Only ``columns`` of the rows ``filter`` keeps, both pushed down to the Parquet file."""
        return table_to_dataframe(read_table(self.path / EVENTS, columns=columns, filter=filter))

    def typed_events(self) -> list[Event]:
        return read_events(self.path / EVENTS)

    def type_columns(self, type_name: str) -> list[str]:
        """The columns events of ``type_name`` fill, as present in this run's file."""
        import novacron.all_events  # noqa: F401 - registers every event type a log may hold

        present = set(check_log(self.path / EVENTS).names)
        if type_name not in REGISTRY:
            return sorted(present)
        own = [name for name in REGISTRY.cls(type_name).__dataclass_fields__ if name not in BASE_FIELDS]
        return [name for name in ("type", *BASE_FIELDS, *own) if name in present]

    def of_type(self, type_name: str, columns: Sequence[str] | None = None) -> pd.DataFrame:
        """The events of one type, with only the columns that type uses (or ``columns``): only
        those rows and columns are read from the file."""
        wanted = self.type_columns(type_name) if columns is None else list(columns)
        df = self.read(columns=wanted, filter=pc.field("type") == type_name)
        if columns is None and len(df):  # no rows: keep the type's columns (an empty frame, not a KeyError)
            df = df.dropna(axis="columns", how="all")
        return df.reset_index(drop=True)

    def scan(self, type_name: str, columns: Sequence[str]) -> Iterator[pd.DataFrame]:
        """``of_type``'s rows one record batch at a time, for types too many to hold at once."""
        for batch in scan_batches(self.path / EVENTS, columns=columns, filter=pc.field("type") == type_name):
            if batch.num_rows:
                yield batch.to_pandas()

    def migrations(self) -> pd.DataFrame:
        """Every finished migration (``MigrationFinished``), whatever the outcome."""
        return self.of_type("MigrationFinished")

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


def load_run(run_dir: str | Path, *, check_events: bool = False, columns: Sequence[str] | None = None,
             filter: pc.Expression | None = None) -> Run:
    """A run directory; ``check_events`` also checks the event log's footer and schema version (to
    fail early on a corrupt one); ``columns`` and ``filter`` select what ``run.events`` reads."""
    path = Path(run_dir)
    summary_path = path / SUMMARY
    if not summary_path.is_file() or not (path / EVENTS).is_file():
        raise RunNotFound(f"{path}: not a NovaCron run directory (needs {SUMMARY} and {EVENTS})")
    run = Run(path=path, summary=_read_summary(summary_path),
              columns=None if columns is None else tuple(columns), filter=filter)
    if check_events:
        try:
            check_log(path / EVENTS)
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

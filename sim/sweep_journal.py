"""A sweep's results on disk as they come: an append-only journal of rows, then one Parquet table.

Theory of operation
-------------------
``novacron sweep`` must survive a 1,000-run grid: it never holds every row in memory, shows
progress, and an interrupted sweep resumes where it stopped. So each finished run's row is
appended at once to ``OUT/sweep.rows.jsonl`` -- one JSON object per line, flushed and fsynced
before the next row is taken -- and nothing else keeps it. The journal's first line is a header
with the grid's fingerprint (a SHA-256 of the scenario text, every run's params and seed, and
the early-stop flag): a second ``novacron sweep`` into the same folder resumes only the *same*
grid, skipping every run that already has an ``ok`` row (a failed run is tried again: a worker
that died is not the run's fault), and refuses a different grid with a one-line error instead of
mixing two sweeps in one table. A line cut short by the interruption is dropped on reopening.

When every run has a row, ``write_table`` turns the journal into ``OUT/sweep.parquet`` in run
order, a row group at a time: one pass notes where each run's latest line starts (an offset per
run, not the row), a second unifies the rows' Arrow schemas in run order (so column order does
not depend on which run finished first), a third writes ``ROW_GROUP_RUNS`` rows per row group.
Memory is bounded by one row group, whatever the size of the grid.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from novacron.config import ConfigError

JOURNAL_NAME = "sweep.rows.jsonl"
TABLE_NAME = "sweep.parquet"
ROW_GROUP_RUNS = 256
JOURNAL_VERSION = 1
Row = dict[str, Any]


def grid_fingerprint(scenario_text: str, runs: Sequence[tuple[int, Sequence[tuple[str, Any]], int]],
                     early_stop: bool) -> str:
    """What makes two sweeps the same: scenario text, every (index, params, seed), early stop."""
    canonical = json.dumps({"scenario": scenario_text, "early_stop": early_stop,
                            "runs": [[index, [list(p) for p in params], seed] for index, params, seed in runs]},
                           sort_keys=True, default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _plain(value: Any) -> Any:
    """numpy scalars (which json cannot write) as Python values."""
    item = getattr(value, "item", None)
    if callable(item):
        return item()
    raise TypeError(f"cannot write {type(value).__name__} to the sweep journal")


class SweepJournal:
    """``OUT/sweep.rows.jsonl``, opened for a grid: new, resumed, or refused if another grid's."""

    def __init__(self, out_dir: Path, fingerprint: str, *, fresh: bool = False) -> None:
        out_dir.mkdir(parents=True, exist_ok=True)
        self.path = out_dir / JOURNAL_NAME
        self.done: set[int] = set()
        """Runs with an ``ok`` row: a resumed sweep skips them."""
        if fresh or not self.path.exists():
            self._start(fingerprint)
        else:
            self._resume(fingerprint)
        self._file = self.path.open("a", encoding="utf-8")

    def _start(self, fingerprint: str) -> None:
        header = json.dumps({"journal": JOURNAL_VERSION, "grid_sha256": fingerprint})
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(header + "\n", encoding="utf-8")
        tmp.replace(self.path)

    def _resume(self, fingerprint: str) -> None:
        with self.path.open("rb") as f:
            header = _parse(f.readline())
            if header is None or header.get("grid_sha256") != fingerprint:
                raise ConfigError(f"--out {self.path.parent}: holds another sweep's results ({self.path.name}); "
                                  f"allowed: the same scenario, --param and --seeds to resume it, or --fresh "
                                  f"to discard them")
            good_end = f.tell()
            for line in f:
                row = _parse(line)
                if row is None:  # the interrupted process died while writing this line
                    break
                good_end += len(line)
                if row.get("status") == "ok":
                    self.done.add(int(row["run"]))
                else:
                    self.done.discard(int(row["run"]))
        with self.path.open("r+b") as f:
            f.truncate(good_end)

    def append(self, row: Row) -> None:
        """Durable before the next row is taken: an interruption loses at most the runs in flight."""
        self._file.write(json.dumps(row, default=_plain) + "\n")
        self._file.flush()
        os.fsync(self._file.fileno())

    def close(self) -> None:
        self._file.close()

    def __enter__(self) -> SweepJournal:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _parse(line: bytes) -> dict[str, Any] | None:
    if not line.endswith(b"\n"):
        return None
    try:
        value = json.loads(line)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _latest_offsets(journal: Path) -> dict[int, int]:
    """Run index -> byte offset of its last row in the journal (a retried run's row supersedes)."""
    offsets: dict[int, int] = {}
    with journal.open("rb") as f:
        f.readline()  # the header
        offset = f.tell()
        for line in f:
            row = _parse(line)
            if row is not None:
                offsets[int(row["run"])] = offset
            offset += len(line)
    return offsets


def _rows_at(journal: Path, offsets: Sequence[int]) -> Iterator[Row]:
    with journal.open("rb") as f:
        for offset in offsets:
            f.seek(offset)
            row = _parse(f.readline())
            assert row is not None, f"{journal}: no row at byte {offset}"
            yield row


def _chunks(offsets: Sequence[int]) -> Iterator[Sequence[int]]:
    for start in range(0, len(offsets), ROW_GROUP_RUNS):
        yield offsets[start:start + ROW_GROUP_RUNS]


def write_table(out_dir: Path) -> tuple[Path, int]:
    """``OUT/sweep.parquet`` from the journal, in run order, a row group at a time; (path, rows)."""
    journal = out_dir / JOURNAL_NAME
    by_run = _latest_offsets(journal)
    offsets = [by_run[run] for run in sorted(by_run)]
    schema = pa.schema([])
    for chunk in _chunks(offsets):
        schemas = [schema, *(pa.Table.from_pylist([row]).schema for row in _rows_at(journal, chunk))]
        schema = pa.unify_schemas(schemas, promote_options="permissive")
    schema = pa.schema([f.with_type(pa.string()) if pa.types.is_null(f.type) else f for f in schema])
    path = out_dir / TABLE_NAME
    tmp = path.with_name(path.name + ".tmp")
    with pq.ParquetWriter(tmp, schema) as writer:
        for chunk in _chunks(offsets):
            writer.write_table(pa.Table.from_pylist(list(_rows_at(journal, chunk)), schema=schema))
    tmp.replace(path)
    return path, len(offsets)


def failed_rows(table_path: Path) -> list[Row]:
    """The rows whose status is not ``ok`` (only the columns that describe a failure are read)."""
    columns = [name for name in pq.read_schema(table_path).names
               if name in ("run", "seed", "status", "error") or name.startswith("param.")]
    table = pq.read_table(table_path, columns=columns, filters=[("status", "!=", "ok")])
    return [{k: v for k, v in row.items() if not (isinstance(v, float) and math.isnan(v))}
            for row in table.to_pylist()]

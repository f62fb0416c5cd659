"""A manager's event log: committed commands (and role changes) as events, in Parquet row groups.

Theory of operation
-------------------
In the real runtime the replicated state machine is the Raft log (DESIGN.md, event sourcing):
every command a manager applies becomes a ``ManagerCommandApplied`` event in the project's
schema, written to its data directory. The log is derived data: the Raft log in SQLite is the
truth. A restarted manager re-applies its committed entries, so before emitting it skips every
command at or below the last ``(log_index, batch_position)`` already written.

JSON lines (``JsonLinesEventLog``, ``events.jsonl``): a line cut short by a crash is removed on
open. Lines are buffered and flushed once per ``Ready``, so SIGKILL loses at most the last batch
of lines, which the restart writes again.

Each line is ``{"type": <event class>, "t_s": ..., "seq": ..., "source": ..., <fields>}``; ``t_s``
counts seconds on the monotonic clock since ``origin_monotonic_s`` -- by default this process's
start; managers on one machine given one origin (``novacron manager --events-origin-monotonic``,
as ``LocalCluster`` does) write logs that merge in time order -- and ``seq`` continues the file.

Parquet (the default; ``events.jsonl`` only with ``novacron manager --events-jsonl``, for tools
that tail the log live): ``ParquetEventLog`` buffers events and writes each row group as one
closed part file, ``events.parts/part-NNNNNN.parquet`` (written under a temporary name and
renamed), once ``row_group_events`` are buffered or, at a ``flush`` (once per ``Ready``), once
the oldest buffered event is ``flush_interval_s`` old. The loop thread only hands the buffered rows
over; one writer thread builds, compresses and writes the parts in order (``_PartWriter``): a
part written on the loop thread stalled every request in flight for ~2 ms twice a second at 16
clients, the p99 of issue 16. A failed write (a full disk) is raised on the loop thread at the
next hand-over, flush or close, so it still stops the manager; a SIGKILL loses at most the parts
not yet written, which the restart re-applies like the buffer. A Parquet file is unreadable without its
footer, so closed parts are what keeps a SIGKILL's loss to one row group (at most 1 s of events;
the restart re-applies the committed commands among them, as with ``events.jsonl``). ``close``
folds every part into ``events.parquet`` and writes ``summary.json`` beside it
(``novacron.app.rundir.write_artefact_run``), so a stopped manager's data directory is a run
directory: ``load_run``, ``novacron report`` and the notebooks open it. A manager killed and never
restarted can be folded afterwards with ``fold_manager_events``. Folding skips part rows whose
``seq`` the fold already holds, so a crash between writing ``events.parquet`` and removing the
parts duplicates nothing.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from functools import partial
from pathlib import Path
from typing import Any, TypeVar

import pyarrow as pa
import pyarrow.parquet as pq

from novacron.app.eventstore import events_to_table
from novacron.app.eventstore import read_events as read_parquet_events
from novacron.app.rundir import EVENTS, write_artefact_run
from novacron.events import Event, event_fields
from novacron.raft.events import ManagerCommandApplied

E = TypeVar("E", bound=Event)
EVENTS_FILE = "events.jsonl"
PARTS_DIR = "events.parts"
DEFAULT_ROW_GROUP_EVENTS = 4096
DEFAULT_FLUSH_INTERVAL_S = 1.0


class _CommandLog:
    """What both event logs share: one applied command is a batch of one."""

    def emit_commands_applied(self, source: str, manager_id: int, log_index: int,
                              commands: list[tuple[int, str, str, int]]) -> None:
        raise NotImplementedError

    def emit_command_applied(self, source: str, manager_id: int, log_index: int, batch_position: int,
                             command_name: str, command_key: str, value_bytes: int) -> None:
        """``emit(ManagerCommandApplied, ...)`` without building the object (a test checks both agree)."""
        self.emit_commands_applied(source, manager_id, log_index, [(batch_position, command_name, command_key,
                                                                    value_bytes)])


class JsonLinesEventLog(_CommandLog):
    """An ``EventSink`` appending to ``events.jsonl``; knows what a previous run already wrote."""

    def __init__(self, path: Path, origin_monotonic_s: float | None = None) -> None:
        self.path = path
        self.last_applied: tuple[int, int] = (0, -1)
        """The highest ``(log_index, batch_position)`` of a ``ManagerCommandApplied`` in the file."""
        self._seq = self._recover()
        self._file = path.open("a", encoding="utf-8")
        self._start = time.monotonic() if origin_monotonic_s is None else origin_monotonic_s

    def _recover(self) -> int:
        if not self.path.exists():
            return 0
        data = self.path.read_bytes()
        complete = data[:data.rfind(b"\n") + 1]
        if len(complete) != len(data):
            with self.path.open("r+b") as f:
                f.truncate(len(complete))
        lines = complete.splitlines()
        for line in reversed(lines):
            record = json.loads(line)
            if record["type"] == ManagerCommandApplied.__name__:
                self.last_applied = (int(record["log_index"]), int(record["batch_position"]))
                break
        return len(lines)

    def emit(self, cls: type[E], *, source: str, **fields: Any) -> E:
        ev = cls(t_s=round(time.monotonic() - self._start, 6), seq=self._seq, source=source, **fields)
        self._seq += 1
        record = {"type": cls.__name__, **event_fields(ev)}
        self._file.write(json.dumps(record, separators=(",", ":")) + "\n")
        return ev

    def emit_commands_applied(self, source: str, manager_id: int, log_index: int,
                              commands: list[tuple[int, str, str, int]]) -> None:
        """One ``ManagerCommandApplied`` line per ``(batch_position, command_name, command_key, value_bytes)``
        of one log entry, in one write: the hot path, so the constant parts are formatted once."""
        t_s = round(time.monotonic() - self._start, 6)
        head = f'{{"type":"ManagerCommandApplied","t_s":{t_s!r},"seq":'
        middle = f',"source":{_json_string(source)},"manager_id":{manager_id:d},"log_index":{log_index:d},'
        seq = self._seq
        lines = []
        for position, name, key, value_bytes in commands:
            lines.append(f'{head}{seq}{middle}"batch_position":{position:d},"command_name":{_json_string(name)},'
                         f'"command_key":{_json_string(key)},"value_bytes":{value_bytes:d}}}\n')
            seq += 1
        self._file.write("".join(lines))
        self._seq = seq

    def already_written(self, log_index: int, batch_position: int) -> bool:
        return (log_index, batch_position) <= self.last_applied

    def flush(self) -> None:
        self._file.flush()

    def close(self) -> None:
        self._file.close()


class _PartWriter:
    """One background thread that writes part files in the order they are handed over."""

    def __init__(self) -> None:
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="event-parts")
        self._pending: list[Future[None]] = []

    def submit(self, table: Callable[[], pa.Table], path: Path) -> None:
        self.raise_failures()
        self._pending.append(self._pool.submit(_write_part_file, table, path))

    def raise_failures(self) -> None:
        """Re-raise a failed write on the caller's thread; forget the writes that are done."""
        done = [f for f in self._pending if f.done()]
        self._pending = [f for f in self._pending if not f.done()]
        for future in done:
            future.result()

    def wait(self) -> None:
        """Until every part handed over is on disk (raising the first failure)."""
        pending, self._pending = self._pending, []
        for future in pending:
            future.result()

    def close(self) -> None:
        try:
            self.wait()
        finally:
            self._pool.shutdown(wait=True)


def _write_part_file(table: Callable[[], pa.Table], path: Path) -> None:
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(table(), tmp, compression="zstd")
    tmp.replace(path)  # a part is whole or absent


class ParquetEventLog(_CommandLog):
    """The manager's ``EventSink``: Parquet row groups as closed part files, folded at ``close``
    into the run directory's ``events.parquet`` and ``summary.json``; ``mirror`` (``--events-jsonl``)
    receives every event too."""

    def __init__(self, data_dir: Path, origin_monotonic_s: float | None = None, *, manager_id: int = 0,
                 mirror: JsonLinesEventLog | None = None, row_group_events: int = DEFAULT_ROW_GROUP_EVENTS,
                 flush_interval_s: float = DEFAULT_FLUSH_INTERVAL_S) -> None:
        self.data_dir = data_dir
        self.parts_dir = data_dir / PARTS_DIR
        self.parts_dir.mkdir(parents=True, exist_ok=True)
        self.manager_id = manager_id
        self.mirror = mirror
        self.row_group_events = row_group_events
        self.flush_interval_s = flush_interval_s
        self._start = time.monotonic() if origin_monotonic_s is None else origin_monotonic_s
        self._opened_s = time.monotonic()
        written = folded_events(data_dir)
        self._seq = written[-1].seq + 1 if written else 0
        applied = [e for e in written if isinstance(e, ManagerCommandApplied)]
        self.last_applied: tuple[int, int] = max(((e.log_index, e.batch_position) for e in applied),
                                                 default=(0, -1))
        """The highest ``(log_index, batch_position)`` of a ``ManagerCommandApplied`` written so far."""
        self._part = max((int(p.stem.removeprefix("part-")) for p in self.parts_dir.glob("part-*.parquet")),
                         default=-1) + 1
        self._buffer: list[Event] = []
        self._commands: dict[str, list[Any]] = {name: [] for name in COMMAND_COLUMNS}
        """The hot path's rows, column by column: building an event object per command cost more
        than the rest of the write (15 us of about 35 us per command, measured at load 18)."""
        self._commands_schema = events_to_table([_sample_command()]).schema
        self._buffered_since_s = 0.0
        self._writer = _PartWriter()

    def emit(self, cls: type[E], *, source: str, **fields: Any) -> E:
        ev = cls(t_s=round(time.monotonic() - self._start, 6), seq=self._seq, source=source, **fields)
        self._append(ev)
        if self.mirror is not None:
            self.mirror.emit(cls, source=source, **fields)
        return ev

    @property
    def buffered(self) -> int:
        return len(self._buffer) + len(self._commands["seq"])

    def _append(self, ev: Event) -> None:
        if not self.buffered:
            self._buffered_since_s = time.monotonic()
        self._buffer.append(ev)
        self._seq += 1
        if self.buffered >= self.row_group_events:
            self._write_part()

    def emit_commands_applied(self, source: str, manager_id: int, log_index: int,
                              commands: list[tuple[int, str, str, int]]) -> None:
        """One ``ManagerCommandApplied`` per command not yet written (each sink skips its own)."""
        t_s = round(time.monotonic() - self._start, 6)
        fresh = [c for c in commands if (log_index, c[0]) > self.last_applied]
        if fresh and not self.buffered:
            self._buffered_since_s = time.monotonic()
        columns, first_seq = self._commands, self._seq
        for seq, (position, name, key, value_bytes) in enumerate(fresh, start=first_seq):
            for column, value in zip(COMMAND_COLUMNS, (t_s, seq, source, manager_id, log_index, position, name, key,
                                                       value_bytes), strict=True):
                columns[column].append(value)
        self._seq += len(fresh)
        if fresh:
            self.last_applied = (log_index, fresh[-1][0])
        if self.buffered >= self.row_group_events:
            self._write_part()
        if self.mirror is not None:
            fresh = [c for c in commands if not self.mirror.already_written(log_index, c[0])]
            self.mirror.emit_commands_applied(source, manager_id, log_index, fresh)

    def already_written(self, log_index: int, batch_position: int) -> bool:
        mine = (log_index, batch_position) <= self.last_applied
        return mine and (self.mirror is None or self.mirror.already_written(log_index, batch_position))

    def _write_part(self) -> None:
        """Hand the buffered rows to the writer thread as the next part (the loop goes on)."""
        if not self.buffered:
            return
        table = partial(_part_table, self._buffer, self._commands, self._commands_schema)
        self._writer.submit(table, self.parts_dir / f"part-{self._part:06d}.parquet")
        self._part += 1
        self._buffer = []
        self._commands = {name: [] for name in COMMAND_COLUMNS}

    def wait_written(self) -> None:
        """Until every part handed over is on disk (tests; ``close`` does it too)."""
        self._writer.wait()

    def flush(self) -> None:
        """Once per ``Ready``: write the row group if its oldest event waited ``flush_interval_s``."""
        self._writer.raise_failures()
        if self.buffered and time.monotonic() - self._buffered_since_s >= self.flush_interval_s:
            self._write_part()
        if self.mirror is not None:
            self.mirror.flush()

    def close(self) -> None:
        self._write_part()
        self._writer.close()
        if self.mirror is not None:
            self.mirror.close()
        fold_manager_events(self.data_dir, manager_id=self.manager_id,
                            wall_s=time.monotonic() - self._opened_s)


COMMAND_COLUMNS = ("t_s", "seq", "source", "manager_id", "log_index", "batch_position", "command_name",
                   "command_key", "value_bytes")


def _part_table(events: list[Event], commands: dict[str, list[Any]], commands_schema: pa.Schema) -> pa.Table:
    """One part's rows: the few other events and the applied commands, in ``seq`` order."""
    tables = [events_to_table(events)] if events else []
    if commands["seq"]:
        rows = len(commands["seq"])
        tables.append(pa.Table.from_pydict({"type": [ManagerCommandApplied.__name__] * rows, **commands},
                                           schema=commands_schema))
    return tables[0] if len(tables) == 1 else pa.concat_tables(tables, promote_options="default").sort_by("seq")


def _sample_command() -> ManagerCommandApplied:
    """One command event, only for its table schema (the columns ``events_to_table`` would give)."""
    return ManagerCommandApplied(t_s=0.0, seq=0, source="", manager_id=0, log_index=0, batch_position=0,
                                 command_name="", command_key="", value_bytes=0)


def folded_events(data_dir: Path) -> list[Event]:
    """``events.parquet`` then every part after it, without a row whose ``seq`` is already in."""
    events = read_parquet_events(data_dir / EVENTS) if (data_dir / EVENTS).is_file() else []
    for part in sorted((data_dir / PARTS_DIR).glob("part-*.parquet")):
        last_seq = events[-1].seq if events else -1
        events.extend(e for e in read_parquet_events(part) if e.seq > last_seq)
    return events


def fold_manager_events(data_dir: Path, *, manager_id: int = 0, wall_s: float = 0.0) -> dict[str, Any]:
    """Make a manager's data directory a run directory: its parts folded into ``events.parquet``
    (then removed) and ``summary.json`` written; returns the summary."""
    events = folded_events(data_dir)
    summary = write_artefact_run(data_dir, events, name=f"manager-{manager_id}", runtime="manager",
                                 wall_s=wall_s, description=f"the event log of NovaCron manager {manager_id} "
                                 "(committed commands and role changes); not a scenario")
    for part in (data_dir / PARTS_DIR).glob("part-*.parquet"):
        part.unlink()
    return summary


def _json_string(text: str) -> str:
    """``json.dumps(text)``, without the call for the plain ASCII names and keys that are the rule."""
    if text.isascii() and text.isalnum():
        return f'"{text}"'
    return json.dumps(text)


def read_events(path: Path) -> list[dict[str, Any]]:
    """Every complete line of an ``events.jsonl`` (written with ``--events-jsonl``; tests and tools
    that follow a running manager read it back with this)."""
    if path.is_dir():
        path = path / EVENTS_FILE
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_bytes().splitlines() if line.endswith(b"}")]

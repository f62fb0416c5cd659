"""A manager's event log: committed commands (and role changes) as events, one JSON object a line.

Theory of operation
-------------------
In the real runtime the replicated state machine is the Raft log (DESIGN.md, event sourcing):
every command a manager applies becomes a ``ManagerCommandApplied`` event in the project's
schema, appended to ``events.jsonl`` in its data directory. The file is derived data: the Raft
log in SQLite is the truth. A restarted manager re-applies its committed entries, so before
emitting it skips every command at or below the last ``(log_index, batch_position)`` already in
the file; a line cut short by a crash is removed on open. Lines are buffered and flushed once per
``Ready``, so SIGKILL loses at most the last batch of lines, which the restart writes again.

Each line is ``{"type": <event class>, "t_s": ..., "seq": ..., "source": ..., <fields>}``; ``t_s``
counts seconds on the monotonic clock since ``origin_monotonic_s`` -- by default this process's
start; managers on one machine given one origin (``novacron manager --events-origin-monotonic``,
as ``LocalCluster`` does) write logs that merge in time order -- and ``seq`` continues the file.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any, TypeVar

from novacron.events import Event, event_fields
from novacron.raft.events import ManagerCommandApplied

E = TypeVar("E", bound=Event)
EVENTS_FILE = "events.jsonl"


class JsonLinesEventLog:
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

    def emit_command_applied(self, source: str, manager_id: int, log_index: int, batch_position: int,
                             command_name: str, command_key: str, value_bytes: int) -> None:
        """``emit(ManagerCommandApplied, ...)`` without building the object (a test checks both agree)."""
        self.emit_commands_applied(source, manager_id, log_index, [(batch_position, command_name, command_key,
                                                                    value_bytes)])

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


def _json_string(text: str) -> str:
    """``json.dumps(text)``, without the call for the plain ASCII names and keys that are the rule."""
    if text.isascii() and text.isalnum():
        return f'"{text}"'
    return json.dumps(text)


def read_events(path: Path) -> list[dict[str, Any]]:
    """Every complete line of an ``events.jsonl`` (tests and tools read it back with this)."""
    if path.is_dir():
        path = path / EVENTS_FILE
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_bytes().splitlines() if line.endswith(b"}")]

"""What a manager's Raft log carries: batches of client commands, applied to the KV state machine.

Theory of operation
-------------------
Throughput in a Python Raft is bounded by per-entry work (message objects, encoding, rows), not
by bytes, so the runtime batches: every client proposal that arrived while the previous ``Ready``
was being persisted is packed into ONE log entry, a msgpack list of command bytes (etcd-io/raft
batches proposals per ``Ready`` in the same spirit; PySyncObj batches commands per append). A
batch is applied in order, command by command, to ``novacron.raft.statemachine``'s
``KeyValueStateMachine``; a command's position is ``(log_index, batch_position)``, identical on
every manager, and each applied command is reported as a ``ManagerCommandApplied`` event.

The empty entry a new leader appends (Raft section 8) has no data and applies nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgpack

from backends.manager.eventlog import JsonLinesEventLog, ManagerCommandApplied
from novacron.raft import Entry, EntryKind
from novacron.raft.statemachine import KeyValueStateMachine, decode_command


def encode_batch(commands: Sequence[bytes]) -> bytes:
    return bytes(msgpack.packb(list(commands), use_bin_type=True))


def decode_batch(data: bytes) -> list[bytes]:
    if not data:
        return []
    commands = msgpack.unpackb(data, raw=False)
    if not isinstance(commands, list) or not all(isinstance(c, bytes) for c in commands):
        raise ValueError("a log entry must hold a msgpack list of command bytes")
    return commands


class ManagerStateMachine:
    """The KV state machine fed with batched entries, reporting each command as an event."""

    def __init__(self, manager_id: int, events: JsonLinesEventLog | None) -> None:
        self.manager_id = manager_id
        self.kv = KeyValueStateMachine()
        self.events = events
        self.applied_index = 0
        self.commands_applied = 0
        """Commands applied since this process started (the benchmark's throughput counter)."""

    def apply(self, entry: Entry) -> int:
        """Apply one log entry; returns how many commands it held."""
        self.applied_index = entry.index
        if entry.kind != EntryKind.NORMAL or not entry.data:
            return 0
        commands = decode_batch(entry.data)
        for position, command in enumerate(commands):
            self.kv.apply(Entry(entry.index, entry.term, EntryKind.NORMAL, command))
            if self.events is not None and not self.events.already_written(entry.index, position):
                self._emit(entry.index, position, decode_command(command))
        self.commands_applied += len(commands)
        return len(commands)

    def _emit(self, index: int, position: int, command: dict[str, Any]) -> None:
        assert self.events is not None
        value = command.get("value", "")
        self.events.emit(ManagerCommandApplied, source=f"manager-{self.manager_id}", manager_id=self.manager_id,
                         log_index=index, batch_position=position, command_name=str(command.get("op", "")),
                         command_key=str(command.get("key", "")), value_bytes=len(str(value).encode()))

    def get(self, key: str) -> str | None:
        return self.kv.get(key)

    def snapshot(self) -> bytes:
        return self.kv.snapshot()

    def restore(self, data: bytes, index: int) -> None:
        self.kv.restore(data)
        self.applied_index = index

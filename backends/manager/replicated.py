"""What a manager's Raft log carries: batches of client commands, applied to the KV state machine.

Theory of operation
-------------------
Throughput in a Python Raft is bounded by per-entry work (message objects, encoding, rows), not
by bytes, so the runtime batches: every client proposal that arrived while the previous ``Ready``
was being persisted is packed into ONE log entry, a msgpack list of command bytes (etcd-io/raft
batches proposals per ``Ready`` in the same spirit; PySyncObj batches commands per append). A
batch is applied in order, command by command (each decoded once), to the core's
``KeyValueStateMachine``; a command's position is ``(log_index, batch_position)``, the same on
every manager, and each applied command is reported as a ``ManagerCommandApplied`` event.

The empty entry a new leader appends (Raft section 8) has no data and applies nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import msgpack

from backends.manager.eventlog import JsonLinesEventLog, ParquetEventLog
from novacron.raft import Entry, EntryKind
from novacron.statemachine import KeyValueStateMachine, StateMachine, decode_command


def encode_batch(commands: Sequence[bytes]) -> bytes:
    return bytes(msgpack.packb(list(commands), use_bin_type=True))


def decode_batch(data: bytes) -> list[bytes]:
    if not data:
        return []
    commands = msgpack.unpackb(data, raw=False)
    if not isinstance(commands, list) or not all(isinstance(c, bytes) for c in commands):
        raise ValueError("a log entry must hold a msgpack list of command bytes")
    return commands


class BatchedKeyValueStateMachine(KeyValueStateMachine):
    """The core's KV machine, with a command applied from its decoded form (decoded once, not twice)."""

    def apply_command(self, index: int, command: dict[str, Any]) -> None:
        self.applied_index = index
        if command.get("op") == "put":
            self.values[str(command["key"])] = str(command["value"])


class BatchedEntryReplica:
    """The manager runtime's state-machine interface over a core machine fed with batched entries:
    the applied index, the commands-applied counter, skipping entries that carry no batch, and
    snapshots delegated to the machine. A subclass applies one entry's decoded commands."""

    def __init__(self, machine: StateMachine) -> None:
        self.machine = machine
        self.applied_index = 0
        self.commands_applied = 0
        """Commands applied since this process started (the benchmark's throughput counter)."""

    def apply(self, entry: Entry) -> int:
        """Apply one log entry; returns how many commands it held."""
        self.applied_index = entry.index
        if entry.kind != EntryKind.NORMAL or not entry.data:
            return 0
        commands = decode_batch(entry.data)
        self.apply_commands(entry, commands)
        self.commands_applied += len(commands)
        return len(commands)

    def apply_commands(self, entry: Entry, commands: list[bytes]) -> None:
        raise NotImplementedError

    def snapshot(self) -> bytes:
        return self.machine.snapshot()

    def restore(self, data: bytes, index: int) -> None:
        self.machine.restore(data)
        self.applied_index = index


class ManagerStateMachine(BatchedEntryReplica):
    """The KV state machine fed with batched entries, reporting each command as an event."""

    def __init__(self, manager_id: int, events: ParquetEventLog | JsonLinesEventLog | None) -> None:
        self.kv = BatchedKeyValueStateMachine()
        super().__init__(self.kv)
        self.manager_id = manager_id
        self.source = f"manager-{manager_id}"
        self.events = events

    def apply_commands(self, entry: Entry, commands: list[bytes]) -> None:
        applied: list[tuple[int, str, str, int]] = []
        for position, data in enumerate(commands):
            command = decode_command(data)
            self.kv.apply_command(entry.index, command)
            value = str(command.get("value", ""))
            applied.append((position, str(command.get("op", "")), str(command.get("key", "")),
                            len(value) if value.isascii() else len(value.encode())))
        if self.events is not None:
            if self.events.already_written(entry.index, 0):  # re-applied after a restart
                applied = [c for c in applied if not self.events.already_written(entry.index, c[0])]
            self.events.emit_commands_applied(self.source, self.manager_id, entry.index, applied)

    def get(self, key: str) -> str | None:
        return self.kv.get(key)

    def key_count(self) -> int:
        return len(self.kv.values)

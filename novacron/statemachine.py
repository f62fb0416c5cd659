"""Replicated state machines: what committed Raft entries are applied to.

Theory of operation
-------------------
Section 2 of the Raft paper: every server applies the same commands in the same (log) order, so
every server's state machine goes through the same states. A ``StateMachine`` has ``apply``
(deterministic: the same entry on the same state gives the same result), ``snapshot`` and
``restore`` (section 7: a snapshot replaces the log prefix it covers, so restoring it and then
applying the following entries must give the same state as applying the whole log).

Two machines are provided:

- ``KeyValueStateMachine``: string keys and values, ``put`` commands; the linearizability
  checker of ``novacron vopr`` reads and writes it.
- ``ClusterStateMachine``: the managers' view of the cluster -- which VM runs on which host and
  which migrations are in flight. Commands are validated on apply (placing a VM twice, migrating
  a VM that is not running), so a bad command is rejected identically on every manager, and
  each applied command is reported as a ``ClusterCommandApplied`` event when a sink is given.

Commands are JSON (stdlib, deterministic key order), small enough that the encoding cost does
not matter next to a network round trip. This is the application the managers replicate, not
the Raft algorithm, so it lives outside ``novacron/raft/`` (whose modules import no codecs).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any, Protocol

from novacron.ports import EventSink
from novacron.raft.events import ClusterCommandApplied
from novacron.raft.messages import Entry, EntryKind


class StateMachine(Protocol):
    def apply(self, entry: Entry) -> object: ...

    def snapshot(self) -> bytes: ...

    def restore(self, data: bytes) -> None: ...


def encode_command(**fields: Any) -> bytes:
    return json.dumps(fields, sort_keys=True, separators=(",", ":")).encode()


def decode_command(data: bytes) -> dict[str, Any]:
    decoded = json.loads(data)
    if not isinstance(decoded, dict):
        raise ValueError(f"a command must be a JSON object, got {data!r}")
    return decoded


def command_of(entry: Entry) -> dict[str, Any] | None:
    """The command a committed entry carries; None for a membership change or a new leader's no-op."""
    if entry.kind != EntryKind.NORMAL or not entry.data:
        return None
    return decode_command(entry.data)


class KeyValueStateMachine:
    def __init__(self) -> None:
        self.values: dict[str, str] = {}
        self.applied_index = 0

    def apply(self, entry: Entry) -> object:
        self.applied_index = entry.index
        command = command_of(entry)
        if command is None:
            return None
        if command.get("op") == "put":
            self.values[str(command["key"])] = str(command["value"])
        return None

    def get(self, key: str) -> str | None:
        return self.values.get(key)

    def snapshot(self) -> bytes:
        return json.dumps({"values": self.values, "index": self.applied_index}, sort_keys=True).encode()

    def restore(self, data: bytes) -> None:
        if not data:
            self.values, self.applied_index = {}, 0
            return
        decoded = json.loads(data)
        self.values = {str(k): str(v) for k, v in decoded["values"].items()}
        self.applied_index = int(decoded["index"])


@dataclass(frozen=True, slots=True)
class Migration:
    vm_id: str
    source_host: str
    target_host: str


class ClusterStateMachine:
    """Placements and migrations as the managers agree on them."""

    def __init__(self, sink: EventSink | None = None, source: str = "raft") -> None:
        self.placements: dict[str, str] = {}
        self.migrations: dict[str, Migration] = {}
        self._sink = sink
        self._source = source

    def apply(self, entry: Entry) -> object:
        command = command_of(entry)
        if command is None:
            return None
        name, vm_id, host_id = str(command.get("op")), str(command.get("vm_id", "")), str(command.get("host_id", ""))
        accepted = self._execute(name, vm_id, host_id)
        if self._sink is not None:
            self._sink.emit(ClusterCommandApplied, source=self._source, command_name=name, vm_id=vm_id,
                            host_id=host_id, log_index=entry.index, accepted=accepted)
        return accepted

    def _execute(self, name: str, vm_id: str, host_id: str) -> bool:
        if name == "place":
            if vm_id in self.placements:
                return False
            self.placements[vm_id] = host_id
            return True
        if name == "start_migration":
            source = self.placements.get(vm_id)
            if source is None or source == host_id or vm_id in self.migrations:
                return False
            self.migrations[vm_id] = Migration(vm_id, source, host_id)
            return True
        if name == "complete_migration":
            migration = self.migrations.pop(vm_id, None)
            if migration is None:
                return False
            self.placements[vm_id] = migration.target_host
            return True
        if name == "remove":
            self.migrations.pop(vm_id, None)
            return self.placements.pop(vm_id, None) is not None
        return False

    def snapshot(self) -> bytes:
        return json.dumps({"placements": self.placements,
                           "migrations": {k: [m.source_host, m.target_host] for k, m in self.migrations.items()}},
                          sort_keys=True).encode()

    def restore(self, data: bytes) -> None:
        if not data:
            self.placements, self.migrations = {}, {}
            return
        decoded = json.loads(data)
        self.placements = {str(k): str(v) for k, v in decoded["placements"].items()}
        self.migrations = {str(k): Migration(str(k), str(v[0]), str(v[1]))
                           for k, v in decoded["migrations"].items()}

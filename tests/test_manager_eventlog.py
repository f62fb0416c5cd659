"""The managers' event log and the batched state machine that feeds it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from backends.manager.eventlog import JsonLinesEventLog, ManagerCommandApplied, read_events
from backends.manager.replicated import ManagerStateMachine, decode_batch, encode_batch
from novacron.events import REGISTRY
from novacron.raft import Entry, EntryKind
from novacron.statemachine import KeyValueStateMachine, encode_command


@given(key=st.text(max_size=20), name=st.text(max_size=10), index=st.integers(0, 2**40),
       position=st.integers(0, 10**6), size=st.integers(0, 10**6))
def test_the_fast_command_line_equals_what_emit_writes(tmp_path_factory: pytest.TempPathFactory, key: str,
                                                       name: str, index: int, position: int, size: int) -> None:
    path = tmp_path_factory.mktemp("events") / "events.jsonl"
    log = JsonLinesEventLog(path)
    fields = {"manager_id": 2, "log_index": index, "batch_position": position, "command_name": name,
              "command_key": key, "value_bytes": size}
    log.emit(ManagerCommandApplied, source="manager-2", **fields)
    log.emit_command_applied("manager-2", **fields)
    log.close()
    slow, fast = read_events(path)
    assert {**slow, "t_s": 0, "seq": 0} == {**fast, "t_s": 0, "seq": 0}
    assert fast["seq"] == 1
    rebuilt = REGISTRY.cls(fast.pop("type"))(**fast)
    assert isinstance(rebuilt, ManagerCommandApplied) and rebuilt.command_key == key


def test_reopening_drops_a_torn_line_and_remembers_the_last_command(tmp_path: Path) -> None:
    path = tmp_path / "events.jsonl"
    log = JsonLinesEventLog(path)
    log.emit_command_applied("manager-1", 1, 7, 0, "put", "a", 1)
    log.emit_command_applied("manager-1", 1, 7, 1, "put", "b", 1)
    log.close()
    with path.open("a") as f:
        f.write('{"type":"ManagerCommandApplied","t_s":1.0,"seq":2,"sou')  # SIGKILL mid-line
    reopened = JsonLinesEventLog(path)
    assert reopened.last_applied == (7, 1)
    assert reopened.already_written(7, 1) and reopened.already_written(3, 9)
    assert not reopened.already_written(7, 2) and not reopened.already_written(8, 0)
    reopened.emit_command_applied("manager-1", 1, 7, 2, "put", "c", 1)
    reopened.close()
    records = [json.loads(line) for line in path.read_text().splitlines()]
    assert [r["seq"] for r in records] == [0, 1, 2]
    assert [r["command_key"] for r in records] == ["a", "b", "c"]


def test_batches_round_trip_and_garbage_is_refused() -> None:
    commands = [encode_command(op="put", key=str(i), value="x" * i) for i in range(5)]
    assert decode_batch(encode_batch(commands)) == commands
    assert decode_batch(b"") == []
    with pytest.raises(ValueError):
        decode_batch(b"\x93\x01\x02\x03")  # a msgpack list of ints, not of bytes


@given(st.lists(st.lists(st.tuples(st.sampled_from("abcde"), st.text(max_size=5)), max_size=6), max_size=8))
def test_batched_apply_equals_applying_each_command_to_the_core_machine(
        batches: list[list[tuple[str, str]]]) -> None:
    """The runtime's decode-once path must leave the same state as the core's ``apply``."""
    batched = ManagerStateMachine(1, events=None)
    reference = KeyValueStateMachine()
    for index, batch in enumerate(batches, start=1):
        commands = [encode_command(op="put", key=key, value=value) for key, value in batch]
        assert batched.apply(Entry(index, 1, EntryKind.NORMAL, encode_batch(commands) if commands else b"")) == len(
            commands)
        for command in commands:
            reference.apply(Entry(index, 1, EntryKind.NORMAL, command))
        reference.applied_index = index
    assert batched.kv.values == reference.values
    assert batched.commands_applied == sum(len(b) for b in batches)
    restored = ManagerStateMachine(2, events=None)
    restored.restore(batched.snapshot(), batched.applied_index)
    assert restored.kv.values == reference.values

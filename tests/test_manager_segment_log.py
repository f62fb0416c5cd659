"""The segment log store beyond the ``LogStore`` contract: torn tails, corrupt records, segments.

The contract (``tests/test_raft_logstore_contract.py``) runs against it too, including the
property test that drives it (reopened after every step, with tiny segments so saves cross segment
boundaries) and the reference ``MemoryStorage`` with random Ready sequences, and a SIGKILLed
writer. Here: proof that the property can fail, with a planted bug; a last record cut short or
with a bad CRC is dropped on open and its remains zeroed; the same damage in an older segment
refuses to open; compaction deletes the segments it covers and a crash before the deletion changes
nothing; one write and one fdatasync per save, none for a commit-only one; entries that would leave
a hole are refused; which store a data directory gets.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from backends.manager import segment_log
from backends.manager.logstore import SQLiteLogStore
from backends.manager.runtime import open_log_store
from backends.manager.segment_log import SegmentLogCorrupt, SegmentLogStore
from novacron.raft import Entry, HardState, Ready, Snapshot, Stored
from tests import test_raft_logstore_contract as contract


def entries(first: int, last: int, term: int) -> list[Entry]:
    return [Entry(i, term, 0, f"cmd-{i}-{term}".encode()) for i in range(first, last + 1)]


def segments(directory: Path) -> list[Path]:
    return sorted(directory.glob("*.wal"))


def reopened(directory: Path, **kwargs: int) -> Stored:
    store = SegmentLogStore(directory, **kwargs)
    try:
        return store.stored()
    finally:
        store.close()


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SegmentLogStore]:
    made = SegmentLogStore(tmp_path / "raft-wal")
    made.bootstrap((1, 2, 3))
    yield made
    made.close()


# -- the contract's property test can fail ------------------------------------------------------

def test_the_property_catches_a_compaction_that_forgets_the_entries_after_the_snapshot(
        fast_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A planted bug: a whole-state record (compaction, a new segment's first) loses the entries it
    must keep; the reopened store then differs from the reference, or finds the hole and refuses."""
    encode = segment_log.encode_record
    monkeypatch.setattr(segment_log, "encode_record",
                        lambda snap, ents, hard: encode(snap, [] if snap is not None else ents, hard))
    try:
        contract.TestSegmentLogStore().test_random_ready_sequences_match_the_reference_storage(fast_dir)
    except ExceptionGroup as found:  # Hypothesis reports distinct failures together
        assert found.subgroup((AssertionError, SegmentLogCorrupt)) is not None
    except (AssertionError, SegmentLogCorrupt):
        pass
    else:
        pytest.fail("the property test passed with the planted bug")


# -- torn and corrupt records --------------------------------------------------------------------

def save_three(store: SegmentLogStore) -> None:
    """Three saves; the last one's record spans several sectors (a 3 KB entry)."""
    store.save(Ready(hard_state=HardState(1, 1, 0), entries=entries(1, 3, 1)))
    store.save(Ready(entries=entries(4, 5, 1)))
    store.save(Ready(hard_state=HardState(1, 1, 5), entries=[Entry(6, 1, 0, b"v" * 3000)]))


def record_bounds(segment: Path, which: int) -> tuple[int, int]:
    """Byte offsets (start, end) of record ``which`` (0 the bootstrap record) of a segment."""
    records, _ = segment_log.read_records(segment.read_bytes())
    sizes = [len(segment_log.encode_record(r.snapshot, r.entries, r.hard_state)) for r in records]
    start = sum(sizes[:which])
    return start, start + sizes[which]


def damage(segment: Path, at: int, data: bytes) -> None:
    with segment.open("r+b") as f:
        f.seek(at)
        f.write(data)


@pytest.mark.parametrize("tear", ["unwritten sectors", "end of file"])
def test_a_torn_last_record_is_dropped_on_open_and_its_remains_zeroed(
        store: SegmentLogStore, tmp_path: Path, tear: str) -> None:
    save_three(store)
    store.close()
    directory = tmp_path / "raft-wal"
    (segment,) = segments(directory)
    start, end = record_bounds(segment, 3)
    if tear == "unwritten sectors":  # the preallocated file still holds zeros where the write did not land
        damage(segment, (start + end) // 2, bytes(end - (start + end) // 2))
    else:  # a segment that could not be preallocated (a full disk) ends inside the record
        with segment.open("r+b") as f:
            f.truncate((start + end) // 2)
    reopened_store = SegmentLogStore(directory)
    try:
        got = reopened_store.stored()
        assert [e.index for e in got.entries] == [1, 2, 3, 4, 5] and got.hard_state == HardState(1, 1, 0)
        assert segment.read_bytes()[start:].strip(b"\0") == b"", "the torn record's remains must be zeroed"
        reopened_store.save(Ready(entries=entries(6, 7, 2)))
    finally:
        reopened_store.close()
    assert [e.term for e in reopened(directory).entries] == [1, 1, 1, 1, 1, 2, 2]


@pytest.mark.parametrize("which", [3, 2])
def test_a_bad_crc_that_a_torn_write_cannot_explain_refuses_to_open(
        store: SegmentLogStore, tmp_path: Path, which: int) -> None:
    """A flipped byte with no zeroed sector, in the last record (3) or before an intact one (2):
    the record was acknowledged, so dropping it could drop a vote or an acknowledged entry."""
    save_three(store)
    store.close()
    (segment,) = segments(tmp_path / "raft-wal")
    start, _ = record_bounds(segment, which)
    damage(segment, start + 12, b"X")
    before = segment.read_bytes()
    with pytest.raises(SegmentLogCorrupt, match="torn last write cannot explain"):
        SegmentLogStore(tmp_path / "raft-wal")
    assert segment.read_bytes() == before, "a refused segment must be left as it was found"


@pytest.fixture
def unlink_dies_after(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[int]]:
    """Set ``[n]``: the process "dies" (OSError) at the (n+1)-th segment deletion from then on."""
    real_unlink, budget = Path.unlink, []

    def unlink(path: Path, missing_ok: bool = False) -> None:
        if budget:
            if budget[0] == 0:
                raise OSError("the process died here")
            budget[0] -= 1
        real_unlink(path, missing_ok)

    monkeypatch.setattr(Path, "unlink", unlink)
    yield budget


def save_until_rotation(store: SegmentLogStore, first: int) -> int:
    """Save one-entry Readies from index ``first`` until the store has moved to a new segment (or
    died deleting the old ones, before writing that save); returns the next index to save."""
    newest, index = store._segments[-1], first
    while store._segments[-1] == newest:
        try:
            store.save(Ready(entries=entries(index, index, 1), hard_state=HardState(1, 1, index - 1)))
        except OSError:
            return index
        index += 1
    return index


# -- segments ------------------------------------------------------------------------------------

def test_a_full_segment_continues_in_a_new_one_that_starts_with_the_whole_state(tmp_path: Path) -> None:
    directory = tmp_path / "raft-wal"
    store = SegmentLogStore(directory, segment_bytes=4096)
    store.bootstrap((1, 2, 3))
    assert [s.stat().st_size for s in segments(directory)] == [4096], "preallocated"
    for i in range(1, 101):
        store.save(Ready(entries=entries(i, i, 1)))
    store.close()
    (newest,) = segments(directory)
    assert int(newest.stem) > 1 and newest.stat().st_size == 4096, "older segments are deleted"
    first = segment_log.read_records(newest.read_bytes())[0][0]
    assert first.snapshot is not None and first.entries[0].index == 1
    assert [e.index for e in reopened(directory).entries] == list(range(1, 101))


def test_a_state_larger_than_a_segment_is_not_rewritten_by_every_save(tmp_path: Path) -> None:
    directory = tmp_path / "raft-wal"
    store = SegmentLogStore(directory, segment_bytes=1024)
    store.bootstrap((1, 2, 3))
    store.save(Ready(entries=entries(1, 1, 1)))
    store.compact(Snapshot(1, 1, (1, 2, 3), b"s" * 4000))  # the whole state is now 4 KB
    numbers = []
    for i in range(2, 40):
        store.save(Ready(entries=entries(i, i, 1)))
        numbers.append(int(store._segments[-1].stem))
    store.close()
    assert len(set(numbers)) <= 3, f"segments {sorted(set(numbers))}: the 4 KB state was rewritten too often"
    assert [e.index for e in reopened(directory, segment_bytes=1024).entries] == list(range(2, 40))


@pytest.mark.parametrize("deleted_before_dying", [0, 1])
def test_a_crash_while_deleting_old_segments_leaves_a_log_that_replays(
        tmp_path: Path, unlink_dies_after: list[int], deleted_before_dying: int) -> None:
    directory = tmp_path / "raft-wal"
    store = SegmentLogStore(directory, segment_bytes=512)
    store.bootstrap((1, 2, 3))
    unlink_dies_after.append(0)
    index = save_until_rotation(store, 1)  # dies before deleting anything: two segments
    store.close()
    store = SegmentLogStore(directory, segment_bytes=512)
    assert len(segments(directory)) == 2
    unlink_dies_after[0] = deleted_before_dying
    index = save_until_rotation(store, index)
    expected = store.stored()
    store.close()
    assert len(segments(directory)) == 3 - deleted_before_dying
    assert [e.index for e in expected.entries] == list(range(1, index))
    assert reopened(directory, segment_bytes=512) == expected


def test_damage_in_an_older_segment_refuses_to_open(tmp_path: Path, unlink_dies_after: list[int]) -> None:
    directory = tmp_path / "raft-wal"
    store = SegmentLogStore(directory, segment_bytes=512)
    store.bootstrap((1, 2, 3))
    unlink_dies_after.append(0)
    save_until_rotation(store, 1)
    store.close()
    older = segments(directory)[0]
    damage(older, 10, b"X")
    with pytest.raises(SegmentLogCorrupt, match="older segment"):
        SegmentLogStore(directory, segment_bytes=512)


def test_compaction_is_one_synced_record(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    directory = tmp_path / "raft-wal"
    store = SegmentLogStore(directory)
    store.bootstrap((1, 2, 3))
    for i in range(1, 11):
        store.save(Ready(entries=entries(i, i, 1), hard_state=HardState(1, 1, i - 1)))
    calls: list[str] = []
    real_pwrite, real_fdatasync = os.pwrite, os.fdatasync
    monkeypatch.setattr(os, "pwrite", lambda fd, data, at: calls.append("write") or real_pwrite(fd, data, at))
    monkeypatch.setattr(os, "fdatasync", lambda fd: calls.append("sync") or real_fdatasync(fd))
    store.compact(Snapshot(7, 1, (1, 2, 3), b"kv"))
    monkeypatch.undo()
    store.close()
    assert calls == ["write", "sync"]
    got = reopened(directory)
    assert (got.snapshot, [e.index for e in got.entries]) == (Snapshot(7, 1, (1, 2, 3), b"kv"), [8, 9, 10])
    assert got.hard_state == HardState(1, 1, 9)


def test_a_save_is_one_write_and_one_fdatasync_and_a_commit_only_save_skips_the_fdatasync(
        store: SegmentLogStore, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[str] = []
    real_pwrite, real_fdatasync = os.pwrite, os.fdatasync
    monkeypatch.setattr(os, "pwrite", lambda fd, data, at: calls.append("write") or real_pwrite(fd, data, at))
    monkeypatch.setattr(os, "fdatasync", lambda fd: calls.append("sync") or real_fdatasync(fd))
    store.save(Ready(hard_state=HardState(1, 1, 0), entries=entries(1, 3, 1)))
    assert calls == ["write", "sync"], "one write and one fdatasync per save"
    store.save(Ready(hard_state=HardState(1, 1, 3)))
    assert calls[2:] == ["write"] and (store.saves, store.synced_saves) == (2, 1)
    store.save(Ready(hard_state=HardState(2, 0, 3)))  # a new term: the same file's fdatasync keeps the commit too
    assert calls[3:] == ["write", "sync"]


def test_entries_that_would_leave_a_hole_are_refused(store: SegmentLogStore) -> None:
    store.save(Ready(entries=entries(1, 2, 1)))
    with pytest.raises(ValueError, match="hole"):
        store.save(Ready(entries=entries(4, 4, 1)))


# -- which store a manager opens -----------------------------------------------------------------

def test_a_new_data_directory_gets_the_segment_log_and_an_old_one_keeps_its_sqlite_log(tmp_path: Path) -> None:
    new, old = tmp_path / "new", tmp_path / "old"
    new.mkdir()
    old.mkdir()
    store = open_log_store(new, None)
    assert isinstance(store, SegmentLogStore)
    store.close()
    sqlite = SQLiteLogStore(old / "raft.sqlite3")
    sqlite.bootstrap((1,))
    sqlite.save(Ready(entries=entries(1, 2, 1), hard_state=HardState(1, 1, 2)))
    sqlite.close()
    store = open_log_store(old, None)
    try:
        assert isinstance(store, SQLiteLogStore) and [e.index for e in store.stored().entries] == [1, 2]
    finally:
        store.close()
    with pytest.raises(ValueError, match="holds a sqlite log store, not segment"):
        open_log_store(old, "segment")
    with pytest.raises(ValueError, match="allowed: segment, sqlite"):
        open_log_store(new, "lmdb")
    (new / "raft.sqlite3").touch()
    with pytest.raises(ValueError, match="holds both"):
        open_log_store(new, None)

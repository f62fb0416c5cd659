"""The ``LogStore`` port's contract: what every Raft storage (memory, SQLite, ...) must do.

A new implementation subclasses ``LogStoreContract`` and provides ``make_store`` (and, for a
store on disk, ``reopen``); the same assertions then run against it (house style: one abstract
suite per port). ``TestMemoryStorage`` runs it on the core's reference store and
``TestSQLiteLogStore`` on the managers' SQLite file and ``TestSegmentLogStore`` on their
segment log, which ``reopen`` closes and opens again before every read-back, so each check there
is also a durability-across-restart check. Store-specific properties (WAL mode, the unsynced
commit-only save, the random-sequence comparison with the reference, a SIGKILLed writer, torn
tails) live in ``test_manager_logstore.py`` and ``test_manager_segment_log.py``.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from backends.manager.logstore import SQLiteLogStore
from backends.manager.segment_log import SegmentLogStore
from novacron.ports import LogStore
from novacron.raft.messages import Entry, HardState, Ready, Snapshot
from novacron.raft.node import Stored
from novacron.raft.storage import MemoryStorage


def entries(first: int, terms: list[int]) -> list[Entry]:
    return [Entry(first + i, t, 0, f"e{first + i}".encode()) for i, t in enumerate(terms)]


class LogStoreContract:
    def make_store(self, stored: Stored) -> LogStore:
        raise NotImplementedError

    def reopen(self, store: LogStore) -> LogStore:
        """The store as a restarted process finds it (the same object for a store in memory)."""
        return store

    def test_a_new_store_returns_the_bootstrap_state(self) -> None:
        store = self.make_store(Stored.bootstrap((1, 2, 3)))
        assert self.reopen(store).stored() == Stored.bootstrap((1, 2, 3))

    def test_save_appends_entries_and_the_hard_state(self) -> None:
        store = self.make_store(Stored.bootstrap((1, 2, 3)))
        store.save(Ready(hard_state=HardState(2, 1, 1), entries=entries(1, [1, 2])))
        got = self.reopen(store).stored()
        assert got.hard_state == HardState(2, 1, 1) and got.entries == entries(1, [1, 2])
        assert got.snapshot.voters == (1, 2, 3)

    def test_save_replaces_the_stored_suffix_from_the_first_new_entry(self) -> None:
        """Figure 2, AppendEntries rule 3: delete the existing entry and all that follow it."""
        store = self.make_store(Stored.bootstrap((1, 2, 3)))
        store.save(Ready(entries=entries(1, [1, 1, 1, 2])))
        store.save(Ready(entries=entries(3, [3])))
        assert [e.term for e in self.reopen(store).stored().entries] == [1, 1, 3]

    def test_a_received_snapshot_replaces_the_whole_log_even_entries_beyond_it(self) -> None:
        """A deposed leader's unreplicated suffix must not survive an InstallSnapshot (vopr seed 8299)."""
        store = self.make_store(Stored.bootstrap((1, 2, 3)))
        store.save(Ready(entries=entries(1, [1, 1, 1, 1, 1])))
        store.save(Ready(snapshot=Snapshot(3, 2, (1, 2, 3), b"state")))
        store = self.reopen(store)
        assert store.stored().entries == []
        store.save(Ready(entries=entries(4, [2, 2])))
        assert [e.index for e in self.reopen(store).stored().entries] == [4, 5]

    def test_a_received_snapshot_replaces_the_log_it_covers(self) -> None:
        store = self.make_store(Stored.bootstrap((1, 2, 3)))
        store.save(Ready(entries=entries(1, [1, 1, 1])))
        snap = Snapshot(10, 4, (1, 2, 3), b"state")
        store.save(Ready(snapshot=snap, hard_state=HardState(4, 0, 10)))
        store = self.reopen(store)
        got = store.stored()
        assert got.snapshot == snap and got.entries == [] and got.hard_state.commit == 10
        store.save(Ready(entries=entries(11, [4])))
        assert [e.index for e in self.reopen(store).stored().entries] == [11]

    def test_compact_keeps_the_entries_after_the_snapshot(self) -> None:
        store = self.make_store(Stored.bootstrap((1, 2, 3)))
        store.save(Ready(entries=entries(1, [1, 1, 2, 2, 2])))
        store.compact(Snapshot(3, 2, (1, 2, 3), b"s"))
        got = self.reopen(store).stored()
        assert got.snapshot.index == 3 and [e.index for e in got.entries] == [4, 5]

    def test_an_older_snapshot_does_not_undo_a_compaction(self) -> None:
        store = self.make_store(Stored.bootstrap((1, 2, 3)))
        store.save(Ready(entries=entries(1, [3] * 10)))
        store.compact(Snapshot(7, 3, (1, 2, 3), b"kv"))
        store.compact(Snapshot(4, 3, (1, 2, 3), b"older"))
        got = self.reopen(store).stored()
        assert (got.snapshot.index, got.snapshot.data) == (7, b"kv")
        assert got.entries == entries(8, [3, 3, 3])

    def test_entries_before_the_snapshot_are_refused(self) -> None:
        store = self.make_store(Stored.bootstrap((1, 2, 3)))
        store.save(Ready(snapshot=Snapshot(5, 1, (1, 2, 3), b"")))
        with pytest.raises(ValueError, match="precede the snapshot"):
            store.save(Ready(entries=entries(3, [1, 1, 1, 1])))

    def test_stored_is_a_copy_not_a_view(self) -> None:
        store = self.make_store(Stored.bootstrap((1,)))
        store.save(Ready(entries=entries(1, [1])))
        first = store.stored()
        store.save(Ready(entries=entries(2, [1])))
        assert len(first.entries) == 1


class TestMemoryStorage(LogStoreContract):
    def make_store(self, stored: Stored) -> LogStore:
        return MemoryStorage(stored)


class OnDiskContract(LogStoreContract):
    """A store on disk; every read-back goes through a closed and reopened store."""

    def open_store(self, directory: Path) -> SQLiteLogStore | SegmentLogStore:
        raise NotImplementedError

    @pytest.fixture(autouse=True)
    def _directory(self, tmp_path: Path) -> Iterator[None]:
        self.directory = tmp_path
        self.opened: list[SQLiteLogStore | SegmentLogStore] = []
        yield
        for store in self.opened:
            store.close()

    def _open(self) -> SQLiteLogStore | SegmentLogStore:
        store = self.open_store(self.directory)
        self.opened.append(store)
        return store

    def make_store(self, stored: Stored) -> LogStore:
        store = self._open()
        store.bootstrap(stored.snapshot.voters)
        if stored != Stored.bootstrap(stored.snapshot.voters):
            store.save(Ready(snapshot=stored.snapshot, entries=list(stored.entries), hard_state=stored.hard_state))
        return store

    def reopen(self, store: LogStore) -> LogStore:
        assert isinstance(store, SQLiteLogStore | SegmentLogStore)
        store.close()
        self.opened.remove(store)
        return self._open()


class TestSQLiteLogStore(OnDiskContract):
    """The managers' SQLite file."""

    def open_store(self, directory: Path) -> SQLiteLogStore:
        return SQLiteLogStore(directory / "raft.sqlite3")


class TestSegmentLogStore(OnDiskContract):
    """The managers' segment log, with segments small enough that the tests cross their boundaries."""

    def open_store(self, directory: Path) -> SegmentLogStore:
        return SegmentLogStore(directory / "raft-wal", segment_bytes=256)

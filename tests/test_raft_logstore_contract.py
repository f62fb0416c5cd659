"""The ``LogStore`` port's contract: what every Raft storage (memory, SQLite, ...) must do.

A new implementation subclasses ``LogStoreContract`` and provides ``make_store``; the same
assertions then run against it (house style: one abstract suite per port).
"""

from __future__ import annotations

from novacron.ports import LogStore
from novacron.raft.messages import Entry, HardState, Ready, Snapshot
from novacron.raft.node import Stored
from novacron.raft.storage import MemoryStorage


def entries(first: int, terms: list[int]) -> list[Entry]:
    return [Entry(first + i, t, 0, f"e{first + i}".encode()) for i, t in enumerate(terms)]


class LogStoreContract:
    def make_store(self, stored: Stored) -> LogStore:
        raise NotImplementedError

    def test_a_new_store_returns_the_bootstrap_state(self) -> None:
        store = self.make_store(Stored.bootstrap((1, 2, 3)))
        assert store.stored() == Stored.bootstrap((1, 2, 3))

    def test_save_appends_entries_and_the_hard_state(self) -> None:
        store = self.make_store(Stored.bootstrap((1, 2, 3)))
        store.save(Ready(hard_state=HardState(2, 1, 1), entries=entries(1, [1, 2])))
        got = store.stored()
        assert got.hard_state == HardState(2, 1, 1) and got.entries == entries(1, [1, 2])

    def test_save_replaces_the_stored_suffix_from_the_first_new_entry(self) -> None:
        store = self.make_store(Stored.bootstrap((1, 2, 3)))
        store.save(Ready(entries=entries(1, [1, 1, 1, 2])))
        store.save(Ready(entries=entries(3, [3])))
        assert [e.term for e in store.stored().entries] == [1, 1, 3]

    def test_a_received_snapshot_replaces_the_whole_log_even_entries_beyond_it(self) -> None:
        """A deposed leader's unreplicated suffix must not survive an InstallSnapshot (vopr seed 8299)."""
        store = self.make_store(Stored.bootstrap((1, 2, 3)))
        store.save(Ready(entries=entries(1, [1, 1, 1, 1, 1])))
        store.save(Ready(snapshot=Snapshot(3, 2, (1, 2, 3), b"state")))
        assert store.stored().entries == []

    def test_a_received_snapshot_replaces_the_log_it_covers(self) -> None:
        store = self.make_store(Stored.bootstrap((1, 2, 3)))
        store.save(Ready(entries=entries(1, [1, 1, 1])))
        snap = Snapshot(10, 4, (1, 2, 3), b"state")
        store.save(Ready(snapshot=snap, hard_state=HardState(4, 0, 10)))
        got = store.stored()
        assert got.snapshot == snap and got.entries == [] and got.hard_state.commit == 10
        store.save(Ready(entries=entries(11, [4])))
        assert [e.index for e in store.stored().entries] == [11]

    def test_compact_keeps_the_entries_after_the_snapshot(self) -> None:
        store = self.make_store(Stored.bootstrap((1, 2, 3)))
        store.save(Ready(entries=entries(1, [1, 1, 2, 2, 2])))
        store.compact(Snapshot(3, 2, (1, 2, 3), b"s"))
        got = store.stored()
        assert got.snapshot.index == 3 and [e.index for e in got.entries] == [4, 5]

    def test_stored_is_a_copy_not_a_view(self) -> None:
        store = self.make_store(Stored.bootstrap((1,)))
        store.save(Ready(entries=entries(1, [1])))
        first = store.stored()
        store.save(Ready(entries=entries(2, [1])))
        assert len(first.entries) == 1


class TestMemoryStorage(LogStoreContract):
    def make_store(self, stored: Stored) -> LogStore:
        return MemoryStorage(stored)

"""The ``LogStore`` port's contract: what every Raft storage (memory, SQLite, ...) must do.

A new implementation subclasses ``LogStoreContract`` and provides ``make_store`` (and, for a
store on disk, ``reopen``); the same assertions then run against it (house style: one abstract
suite per port). ``TestMemoryStorage`` runs it on the core's reference store and
``TestSQLiteLogStore`` on the managers' SQLite file and ``TestSegmentLogStore`` on their
segment log, which ``reopen`` closes and opens again before every read-back, so each check there
is also a durability-across-restart check. What every store on disk must do besides
(``OnDiskContract``): a commit-only save is not synced but the next synced save keeps it; random
Ready sequences give what the reference gives, with a restart after every step; a SIGKILLed
writer loses no acknowledged save. How each store does it (WAL mode and checkpoints, one write and
one fdatasync, torn tails, segments) lives in ``test_manager_logstore.py`` and
``test_manager_segment_log.py``.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from backends.manager.logstore import SQLiteLogStore
from backends.manager.segment_log import SegmentLogStore
from novacron.ports import LogStore
from novacron.raft.messages import Entry, HardState, Ready, Snapshot
from novacron.raft.node import Stored
from novacron.raft.storage import MemoryStorage

REPO_ROOT = Path(__file__).resolve().parents[1]


def entries(first: int, terms: list[int]) -> list[Entry]:
    return [Entry(first + i, t, 0, f"e{first + i}".encode()) for i, t in enumerate(terms)]


operations = st.lists(st.tuples(st.sampled_from(["append", "overwrite", "snapshot", "compact", "hard", "commit"]),
                                st.integers(0, 6), st.integers(1, 5)), min_size=1, max_size=25)


def next_step(memory: MemoryStorage, op: str, back: int, count: int, term: int) -> tuple[Ready, Snapshot | None]:
    """The Ready (and the compaction, if any) that ``op`` makes of the reference's state."""
    last, base, hard = memory.last_index(), memory.snapshot.index, memory.hard_state
    if op == "append":
        return Ready(entries=entries(last + 1, [term] * count)), None
    if op == "overwrite":
        first = max(base + 1, last + 1 - back)
        return Ready(entries=entries(first, [term] * count), hard_state=HardState(term, 1, base)), None
    if op == "snapshot" and last > base:
        return Ready(snapshot=Snapshot(max(base + 1, last - back), term, (1, 2, 3), b"s" * count)), None
    if op == "compact" and last > base:
        return Ready(), Snapshot(max(base + 1, last - back), term, (1, 2, 3), b"c" * count)
    if op == "commit":
        return Ready(hard_state=HardState(hard.term, hard.vote, min(last, hard.commit + count))), None
    return Ready(hard_state=HardState(term, count % 3, base)), None


WRITER = """
import sys
from pathlib import Path
from backends.manager.logstore import SQLiteLogStore
from backends.manager.segment_log import SegmentLogStore
from novacron.raft import Entry, HardState, Ready
data_dir = Path(sys.argv[1])
store = {opens}
store.bootstrap((1, 2, 3))
for i in range(1, 100000):
    store.save(Ready(hard_state=HardState(i, 1, i - 1), entries=[Entry(i, i, 0, b"x" * 100)]))
    print(i, flush=True)
"""


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

    def test_learners_survive_bootstrap_a_received_snapshot_and_a_compaction(self) -> None:
        """Learners are part of the configuration a snapshot carries (and a log without them reads as before)."""
        store = self.reopen(self.make_store(Stored.bootstrap((1, 2, 3), learners=(7, 4))))
        assert store.stored() == Stored.bootstrap((1, 2, 3), learners=(4, 7))
        store.save(Ready(snapshot=Snapshot(5, 2, (1, 2), b"state", learners=(3, 9))))
        store = self.reopen(store)
        assert store.stored().snapshot == Snapshot(5, 2, (1, 2), b"state", learners=(3, 9))
        store.save(Ready(entries=entries(6, [2, 2, 2])))
        store.compact(Snapshot(7, 2, (1, 2, 3), b"kv", learners=(9,)))
        store = self.reopen(store)
        got = store.stored()
        assert got.snapshot.learners == (9,) and [e.index for e in got.entries] == [8]
        store.compact(Snapshot(8, 2, (1, 2, 3), b"kv2"))
        assert self.reopen(store).stored().snapshot.learners == ()

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

    writer_opens = ""
    """How the SIGKILL test's writer process opens the store in ``data_dir`` (a Python expression)."""
    writer_saves = 0
    """How many saves the writer reports before it is killed."""

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
        store.bootstrap(stored.snapshot.voters, stored.snapshot.learners)
        if stored != Stored.bootstrap(stored.snapshot.voters, stored.snapshot.learners):
            store.save(Ready(snapshot=stored.snapshot, entries=list(stored.entries), hard_state=stored.hard_state))
        return store

    def reopen(self, store: LogStore) -> LogStore:
        assert isinstance(store, SQLiteLogStore | SegmentLogStore)
        store.close()
        self.opened.remove(store)
        return self._open()

    def test_a_commit_only_save_is_not_synced_and_the_next_synced_save_keeps_it(self) -> None:
        """The commit index is a hint (etcd-io/raft): a Ready that moves only it is written without
        waiting for the disk; a new term is synced, and the reopened store has that hard state."""
        store = self._open()
        store.bootstrap((1,))
        store.save(Ready(hard_state=HardState(1, 1, 0), entries=entries(1, [1, 1, 1])))
        store.save(Ready(hard_state=HardState(1, 1, 3)))
        assert (store.saves, store.synced_saves) == (2, 1)
        store.save(Ready(hard_state=HardState(2, 0, 3)))  # a new term must be synced
        assert store.synced_saves == 2
        assert self.reopen(store).stored().hard_state == HardState(2, 0, 3)

    def test_random_ready_sequences_match_the_reference_storage(self, fast_dir: Path) -> None:
        """Appends, conflicting-suffix truncations, snapshots, compactions, hard states and
        commit-only saves: the store, closed and reopened after every step, holds what
        ``MemoryStorage`` holds. (``@given`` on an inner function: one per call, so each store
        subclass runs its own Hypothesis test rather than sharing one across executors.)"""

        @settings(deadline=None)
        @given(ops=operations)
        def matches_the_reference(ops: list[tuple[str, int, int]]) -> None:
            directory = Path(tempfile.mkdtemp(dir=fast_dir))
            memory = MemoryStorage(Stored.bootstrap((1, 2, 3)))
            store = self.open_store(directory)
            store.bootstrap((1, 2, 3))
            term = 1
            try:
                for op, back, count in ops:
                    term += op == "overwrite"
                    ready, compaction = next_step(memory, op, back, count, term)
                    if compaction is not None:
                        memory.compact(compaction)
                        store.compact(compaction)
                    memory.save(ready)
                    store.save(ready)
                    store.close()
                    store = self.open_store(directory)
                    assert store.stored() == memory.stored()
            finally:
                store.close()

        matches_the_reference()

    def test_every_save_that_returned_survives_sigkill(self) -> None:
        env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
        script = WRITER.format(opens=self.writer_opens)
        writer = subprocess.Popen([sys.executable, "-c", script, str(self.directory)], stdout=subprocess.PIPE, env=env)
        try:
            assert writer.stdout is not None
            acknowledged = 0
            while acknowledged < self.writer_saves:
                line = writer.stdout.readline()
                assert line, f"the writer died before {self.writer_saves} saves"
                acknowledged = int(line)
            writer.send_signal(signal.SIGKILL)
        finally:
            writer.kill()
            writer.wait()
            if writer.stdout is not None:
                writer.stdout.close()
        stored = self._open().stored()
        assert len(stored.entries) >= acknowledged
        assert [e.index for e in stored.entries] == list(range(1, len(stored.entries) + 1))
        assert stored.hard_state.term >= acknowledged


class TestSQLiteLogStore(OnDiskContract):
    """The managers' SQLite file."""

    writer_opens = 'SQLiteLogStore(data_dir / "raft.sqlite3")'
    writer_saves = 200

    def open_store(self, directory: Path) -> SQLiteLogStore:
        return SQLiteLogStore(directory / "raft.sqlite3")


class TestSegmentLogStore(OnDiskContract):
    """The managers' segment log, with segments small enough that the tests (and the writer killed
    by SIGKILL) cross their boundaries."""

    writer_opens = 'SegmentLogStore(data_dir / "raft-wal", segment_bytes=16384)'
    writer_saves = 300

    def open_store(self, directory: Path) -> SegmentLogStore:
        return SegmentLogStore(directory / "raft-wal", segment_bytes=160)

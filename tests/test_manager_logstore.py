"""Stable storage of a manager: what the SQLite log store must do beyond the ``LogStore`` contract.

The contract itself (``tests/test_raft_logstore_contract.py``) runs against both the SQLite store
and the core's reference ``MemoryStorage``. Here: WAL mode with full sync, the unsynced
commit-only save, a property test that drives SQLite (reopened after every step) and the
reference with random Ready sequences (appends, conflicting-suffix truncations, snapshots,
compactions) and compares them, a crash test that SIGKILLs a writer process and finds every
acknowledged save on disk, and the WAL checkpoint.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from backends.manager.logstore import SQLiteLogStore
from novacron.raft import Entry, HardState, MemoryStorage, Ready, Snapshot, Stored

REPO_ROOT = Path(__file__).resolve().parents[1]


def entries(first: int, last: int, term: int) -> list[Entry]:
    return [Entry(i, term, 0, f"cmd-{i}-{term}".encode()) for i in range(first, last + 1)]


def test_sqlite_runs_in_wal_mode_with_full_sync(tmp_path: Path) -> None:
    store = SQLiteLogStore(tmp_path / "raft.sqlite3")
    try:
        assert store._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert store._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    finally:
        store.close()


def test_a_commit_only_ready_is_written_without_a_sync_but_not_lost(tmp_path: Path) -> None:
    store = SQLiteLogStore(tmp_path / "raft.sqlite3")
    store.bootstrap((1,))
    store.save(Ready(hard_state=HardState(1, 1, 0), entries=entries(1, 3, 1)))
    store.save(Ready(hard_state=HardState(1, 1, 3)))
    assert (store.saves, store.synced_saves) == (2, 1)
    assert store._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # back to FULL afterwards
    store.save(Ready(hard_state=HardState(2, 0, 3)))  # a new term must be synced
    assert store.synced_saves == 2
    store.close()
    assert SQLiteLogStore(tmp_path / "raft.sqlite3").stored().hard_state == HardState(2, 0, 3)


# -- random Ready sequences: SQLite (reopened each step) behaves like MemoryStorage ------------

operations = st.lists(st.tuples(st.sampled_from(["append", "overwrite", "snapshot", "compact", "hard"]),
                                st.integers(0, 6), st.integers(1, 5)), min_size=1, max_size=25)


@pytest.fixture(scope="module")
def fast_dir(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """tmpfs when there is one: this property checks logic, fsync cost would only slow it down."""
    shm = Path("/dev/shm")
    if not (shm.is_dir() and os.access(shm, os.W_OK)):
        yield tmp_path_factory.mktemp("prop")
        return
    made = Path(tempfile.mkdtemp(dir=shm, prefix="novacron-logstore-"))
    yield made
    shutil.rmtree(made, ignore_errors=True)


@given(ops=operations)
def test_sqlite_matches_the_reference_storage(fast_dir: Path, ops: list[tuple[str, int, int]]) -> None:
    path = Path(tempfile.mkdtemp(dir=fast_dir)) / "raft.sqlite3"
    memory = MemoryStorage(Stored.bootstrap((1, 2, 3)))
    sqlite = SQLiteLogStore(path)
    sqlite.bootstrap((1, 2, 3))
    term = 1
    try:
        for op, back, count in ops:
            last, base = memory.last_index(), memory.snapshot.index
            if op == "append":
                ready = Ready(entries=entries(last + 1, last + count, term))
            elif op == "overwrite":
                term += 1
                first = max(base + 1, last + 1 - back)
                ready = Ready(entries=entries(first, first + count - 1, term))
            elif op == "snapshot" and last > base:
                ready = Ready(snapshot=Snapshot(max(base + 1, last - back), term, (1, 2, 3), b"s"))
            elif op == "compact" and last > base:
                snap = Snapshot(max(base + 1, last - back), term, (1, 2, 3), b"c")
                memory.compact(snap)
                sqlite.compact(snap)
                ready = Ready()
            else:
                ready = Ready(hard_state=HardState(term, count % 3, base))
            memory.save(ready)
            sqlite.save(ready)
            sqlite.close()
            sqlite = SQLiteLogStore(path)
            assert sqlite.stored() == memory.stored()
    finally:
        sqlite.close()


# -- a real crash -------------------------------------------------------------------------------

WRITER = """
import sys
from backends.manager.logstore import SQLiteLogStore
from novacron.raft import Entry, HardState, Ready
store = SQLiteLogStore(sys.argv[1])
store.bootstrap((1, 2, 3))
for i in range(1, 100000):
    store.save(Ready(hard_state=HardState(i, 1, i - 1), entries=[Entry(i, i, 0, b"x" * 100)]))
    print(i, flush=True)
"""


def test_every_save_that_returned_survives_sigkill(tmp_path: Path) -> None:
    path = tmp_path / "raft.sqlite3"
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    writer = subprocess.Popen([sys.executable, "-c", WRITER, str(path)], stdout=subprocess.PIPE, env=env)
    try:
        assert writer.stdout is not None
        acknowledged = 0
        while acknowledged < 200:
            line = writer.stdout.readline()
            assert line, "the writer died before 200 saves"
            acknowledged = int(line)
        writer.send_signal(signal.SIGKILL)
    finally:
        writer.kill()
        writer.wait()
        if writer.stdout is not None:
            writer.stdout.close()
    reopened = SQLiteLogStore(path)
    stored = reopened.stored()
    reopened.close()
    assert len(stored.entries) >= acknowledged
    assert [e.index for e in stored.entries] == list(range(1, len(stored.entries) + 1))
    assert stored.hard_state.term >= acknowledged


def test_a_checkpoint_between_saves_completes_and_the_wal_restarts(tmp_path: Path) -> None:
    store = SQLiteLogStore(tmp_path / "raft.sqlite3")
    store.bootstrap((1, 2, 3))
    big = [Entry(i, 1, 0, bytes([i % 256]) * 40_000) for i in range(1, 501)]
    for first in range(0, 450, 50):
        store.save(Ready(entries=big[first:first + 50]))
    assert store.needs_checkpoint()
    wal_frames, copied_frames = store.checkpoint()
    assert wal_frames > 2000 and copied_frames == wal_frames
    assert not store.needs_checkpoint()
    store.save(Ready(entries=big[450:], hard_state=HardState(1, 1, 500)))
    wal_frames_after, _ = store.checkpoint()
    assert wal_frames_after < wal_frames, "the WAL must start over after a complete checkpoint"
    store.close()
    reopened = SQLiteLogStore(tmp_path / "raft.sqlite3")
    try:
        assert reopened.stored().entries == big
    finally:
        reopened.close()

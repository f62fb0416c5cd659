"""Stable storage of a manager: what the SQLite log store must do beyond the ``LogStore`` contract.

The contract itself (``tests/test_raft_logstore_contract.py``) runs against the SQLite store, the
segment log and the core's reference ``MemoryStorage``; its on-disk part covers the commit-only
save, the random-sequence comparison with the reference (reopened after every step) and a
SIGKILLed writer. Here, what is SQLite's own: WAL mode with full sync, a commit-only save that
relaxes ``synchronous`` for its one transaction only, and the WAL checkpoint.
"""

from __future__ import annotations

from pathlib import Path

from backends.manager.logstore import SQLiteLogStore
from novacron.raft import Entry, HardState, Ready


def entries(first: int, last: int, term: int) -> list[Entry]:
    return [Entry(i, term, 0, f"cmd-{i}-{term}".encode()) for i in range(first, last + 1)]


def test_sqlite_runs_in_wal_mode_with_full_sync(tmp_path: Path) -> None:
    store = SQLiteLogStore(tmp_path / "raft.sqlite3")
    try:
        assert store._db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert store._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
    finally:
        store.close()


def test_a_commit_only_ready_relaxes_synchronous_for_its_own_transaction_only(tmp_path: Path) -> None:
    store = SQLiteLogStore(tmp_path / "raft.sqlite3")
    try:
        store.bootstrap((1,))
        store.save(Ready(hard_state=HardState(1, 1, 0), entries=entries(1, 3, 1)))
        store.save(Ready(hard_state=HardState(1, 1, 3)))
        assert (store.saves, store.synced_saves) == (2, 1)
        assert store._db.execute("PRAGMA synchronous").fetchone()[0] == 2  # back to FULL afterwards
    finally:
        store.close()


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

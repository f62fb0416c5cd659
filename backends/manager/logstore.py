"""The durable half of a manager: Raft's log, hard state and snapshot in one SQLite file.

Theory of operation
-------------------
Figure 2 of the Raft paper (Ongaro & Ousterhout, 2014) requires ``currentTerm``, ``votedFor``
and ``log[]`` to be on stable storage before a server answers an RPC; etcd-io/raft adds the
commit index to the hard state so a restarted node can re-apply what it knew was committed.
``SQLiteLogStore`` keeps them in three tables -- ``entries`` (one row per entry), ``hard_state``
(one row) and ``snapshot`` (one row: the compacted prefix, section 7) -- and has the same
interface as the core's reference ``MemoryStorage`` (``save(ready)``, ``compact``, ``stored``),
so one contract test suite checks both.

``save`` writes everything durable in a ``Ready`` in ONE transaction, in the order the core
requires: the snapshot (which replaces the whole stored log), then the entries (deleting any stored
suffix from ``entries[0].index`` first: the follower's "delete the existing entry and all that
follow it"), then the hard state. The database runs in WAL mode with ``synchronous=FULL``, so
``COMMIT`` returns only after the WAL has been fsynced (https://www.sqlite.org/pragma.html#pragma_synchronous):
when ``save`` returns, the runtime may send the ``Ready``'s votes and acknowledgements. A save
that fails (a full disk, an fsync error) raises, and the runtime stops without sending or
acknowledging anything of that ``Ready``.

Opening a store first fsyncs the database, its WAL and the directory, and refuses to start if that
fails: a previous process may have died after an fsync error, leaving WAL frames that are only in
the page cache, and SQLite's recovery would otherwise read them back as if they were on disk (the
same reasoning as PostgreSQL syncing its data directory before crash recovery). A batch of
proposals in one ``Ready`` therefore costs one transaction and one fsync. A ``Ready`` whose only
durable change is a higher commit index is written without the fsync (``synchronous=NORMAL`` for
that one transaction): Figure 2 does not require the commit index to be persistent at all (etcd
stores it as a hint), and WAL order guarantees it becomes durable with the next synced commit.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from novacron.raft import Entry, HardState, Ready, Snapshot, Stored
from novacron.raft.messages import parse_node_ids

CHECKPOINT_EVERY_PAGES = 2048
"""The runtime checkpoints (in its disk thread, between saves) once the WAL grew by this many pages (8 MB)."""
SCHEMA = """
CREATE TABLE IF NOT EXISTS entries (idx INTEGER PRIMARY KEY, term INTEGER NOT NULL,
                                    kind INTEGER NOT NULL, data BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS hard_state (id INTEGER PRIMARY KEY CHECK (id = 0), term INTEGER NOT NULL,
                                       vote INTEGER NOT NULL, commit_index INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS snapshot (id INTEGER PRIMARY KEY CHECK (id = 0), idx INTEGER NOT NULL,
                                     term INTEGER NOT NULL, voters TEXT NOT NULL, data BLOB NOT NULL);
"""


def sync_existing_files(database: Path) -> None:
    """fsync the database, its WAL and their directory if they exist; raises ``OSError`` on failure."""
    for path in (database, database.with_name(database.name + "-wal"), database.parent):
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            continue
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def must_sync(ready: Ready, synced_term_vote: tuple[int, int]) -> bool:
    """Whether saving ``ready`` waits for the disk: a snapshot, entries, or a new term or vote
    (etcd-io/raft's ``MustSync``); a Ready that only moves the commit index does not. Both stores
    use it, given the (term, vote) their last synced save left on disk."""
    return ready.snapshot is not None or bool(ready.entries) or term_or_vote_changed(ready, synced_term_vote)


def term_or_vote_changed(ready: Ready, synced_term_vote: tuple[int, int]) -> bool:
    hard = ready.hard_state
    return hard is not None and (hard.term, hard.vote) != synced_term_vote


class SQLiteLogStore:
    """Stable storage of one manager; every ``save`` is durable (fsynced) when it returns."""

    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        sync_existing_files(self.path)
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        mode = self._db.execute("PRAGMA journal_mode=WAL").fetchone()[0]
        if str(mode).lower() != "wal":
            raise RuntimeError(f"{self.path}: SQLite refused WAL mode (got {mode!r})")
        self._db.execute("PRAGMA synchronous=FULL")
        # A checkpoint copies the WAL into the database and fsyncs both. SQLite would run it inside
        # whichever commit crosses 1000 pages; the runtime instead calls ``checkpoint`` from its
        # disk thread between two saves, so the event loop never waits for it, and because no
        # write is in progress it completes and the WAL restarts from its beginning (a checkpoint
        # racing a stream of commits on another connection never finishes, and the WAL grows
        # without bound: https://www.sqlite.org/wal.html#avoiding_excessively_large_wal_files).
        self._db.execute("PRAGMA wal_autocheckpoint=0")
        self.wal_pages = 0
        self._db.executescript(SCHEMA)
        self.saves = 0
        self.synced_saves = 0
        row = self._db.execute("SELECT term, vote FROM hard_state WHERE id = 0").fetchone()
        self._synced_term_vote: tuple[int, int] = (int(row[0]), int(row[1])) if row else (0, 0)

    def close(self) -> None:
        self._db.close()

    def needs_checkpoint(self) -> bool:
        return self.wal_pages >= CHECKPOINT_EVERY_PAGES

    def checkpoint(self) -> tuple[int, int]:
        """Copy the WAL into the database (call it between saves, from the thread that saves);
        returns SQLite's (frames in the WAL, frames copied)."""
        self.wal_pages = 0
        _, wal_frames, copied_frames = self._db.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        return int(wal_frames), int(copied_frames)

    def is_empty(self) -> bool:
        """A brand-new data directory: nothing was ever stored, not even the bootstrap snapshot."""
        return bool(self._db.execute("SELECT COUNT(*) FROM snapshot").fetchone()[0] == 0)

    def bootstrap(self, voters: tuple[int, ...], learners: tuple[int, ...] = ()) -> Stored:
        """Store the initial configuration of a new cluster (snapshot 0) and return it."""
        stored = Stored.bootstrap(voters, learners)
        with self._transaction():
            self._put_snapshot(stored.snapshot)
            self._put_hard_state(stored.hard_state)
        return stored

    # -- the Ready cycle ---------------------------------------------------------------------

    def changes_term_or_vote(self, ready: Ready) -> bool:
        return term_or_vote_changed(ready, self._synced_term_vote)

    def needs_sync(self, ready: Ready) -> bool:
        return must_sync(ready, self._synced_term_vote)

    def save(self, ready: Ready) -> None:
        if ready.snapshot is None and not ready.entries and ready.hard_state is None:
            return
        hard = ready.hard_state
        must_sync = self.needs_sync(ready)
        if not must_sync:
            # Only the commit index moved: it is a hint (a restarted node re-learns it from the
            # leader), so it is written without waiting for the disk; the next synced commit of
            # the WAL makes it durable along with everything before it.
            self._db.execute("PRAGMA synchronous=NORMAL")
        try:
            self._write(ready)
            self.wal_pages += 1 + sum(len(e.data) for e in ready.entries) // 4096
        finally:
            if not must_sync:
                self._db.execute("PRAGMA synchronous=FULL")
        if hard is not None and must_sync:
            self._synced_term_vote = (hard.term, hard.vote)
        self.saves += 1
        self.synced_saves += must_sync

    def _write(self, ready: Ready) -> None:
        with self._transaction():
            if ready.snapshot is not None:
                # The node hands over a snapshot only after replacing its whole log with it
                # (section 7): entries after it may come from a deposed leader and must go too.
                self._put_snapshot(ready.snapshot)
                self._db.execute("DELETE FROM entries")
            if ready.entries:
                first = ready.entries[0].index
                if first <= self._snapshot_index():
                    raise ValueError(f"entries at {first} precede the snapshot at {self._snapshot_index()}")
                self._db.execute("DELETE FROM entries WHERE idx >= ?", (first,))
                self._db.executemany("INSERT INTO entries (idx, term, kind, data) VALUES (?, ?, ?, ?)",
                                     [(e.index, e.term, int(e.kind), e.data) for e in ready.entries])
            if ready.hard_state is not None:
                self._put_hard_state(ready.hard_state)

    def compact(self, snapshot: Snapshot) -> None:
        """Keep a snapshot the runtime took of its state machine and drop the entries it covers."""
        if snapshot.index <= self._snapshot_index():
            return
        with self._transaction():
            self._put_snapshot(snapshot)
            self._db.execute("DELETE FROM entries WHERE idx <= ?", (snapshot.index,))

    # -- reading back after a restart ----------------------------------------------------------

    def stored(self) -> Stored:
        row = self._db.execute("SELECT term, vote, commit_index FROM hard_state WHERE id = 0").fetchone()
        hard_state = HardState(*row) if row else HardState()
        snapshot = self._snapshot()
        entries = [Entry(i, t, k, bytes(d)) for i, t, k, d in self._db.execute(
            "SELECT idx, term, kind, data FROM entries WHERE idx > ? ORDER BY idx", (snapshot.index,))]
        for expected, entry in enumerate(entries, start=snapshot.index + 1):
            if entry.index != expected:
                raise RuntimeError(f"{self.path}: the stored log has a hole at index {expected}")
        return Stored(hard_state, snapshot, entries)

    def last_index(self) -> int:
        row = self._db.execute("SELECT MAX(idx) FROM entries").fetchone()
        return max(int(row[0] or 0), self._snapshot_index())

    # -- helpers -------------------------------------------------------------------------------

    def _transaction(self) -> _Transaction:
        return _Transaction(self._db)

    def _snapshot(self) -> Snapshot:
        row = self._db.execute("SELECT idx, term, voters, data FROM snapshot WHERE id = 0").fetchone()
        if row is None:
            return Snapshot()
        index, term, members, data = row
        voters, _, learners = members.partition(";")
        return Snapshot(index, term, parse_node_ids(voters), bytes(data), parse_node_ids(learners))

    def _snapshot_index(self) -> int:
        row = self._db.execute("SELECT idx FROM snapshot WHERE id = 0").fetchone()
        return int(row[0]) if row else 0

    def _put_snapshot(self, snapshot: Snapshot) -> None:
        self._db.execute("INSERT OR REPLACE INTO snapshot (id, idx, term, voters, data) VALUES (0, ?, ?, ?, ?)",
                         (snapshot.index, snapshot.term, _members_text(snapshot), snapshot.data))

    def _put_hard_state(self, hard_state: HardState) -> None:
        self._db.execute("INSERT OR REPLACE INTO hard_state (id, term, vote, commit_index) VALUES (0, ?, ?, ?)",
                         (hard_state.term, hard_state.vote, hard_state.commit))


class _Transaction:
    """``BEGIN IMMEDIATE`` ... ``COMMIT`` (durable on return), or ``ROLLBACK`` on an exception."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db

    def __enter__(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    def __exit__(self, exc_type: object, exc: object, tb: object) -> None:
        self._db.execute("ROLLBACK" if exc_type is not None else "COMMIT")


def _members_text(snapshot: Snapshot) -> str:
    """The ``voters`` column: ``1,2,3``, and ``;4,5`` after it when the snapshot has learners
    (a database written before learners existed reads as it did)."""
    text = ",".join(map(str, snapshot.voters))
    return text + (";" + ",".join(map(str, snapshot.learners)) if snapshot.learners else "")


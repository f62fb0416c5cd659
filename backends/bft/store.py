"""A PBFT replica's durable log in SQLite, with the managers' durability rules.

Theory of operation
-------------------
``Ready.log`` (what the replica signed or accepted) and ``Ready.checkpoint`` are written in ONE
transaction, WAL mode, ``synchronous=FULL``, before any message of that ``Ready`` is sent -- the
same discipline and the same opening fsync as ``backends.manager.logstore.SQLiteLogStore`` (whose
helpers this reuses): a restarted replica replays exactly what it said, so it never contradicts
itself. Messages are stored as msgpack of ``novacron.bft.to_wire``; a new stable checkpoint
deletes the logged messages at or below its sequence number in the same transaction.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import msgpack

from backends.manager.logstore import _Transaction, sync_existing_files
from novacron.bft.messages import Signed, from_wire, to_wire
from novacron.bft.replica import Ready, StableCheckpoint, Stored, log_seq

SCHEMA = """
CREATE TABLE IF NOT EXISTS log (id INTEGER PRIMARY KEY AUTOINCREMENT, seq INTEGER, wire BLOB NOT NULL);
CREATE TABLE IF NOT EXISTS checkpoint (id INTEGER PRIMARY KEY CHECK (id = 0), seq INTEGER NOT NULL,
                                       state BLOB NOT NULL, proof BLOB NOT NULL);
"""


def _pack(value: object) -> bytes:
    data: bytes = msgpack.packb(to_wire(value), use_bin_type=True)
    return data


def _unpack(data: bytes) -> object:
    return from_wire(msgpack.unpackb(data, raw=False))


class SQLiteBftStore:
    def __init__(self, path: Path | str) -> None:
        self.path = Path(path)
        sync_existing_files(self.path)
        self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(SCHEMA)
        self.saves = 0

    def close(self) -> None:
        self._db.close()

    def save(self, ready: Ready) -> None:
        if not ready.log and ready.checkpoint is None:
            return
        with _Transaction(self._db):
            self._db.executemany("INSERT INTO log (seq, wire) VALUES (?, ?)",
                                 [(log_seq(m), _pack(m)) for m in ready.log])
            checkpoint = ready.checkpoint
            if checkpoint is not None:
                self._db.execute("INSERT OR REPLACE INTO checkpoint (id, seq, state, proof) VALUES (0, ?, ?, ?)",
                                 (checkpoint.seq, checkpoint.state, _pack(checkpoint.proof)))
                self._db.execute("DELETE FROM log WHERE seq IS NOT NULL AND seq <= ?", (checkpoint.seq,))
        self.saves += 1

    def stored(self) -> Stored:
        row = self._db.execute("SELECT seq, state, proof FROM checkpoint WHERE id = 0").fetchone()
        checkpoint = StableCheckpoint()
        if row is not None:
            proof = _unpack(bytes(row[2]))
            assert isinstance(proof, tuple)
            checkpoint = StableCheckpoint(int(row[0]), bytes(row[1]), proof)
        log = [_unpack(bytes(wire)) for (wire,) in self._db.execute("SELECT wire FROM log ORDER BY id")]
        return Stored(checkpoint, [m for m in log if isinstance(m, Signed)])

"""Stable storage for one node: the reference in-memory implementation of the ``LogStore`` port.

Theory of operation
-------------------
Figure 2 of the Raft paper lists the persistent state: ``currentTerm``, ``votedFor`` and
``log[]``. Here that is a ``HardState`` (term, vote, commit -- commit is persisted too, as in
etcd-io/raft, so a restarted node re-applies committed entries without waiting for a leader), the
latest ``Snapshot`` (section 7) and the entries after it.

``save(ready)`` performs the persistence steps of a ``Ready`` in the order the node requires:
snapshot (which replaces the whole stored log: the node only emits one after discarding its
log for it), then entries (which replace any stored suffix starting at ``entries[0].index``,
the follower's "delete the existing entry and all that follow it"), then the hard state. The sim
keeps a ``MemoryStorage`` per manager outside the node object, so a crash (dropping the node and
its volatile state) followed by ``RaftNode(config, rng, storage.stored())`` is a restart from
disk. A SQLite runtime implements the same three methods with one table for entries
``(idx INTEGER PRIMARY KEY, term INTEGER, kind INTEGER, data BLOB)``, one row for the hard state
and one for the snapshot, each ``save`` in one transaction.
"""

from __future__ import annotations

from novacron.raft.messages import Entry, HardState, Ready, Snapshot
from novacron.raft.node import Stored


class MemoryStorage:
    """Durable state held in memory; survives the node object, as a disk survives a process."""

    def __init__(self, stored: Stored) -> None:
        self.hard_state: HardState = stored.hard_state
        self.snapshot: Snapshot = stored.snapshot
        self.entries: list[Entry] = list(stored.entries)
        self.saves = 0

    def save(self, ready: Ready) -> None:
        if ready.snapshot is not None:
            # The node only hands over a snapshot when it replaced its whole log with it; stored
            # entries beyond the snapshot may come from a deposed leader and must go too (the
            # vopr caught a restarted manager resurrecting them: seed 8299).
            self.snapshot = ready.snapshot
            self.entries = []
        if ready.entries:
            cut = ready.entries[0].index - self.snapshot.index - 1
            if cut < 0:
                raise ValueError(f"entries at {ready.entries[0].index} precede the snapshot at {self.snapshot.index}")
            del self.entries[cut:]
            self.entries.extend(ready.entries)
        if ready.hard_state is not None:
            self.hard_state = ready.hard_state
        self.saves += 1

    def compact(self, snapshot: Snapshot) -> None:
        """Keep a snapshot the runtime took and drop the entries it covers."""
        if snapshot.index <= self.snapshot.index:
            return
        self.entries = [e for e in self.entries if e.index > snapshot.index]
        self.snapshot = snapshot

    def stored(self) -> Stored:
        return Stored(self.hard_state, self.snapshot, list(self.entries))

    def holds(self, index: int, term: int) -> bool:
        """Is entry (``index``, ``term``) on this disk, or covered by its snapshot?"""
        if index <= self.snapshot.index:
            return True
        offset = index - self.snapshot.index - 1
        return offset < len(self.entries) and self.entries[offset].term == term

    def last_index(self) -> int:
        return self.entries[-1].index if self.entries else self.snapshot.index

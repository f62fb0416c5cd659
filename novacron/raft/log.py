"""The replicated log of one node: a snapshot base, entries after it, and three watermarks.

Theory of operation
-------------------
The log is ``snapshot`` (every entry up to ``snapshot.index``, compacted, section 7 of the Raft
paper) followed by ``entries`` with consecutive indexes. Three watermarks move forward only:

- ``committed``: the highest index known to be stored on a quorum (section 5.3/5.4.2);
- ``applied``: the highest index handed to the state machine;
- ``stable``: the highest index the runtime has persisted (via ``Ready.entries``).

``unstable_from`` is the first index the runtime still has to (re)write. A follower that
truncates a conflicting suffix (section 5.3, "delete the existing entry and all that follow it")
lowers it, so the next ``Ready`` tells the runtime to overwrite its stored suffix.

Truncating a committed entry would break State Machine Safety, so ``maybe_append`` raises
``RaftSafetyError`` instead. ``find_conflict_by_term`` implements the accelerated back-off the
paper sketches at the end of section 5.3 in the form etcd-io/raft uses: skip every entry whose
term is larger than the term the other side has at that index.
"""

from __future__ import annotations

from collections.abc import Sequence

from novacron.raft.messages import Entry, Snapshot


class RaftSafetyError(AssertionError):
    """The node was asked to do something that would violate a Raft safety property."""


class RaftLog:
    def __init__(self, snapshot: Snapshot | None = None, entries: Sequence[Entry] = (), committed: int = 0) -> None:
        self.snapshot = snapshot or Snapshot()
        self.entries: list[Entry] = list(entries)
        if self.entries and self.entries[0].index != self.snapshot.index + 1:
            raise ValueError(f"entries start at {self.entries[0].index}, expected {self.snapshot.index + 1}")
        self.committed = max(committed, self.snapshot.index)
        self.applied = self.snapshot.index
        self.stable = self.last_index()
        self.unstable_from = self.stable + 1
        self.pending_snapshot: Snapshot | None = None
        """A snapshot received from the leader that the runtime has not yet persisted."""
        self.truncations = 0
        self.rewritten_from = self.first_index()
        """Lowest index written since a checker last looked (only read by invariant checkers)."""

    # -- reading -------------------------------------------------------------------------------

    def first_index(self) -> int:
        return self.snapshot.index + 1

    def last_index(self) -> int:
        return self.snapshot.index + len(self.entries)

    def last_term(self) -> int:
        return self.entries[-1].term if self.entries else self.snapshot.term

    def term(self, index: int) -> int | None:
        """The term of the entry at ``index``; ``None`` if compacted away or beyond the end."""
        offset = index - self.snapshot.index
        if offset == 0:
            return self.snapshot.term
        if offset < 0 or offset > len(self.entries):
            return None
        return self.entries[offset - 1].term

    def match_term(self, index: int, term: int) -> bool:
        return self.term(index) == term

    def entry(self, index: int) -> Entry:
        return self.entries[index - self.snapshot.index - 1]

    def slice(self, low: int, high: int) -> list[Entry]:
        """Entries with ``low <= index < high`` (``low`` must not be compacted)."""
        base = self.snapshot.index + 1
        return self.entries[low - base:high - base]

    def is_up_to_date(self, last_index: int, last_term: int) -> bool:
        """The election restriction of section 5.4.1: is the candidate's log at least as up to date?"""
        mine = self.last_term()
        return last_term > mine or (last_term == mine and last_index >= self.last_index())

    def find_conflict_by_term(self, index: int, term: int) -> int:
        """The largest index <= ``index`` whose term is <= ``term`` (or the snapshot index)."""
        index = min(index, self.last_index())
        while index > self.snapshot.index:
            entry_term = self.term(index)
            if entry_term is not None and entry_term <= term:
                break
            index -= 1
        return index

    # -- writing -------------------------------------------------------------------------------

    def append(self, entries: Sequence[Entry]) -> int:
        """Append at the end (the leader's own proposals)."""
        if entries:
            if entries[0].index != self.last_index() + 1:
                raise ValueError(f"append at {entries[0].index} after last index {self.last_index()}")
            self.entries.extend(entries)
        return self.last_index()

    def maybe_append(self, prev_index: int, prev_term: int, leader_commit: int,
                     entries: Sequence[Entry]) -> int | None:
        """AppendEntries receiver rules 2-5 (Figure 2); the index of the last new entry, or None."""
        if not self.match_term(prev_index, prev_term):
            return None
        last_new = prev_index + len(entries)
        conflict = self._find_conflict(entries)
        if conflict:
            if conflict <= self.committed:
                raise RaftSafetyError(f"entry {conflict} conflicts with committed entries (commit {self.committed})")
            self._truncate_and_append(entries[conflict - entries[0].index:])
        self.commit_to(min(leader_commit, last_new))
        return last_new

    def _find_conflict(self, entries: Sequence[Entry]) -> int:
        """The first index where ``entries`` disagree with the log (0 if they agree throughout)."""
        for entry in entries:
            if not self.match_term(entry.index, entry.term):
                if entry.index <= self.snapshot.index:
                    continue
                return entry.index
        return 0

    def _truncate_and_append(self, entries: Sequence[Entry]) -> None:
        first = entries[0].index
        if first <= self.last_index():
            del self.entries[first - self.snapshot.index - 1:]
            self.truncations += 1
        self.entries.extend(entries)
        self.unstable_from = min(self.unstable_from, first)
        self.stable = min(self.stable, first - 1)
        self.rewritten_from = min(self.rewritten_from, first)

    def commit_to(self, index: int) -> bool:
        if index > self.committed:
            if index > self.last_index():
                raise RaftSafetyError(f"commit {index} is beyond the last index {self.last_index()}")
            self.committed = index
            return True
        return False

    def restore(self, snapshot: Snapshot) -> None:
        """Replace the whole log by a snapshot received from the leader (InstallSnapshot, section 7)."""
        self.snapshot = snapshot
        self.entries = []
        self.committed = snapshot.index
        self.applied = snapshot.index
        self.stable = snapshot.index
        self.unstable_from = snapshot.index + 1
        self.pending_snapshot = snapshot
        self.rewritten_from = min(self.rewritten_from, snapshot.index + 1)
        self.truncations += 1

    def compact(self, snapshot: Snapshot) -> None:
        """Drop entries up to ``snapshot.index``, which the runtime has applied and saved."""
        if snapshot.index <= self.snapshot.index:
            return
        if snapshot.index > self.applied:
            raise ValueError(f"cannot compact to {snapshot.index}: only {self.applied} is applied")
        del self.entries[:snapshot.index - self.snapshot.index]
        self.snapshot = snapshot

    # -- the Ready cycle -----------------------------------------------------------------------

    def unstable_entries(self) -> list[Entry]:
        if self.unstable_from > self.last_index():
            return []
        return self.slice(max(self.unstable_from, self.first_index()), self.last_index() + 1)

    def stable_to(self, index: int) -> None:
        self.stable = max(self.stable, index)
        self.unstable_from = max(self.unstable_from, index + 1)

    def committed_to_apply(self) -> list[Entry]:
        if self.committed <= self.applied:
            return []
        return self.slice(max(self.applied + 1, self.first_index()), self.committed + 1)

    def applied_to(self, index: int) -> None:
        if index > self.committed:
            raise RaftSafetyError(f"applied {index} beyond commit {self.committed}")
        self.applied = max(self.applied, index)

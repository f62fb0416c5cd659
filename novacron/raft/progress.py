"""What a leader knows about each follower's log: match, next, and how to send to it.

Theory of operation
-------------------
Section 5.3 of the Raft paper keeps ``nextIndex`` and ``matchIndex`` per follower. As in
etcd-io/raft (``tracker/progress.go``), a follower's progress is in one of three states:

- ``PROBE``: the leader does not know where the logs match. It sends one AppendEntries and
  waits (``paused``) for the answer or the next heartbeat response; a rejection moves ``next``
  back -- by whole terms at a time thanks to the hint in the rejection (accelerated log
  backtracking, end of section 5.3).
- ``REPLICATE``: the logs match up to ``match``; the leader streams entries and advances
  ``next`` optimistically. Because the simulated (and real) network may drop messages without
  telling anyone, a follower that acknowledged nothing between two heartbeats while entries are
  outstanding falls back to ``PROBE`` (``acked_since_heartbeat``).
- ``SNAPSHOT``: ``next`` was compacted away, so the leader sent InstallSnapshot (section 7) and
  waits for it to be acknowledged, or for ``snapshot_wait_ticks`` to run out (then probes again).

``recent_active`` feeds CheckQuorum (dissertation section 6.2): a leader that heard from no
quorum during an election timeout steps down.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

PROBE, REPLICATE, SNAPSHOT = "probe", "replicate", "snapshot"


@dataclass(slots=True)
class Progress:
    match: int = 0
    next: int = 1
    state: str = PROBE
    paused: bool = False
    pending_snapshot: int = 0
    snapshot_wait_ticks: int = 0
    recent_active: bool = False
    acked_since_heartbeat: bool = False

    def is_paused(self) -> bool:
        if self.state == PROBE:
            return self.paused
        return self.state == SNAPSHOT

    def maybe_update(self, index: int) -> bool:
        """An acknowledgement up to ``index``; ``False`` if it tells nothing new (stale or duplicate)."""
        updated = index > self.match
        if updated:
            self.match = index
            self.paused = False
            self.acked_since_heartbeat = True
        self.next = max(self.next, index + 1)
        return updated

    def maybe_decrease_to(self, rejected: int, match_hint: int) -> bool:
        """A rejection of the append whose previous index was ``rejected``; ``False`` if stale."""
        if self.state == REPLICATE:
            if rejected <= self.match:
                return False
            self.next = self.match + 1
            return True
        if self.next - 1 != rejected:
            return False
        self.next = max(min(rejected, match_hint + 1), self.match + 1, 1)
        self.paused = False
        return True

    def become_probe(self) -> None:
        if self.state == SNAPSHOT:
            self.next = max(self.match + 1, self.pending_snapshot + 1)
        else:
            self.next = self.match + 1
        self.state = PROBE
        self.paused = False
        self.pending_snapshot = 0

    def become_replicate(self) -> None:
        self.state = REPLICATE
        self.next = self.match + 1
        self.pending_snapshot = 0

    def become_snapshot(self, index: int) -> None:
        self.state = SNAPSHOT
        self.pending_snapshot = index
        self.snapshot_wait_ticks = 0


def quorum_size(voter_count: int) -> int:
    return voter_count // 2 + 1


def quorum_index(matches: Iterable[int]) -> int:
    """The largest index stored on a majority of the given match indexes (0 if there are none)."""
    ordered = sorted(matches, reverse=True)
    if not ordered:
        return 0
    return ordered[quorum_size(len(ordered)) - 1]

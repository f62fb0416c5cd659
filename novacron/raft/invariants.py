"""Raft's safety properties (Figure 3 of the paper), checked incrementally after every step.

Theory of operation
-------------------
Figure 3 of the Raft paper lists five properties that hold at all times:

- Election Safety: at most one leader per term. ``leaders_by_term`` remembers the first leader
  seen for each term.
- Leader Append-Only: a leader never overwrites or deletes its entries. While a node leads in
  a term its log may only grow: no truncation, and its last entry keeps its term.
- Log Matching: if two logs hold an entry with the same index and term, the logs are identical
  up to it. By induction it suffices that every ``(index, term)`` pair, wherever it appears,
  carries the same command and follows an entry of the same term, so the checker keeps one
  record per pair and compares every newly written entry with it (``RaftLog.rewritten_from``
  tells which entries a step wrote).
- Leader Completeness: an entry committed in term T is in the log of every leader of a term
  above T. A node that sees an entry committed registers it with its own current term (an
  upper bound of T); a node that becomes leader of term L must hold every registered entry
  whose bound is below L.
- State Machine Safety: no two servers apply different entries at one index. Every node's newly
  committed entries, and every applied entry, are compared with the first one seen per index.

Each check only looks at what changed since the node was last checked, so checking after every
step costs about as much as the step itself. A violation raises ``SafetyViolation``.
"""

from __future__ import annotations

from dataclasses import dataclass

from novacron.raft.messages import Entry
from novacron.raft.node import LEADER, RaftNode


class SafetyViolation(AssertionError):
    def __init__(self, prop: str, detail: str) -> None:
        super().__init__(f"{prop}: {detail}")
        self.prop = prop
        self.detail = detail


@dataclass(slots=True)
class _NodeWatermarks:
    checked_last: int = 0
    checked_commit: int = 0
    leader_term: int = 0
    leader_truncations: int = 0
    leader_last_index: int = 0
    leader_last_term: int = 0


class SafetyChecker:
    def __init__(self) -> None:
        self.leaders_by_term: dict[int, int] = {}
        self.entries_seen: dict[tuple[int, int], tuple[int, int, bytes]] = {}
        self.committed: dict[int, Entry] = {}
        self.commit_term: dict[int, int] = {}
        self.applied: dict[int, Entry] = {}
        self._nodes: dict[int, _NodeWatermarks] = {}
        self.checks = 0

    def forget_node(self, node_id: int) -> None:
        """A node restarted: its volatile watermarks start over (its persisted log is re-checked)."""
        self._nodes.pop(node_id, None)

    def check(self, node: RaftNode) -> None:
        self.checks += 1
        marks = self._nodes.get(node.id)
        if marks is None:
            marks = self._nodes[node.id] = _NodeWatermarks()
            node.log.rewritten_from = node.log.first_index()
        if node.role == LEADER:
            self._check_leader(node, marks)
        elif marks.leader_term:
            marks.leader_term = 0
        self._check_new_entries(node, marks)
        if node.log.committed != marks.checked_commit:
            self._check_commits(node, marks)

    def _check_leader(self, node: RaftNode, marks: _NodeWatermarks) -> None:
        log = node.log
        if marks.leader_term != node.term:
            first = self.leaders_by_term.setdefault(node.term, node.id)
            if first != node.id:
                raise SafetyViolation("Election Safety", f"nodes {first} and {node.id} both lead term {node.term}")
            self._check_completeness(node)
            marks.leader_term = node.term
        elif (log.truncations != marks.leader_truncations or log.last_index() < marks.leader_last_index
              or log.term(marks.leader_last_index) not in (marks.leader_last_term, None)):
            raise SafetyViolation("Leader Append-Only", f"leader {node.id} of term {node.term} rewrote its log "
                                  f"(last index {marks.leader_last_index} -> {log.last_index()})")
        marks.leader_truncations = log.truncations
        marks.leader_last_index = log.last_index()
        marks.leader_last_term = log.last_term()

    def _check_completeness(self, node: RaftNode) -> None:
        log = node.log
        for index, entry in self.committed.items():
            if self.commit_term[index] >= node.term or index <= log.snapshot.index:
                continue
            if log.term(index) != entry.term:
                raise SafetyViolation("Leader Completeness", f"leader {node.id} of term {node.term} lacks entry "
                                      f"{index} (term {entry.term}) committed in term {self.commit_term[index]}")

    def _check_new_entries(self, node: RaftNode, marks: _NodeWatermarks) -> None:
        log = node.log
        start = max(min(log.rewritten_from, marks.checked_last + 1), log.first_index())
        last = log.last_index()
        if start <= last:
            prev_term = log.term(start - 1)
            for entry in log.slice(start, last + 1):
                record = (prev_term or 0, entry.kind, entry.data)
                known = self.entries_seen.setdefault((entry.index, entry.term), record)
                if known != record:
                    raise SafetyViolation("Log Matching", f"node {node.id} holds entry {entry.index} of term "
                                          f"{entry.term} that differs from another log's (prev term or data)")
                prev_term = entry.term
        log.rewritten_from = last + 1
        marks.checked_last = last

    def _check_commits(self, node: RaftNode, marks: _NodeWatermarks) -> None:
        log = node.log
        if log.committed < marks.checked_commit:
            raise SafetyViolation("State Machine Safety", f"node {node.id} commit index went back "
                                  f"from {marks.checked_commit} to {log.committed}")
        start = max(marks.checked_commit + 1, log.first_index())
        for entry in log.slice(start, log.committed + 1):
            known = self.committed.setdefault(entry.index, entry)
            if known != entry:
                raise SafetyViolation("State Machine Safety", f"node {node.id} committed {entry.index} "
                                      f"(term {entry.term}) but term {known.term} was committed there before")
            # The entry was committed by a leader of this node's term or earlier: an upper bound
            # that never flags a stale leader elected before the commit.
            self.commit_term.setdefault(entry.index, node.term)
        marks.checked_commit = log.committed

    def check_applied(self, node_id: int, entry: Entry) -> None:
        known = self.applied.setdefault(entry.index, entry)
        if known != entry:
            raise SafetyViolation("State Machine Safety", f"node {node_id} applied entry {entry.index} of term "
                                  f"{entry.term}; another node applied term {known.term} there")

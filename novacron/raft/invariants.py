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
- Leader Completeness, exactly: an entry committed in term T is in the log of every leader of
  a term above T. The leader that commits an entry is checked in the step that commits it, so
  the first node seen committing it is that leader and its term is T (not a bound); T is the
  term of the leader's commit point, which section 5.4.2 makes the leader's own term (a leader
  that counts replicas of an older entry commits it as of that older term). The check
  runs both ways: a node that becomes leader of term L must hold every entry committed in a
  term below L, and an entry committed in term T is looked up in the log that every leader of
  a term above T held when it was elected (kept per election), which catches the leader
  elected *before* the lower-term commit became visible.
- State Machine Safety: no two servers apply different entries at one index. Every node's newly
  committed entries, and every applied entry, are compared with the first one seen per index;
  so are the state machine's contents after each applied index and every snapshot (taken or
  installed) with the contents at its index. Each node applies without gaps: the next index
  after the last applied one, or after the snapshot it restarted from or installed.

And one rule the paper states outright (section 5.2) and Election Safety rests on: each server
votes for at most one candidate in a term, also across restarts (``check_votes``; what a node
voted for must be on disk before anyone hears of it).

Three more are about who counts, and matter once a configuration has learners (non-voting
members, ``RaftNode.learners``), where a node that counts the wrong members still looks healthy:

- Learners Never Campaign: a node that its own latest configuration makes a learner is a
  follower -- never a pre-candidate, candidate or leader.
- Election Quorum (with ``check_votes``, whose record of votes it reads): a node that becomes
  leader of term T was voted for in T by a majority of the voters of the configuration it won
  in. Votes of learners, or of nodes outside that configuration, count for nothing.
- Commit Quorum (when the runtime passes ``holds``, a view of every node's durable log): when a
  leader's commit index advances, the entry at it is on the disks of a majority of the voters of
  the leader's configuration -- what the leader counted (section 5.3), checked against what the
  disks hold. Log Matching extends that to everything before it.

Each check only looks at what changed since the node was last checked, so checking after every
step costs about as much as the step itself. A violation raises ``SafetyViolation``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from novacron.raft.messages import NO_NODE, Entry
from novacron.raft.node import FOLLOWER, LEADER, RaftNode
from novacron.raft.progress import quorum_size

DurableHolds = Callable[[int, int, int], bool]
"""``holds(node_id, index, term)``: does that node's durable log hold the entry (index, term),
or a snapshot covering ``index``?"""


class SafetyViolation(AssertionError):
    def __init__(self, prop: str, detail: str) -> None:
        super().__init__(f"{prop}: {detail}")
        self.prop = prop
        self.detail = detail


@dataclass(frozen=True, slots=True)
class _ElectionLog:
    """The terms of a leader's log when it was elected (for the exact Leader Completeness check)."""

    leader: int
    snapshot_index: int
    snapshot_term: int
    terms: tuple[int, ...]
    """``terms[i]`` is the term of entry ``snapshot_index + 1 + i``."""

    def term(self, index: int) -> int | None:
        if index == self.snapshot_index:
            return self.snapshot_term
        offset = index - self.snapshot_index - 1
        return self.terms[offset] if 0 <= offset < len(self.terms) else None


@dataclass(slots=True)
class _NodeWatermarks:
    checked_last: int = 0
    checked_commit: int = 0
    leader_term: int = 0
    leader_truncations: int = 0
    leader_last_index: int = 0
    leader_last_term: int = 0
    snapshot_index: int = -1


class SafetyChecker:
    def __init__(self, *, check_gaps: bool = False, check_votes: bool = False,
                 holds: DurableHolds | None = None) -> None:
        """``check_gaps`` needs a runtime that reports crashes (``forget_node`` when a node goes
        down) and snapshot installs (``installed_snapshot``) and passes ``base_index``;
        ``check_votes`` one that persists a node's Ready before the node is checked (else a vote
        lost with an unsaved Ready in a crash looks like a second vote); ``holds`` (Commit
        Quorum) one that persists a Ready before the node is checked and can see every disk."""
        self.check_gaps = check_gaps
        self.check_votes = check_votes
        self.holds = holds
        self.votes: dict[tuple[int, int], int] = {}
        """(node, term) -> the candidate it voted for, when ``check_votes``."""
        self.leaders_by_term: dict[int, int] = {}
        self.entries_seen: dict[tuple[int, int], tuple[int, int, bytes]] = {}
        self.committed: dict[int, Entry] = {}
        self.commit_term: dict[int, int] = {}
        self.applied: dict[int, Entry] = {}
        self.states: dict[int, bytes] = {}
        """The state machine's contents right after applying each index (the first node's)."""
        self.applied_upto: dict[int, int] = {}
        self.elections: dict[int, _ElectionLog] = {}
        self._last_election_term = 0
        self._nodes: dict[int, _NodeWatermarks] = {}
        self.checks = 0

    def forget_node(self, node_id: int) -> None:
        """A node crashed or restarted: its volatile watermarks start over (its persisted log is
        re-checked) and it applies again from its persisted snapshot."""
        self._nodes.pop(node_id, None)
        self.applied_upto.pop(node_id, None)

    def check(self, node: RaftNode) -> None:
        self.checks += 1
        marks = self._nodes.get(node.id)
        if marks is None:
            marks = self._nodes[node.id] = _NodeWatermarks()
            node.log.rewritten_from = node.log.first_index()
        if self.check_votes and node.vote != NO_NODE:
            first = self.votes.setdefault((node.id, node.term), node.vote)
            if first != node.vote:
                raise SafetyViolation("One Vote per Term", f"node {node.id} voted for {first} and then for "
                                      f"{node.vote} in term {node.term}")
        if node.role != FOLLOWER and node.id in node.learners:
            raise SafetyViolation("Learners Never Campaign", f"node {node.id} is a learner of its configuration "
                                  f"(voters {list(node.voters)}) and {node.role} in term {node.term}")
        if node.role == LEADER:
            self._check_leader(node, marks)
        elif marks.leader_term:
            marks.leader_term = 0
        self._check_new_entries(node, marks)
        if node.log.committed != marks.checked_commit:
            if node.role == LEADER and self.holds is not None:
                self._check_commit_quorum(node, self.holds)
            self._check_commits(node, marks)
        if node.log.snapshot.index != marks.snapshot_index:
            self._check_snapshot(node)
            marks.snapshot_index = node.log.snapshot.index

    def _check_leader(self, node: RaftNode, marks: _NodeWatermarks) -> None:
        log = node.log
        if marks.leader_term != node.term:
            first = self.leaders_by_term.setdefault(node.term, node.id)
            if first != node.id:
                raise SafetyViolation("Election Safety", f"nodes {first} and {node.id} both lead term {node.term}")
            if self.check_votes:
                self._check_election_quorum(node)
            self._check_completeness(node)
            self._record_election(node)
            marks.leader_term = node.term
        elif (log.truncations != marks.leader_truncations or log.last_index() < marks.leader_last_index
              or log.term(marks.leader_last_index) not in (marks.leader_last_term, None)):
            raise SafetyViolation("Leader Append-Only", f"leader {node.id} of term {node.term} rewrote its log "
                                  f"(last index {marks.leader_last_index} -> {log.last_index()})")
        marks.leader_truncations = log.truncations
        marks.leader_last_index = log.last_index()
        marks.leader_last_term = log.last_term()

    def _check_election_quorum(self, node: RaftNode) -> None:
        """The new leader's votes of its term, recorded as each voter persisted them, from a
        majority of the voters of its configuration (a learner's vote, or its own when it is not
        a voter, counts for nothing)."""
        granted = [v for v in node.voters if self.votes.get((v, node.term)) == node.id]
        if len(granted) < quorum_size(len(node.voters)):
            raise SafetyViolation("Election Quorum", f"node {node.id} leads term {node.term} with votes of "
                                  f"voters {granted} only, of voters {list(node.voters)}")

    @staticmethod
    def _check_commit_quorum(node: RaftNode, holds: DurableHolds) -> None:
        """The leader's new commit point is on the disks of a majority of its configuration's voters."""
        index = node.log.committed
        term = node.log.term(index)
        if term is None:
            return
        holding = [v for v in node.voters if holds(v, index, term)]
        if len(holding) < quorum_size(len(node.voters)):
            raise SafetyViolation("Commit Quorum", f"leader {node.id} of term {node.term} committed {index} "
                                  f"(term {term}) held by voters {holding} only, of voters {list(node.voters)}")

    def _check_completeness(self, node: RaftNode) -> None:
        log = node.log
        for index, entry in self.committed.items():
            if self.commit_term[index] >= node.term or index <= log.snapshot.index:
                continue
            if log.term(index) != entry.term:
                raise SafetyViolation("Leader Completeness", f"leader {node.id} of term {node.term} lacks entry "
                                      f"{index} (term {entry.term}) committed in term {self.commit_term[index]}")

    def _record_election(self, node: RaftNode) -> None:
        log = node.log
        terms = tuple(entry.term for entry in log.slice(log.first_index(), log.last_index() + 1))
        self.elections[node.term] = _ElectionLog(node.id, log.snapshot.index, log.snapshot.term, terms)
        self._last_election_term = max(self._last_election_term, node.term)

    def _check_earlier_elections(self, entry: Entry, commit_term: int) -> None:
        """An entry committed in ``commit_term`` must be in every later-term leader's log."""
        if commit_term >= self._last_election_term:
            return
        for term, election in self.elections.items():
            if term <= commit_term or entry.index < election.snapshot_index:
                continue
            if election.term(entry.index) != entry.term:
                raise SafetyViolation("Leader Completeness", f"leader {election.leader} of term {term} was elected "
                                      f"without entry {entry.index} (term {entry.term}), committed in term "
                                      f"{commit_term}")

    def _check_snapshot(self, node: RaftNode) -> None:
        snapshot = node.log.snapshot
        if snapshot.index == 0:
            return
        entry = self.committed.get(snapshot.index)
        if entry is not None and entry.term != snapshot.term:
            raise SafetyViolation("State Machine Safety", f"node {node.id} holds a snapshot at {snapshot.index} of "
                                  f"term {snapshot.term}; term {entry.term} was committed there")
        state = self.states.get(snapshot.index)
        if state is not None and state != snapshot.data:
            raise SafetyViolation("State Machine Safety", f"node {node.id}'s snapshot at {snapshot.index} differs "
                                  "from the state machine other nodes had after applying that index")

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
        commit_term = self._commit_term(node)
        for entry in log.slice(start, log.committed + 1):
            known = self.committed.setdefault(entry.index, entry)
            if known != entry:
                raise SafetyViolation("State Machine Safety", f"node {node.id} committed {entry.index} "
                                      f"(term {entry.term}) but term {known.term} was committed there before")
            if entry.index not in self.commit_term:
                self.commit_term[entry.index] = commit_term
                self._check_earlier_elections(entry, commit_term)
        marks.checked_commit = log.committed

    @staticmethod
    def _commit_term(node: RaftNode) -> int:
        """The term in which ``node``'s newly committed entries count as committed.

        The first node seen with an entry committed is the leader that committed it (it is
        checked in the very step that commits). Its commit point -- the entry at its commit
        index, the one a majority was counted for -- has the leader's own term under section
        5.4.2's rule, so this is the leader's term, exactly. A leader that counted replicas of an
        older-term entry committed as of that older term: a leader of any later term must hold
        the entry, and one elected in between without it (Figure 8's S5) is caught at once
        instead of only when it is elected again.
        """
        if node.role != LEADER:
            return node.term
        point_term = node.log.term(node.log.committed)
        return node.term if point_term is None else min(node.term, point_term)

    def check_applied(self, node_id: int, entry: Entry, state: bytes | None = None, base_index: int = 0) -> None:
        """``entry`` was applied, leaving the state machine's contents ``state``; ``base_index``
        is the snapshot the node's state machine started from if it has not applied since."""
        known = self.applied.setdefault(entry.index, entry)
        if known != entry:
            raise SafetyViolation("State Machine Safety", f"node {node_id} applied entry {entry.index} of term "
                                  f"{entry.term}; another node applied term {known.term} there")
        previous = self.applied_upto.get(node_id, base_index)
        if self.check_gaps and entry.index != previous + 1:
            raise SafetyViolation("State Machine Safety", f"node {node_id} applied entry {entry.index} right "
                                  f"after {previous} (the applied sequence has a gap or goes back)")
        self.applied_upto[node_id] = entry.index
        if state is not None:
            first = self.states.setdefault(entry.index, state)
            if first != state:
                raise SafetyViolation("State Machine Safety", f"node {node_id}'s state machine after applying "
                                      f"{entry.index} differs from another node's at that index")

    def installed_snapshot(self, node_id: int, index: int) -> None:
        """A node's state machine was replaced by a snapshot at ``index``; it applies on from there."""
        previous = self.applied_upto.get(node_id, 0)
        if index < previous:
            raise SafetyViolation("State Machine Safety", f"node {node_id} installed a snapshot at {index} after "
                                  f"applying up to {previous}")
        self.applied_upto[node_id] = index

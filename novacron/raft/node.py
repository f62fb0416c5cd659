"""The Raft node: an I/O-free state machine driven by ``tick``, ``step``, ``ready`` and ``advance``.

Theory of operation
-------------------
Follows Ongaro & Ousterhout, "In Search of an Understandable Consensus Algorithm" (2014), and
Ongaro's dissertation "Consensus: Bridging Theory and Practice" (2014), in the shape of
etcd-io/raft's ``raft.go``/``rawnode.go``:

- Time is ticks. Followers and candidates count ``election_elapsed`` up to a timeout drawn
  uniformly from ``[election_ticks_min, election_ticks_max]`` with the injected ``random.Random``
  (section 5.2: randomized timeouts make split votes rare); leaders send a heartbeat every
  ``heartbeat_ticks``.
- Elections (section 5.2) start with a PreVote round (dissertation 9.6): a node asks "would you
  vote for me at term+1?" without bumping its term, so a node that was partitioned away cannot
  depose a healthy leader when it comes back. With CheckQuorum (dissertation 6.2) a leader
  that has not heard from a quorum within the longest election timeout steps down, and a
  follower that heard from its leader within the shortest election timeout -- or a leader --
  ignores (pre-)vote requests (the "lease", dissertation 4.2.3), so servers removed from the
  configuration cannot disrupt.
- The election timer restarts only when a node grants a vote or hears from its leader, not when
  it merely adopts a higher term (section 5.2, ``_adopt_term``); a vote request of an older term
  is rejected with the current term, so a candidate whose term lags catches up. A rejection
  carries the voter's last log position; a candidate that a majority rejected as behind waits
  an extra election timeout before its next campaign (``_found_behind``), as a failed PreVote
  round would make it wait: it cannot win, and without PreVote each try spends its vote.
- Votes obey the election restriction (section 5.4.1, ``RaftLog.is_up_to_date``). Commitment
  follows section 5.4.2: the leader only advances ``commit`` to an index stored on a majority
  *whose entry has the leader's own term*; a new leader appends an empty entry to get there
  quickly (section 8).
- Log replication (section 5.3) uses ``Progress`` per follower; rejections carry a hint so the
  leader backs off by a term at a time.
- Membership changes add or remove one voter at a time (dissertation 4.1); a configuration takes
  effect as soon as its entry is in the log, one change may be uncommitted at a time, and a
  leader must first commit an entry of its own term (the fix to the single-server change bug
  Ongaro posted to raft-dev in 2015). A node its latest configuration removed still campaigns
  until it knows the removal committed, without counting its own vote (dissertation 4.2.2,
  ``promotable``); a leader outside its configuration neither counts itself nor answers reads
  without a heartbeat round.
- Learners (non-voting members, as etcd's raft has them; dissertation 4.2.1's new servers that
  catch up before they vote) receive every entry and heartbeat, are tracked in ``progress``,
  never campaign, never count towards a commit, an election, CheckQuorum or a ReadIndex round,
  and cannot be a transfer target. They change no quorum, so any number may join or leave (one
  pending change at a time, as for voters); ``add`` promotes a learner to a voter. A group of
  many members keeps its majority small: a federation of 20 clusters with 5 voters commits on 3.
- Leadership transfer (dissertation 3.10): the leader brings the target up to date and sends
  TimeoutNow; the target campaigns at once, bypassing PreVote and the lease.
- Linearizable reads (ReadIndex, dissertation 6.4): the leader records its commit index, then
  confirms it is still leader with a heartbeat round carrying the read's context.

Between ``ready()`` and ``advance()`` the runtime must not call ``tick`` or ``step``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from random import Random

from novacron.raft.log import RaftLog
from novacron.raft.messages import (
    NO_NODE,
    ConfChange,
    Entry,
    EntryKind,
    HardState,
    Message,
    MessageType,
    ReadState,
    Ready,
    Snapshot,
    SoftState,
)
from novacron.raft.progress import REPLICATE, SNAPSHOT, Progress, quorum_index, quorum_size

FOLLOWER, PRE_CANDIDATE, CANDIDATE, LEADER = "follower", "pre-candidate", "candidate", "leader"
TRANSFER_CONTEXT = b"transfer"
MAX_VOTERS = 7
"""The most voters a configuration change may leave (a group may be bootstrapped with more)."""


class T:
    """The ``MessageType`` members (the same objects) as attributes of a plain class: on Python
    3.11 reading a member through its enum class costs ~20x a plain class attribute, and a node
    reads several for every message it steps."""

    PRE_VOTE = MessageType.PRE_VOTE
    PRE_VOTE_RESP = MessageType.PRE_VOTE_RESP
    VOTE = MessageType.VOTE
    VOTE_RESP = MessageType.VOTE_RESP
    APPEND = MessageType.APPEND
    APPEND_RESP = MessageType.APPEND_RESP
    HEARTBEAT = MessageType.HEARTBEAT
    HEARTBEAT_RESP = MessageType.HEARTBEAT_RESP
    SNAPSHOT = MessageType.SNAPSHOT
    TIMEOUT_NOW = MessageType.TIMEOUT_NOW


CONF_CHANGE_KIND = EntryKind.CONF_CHANGE
"""``EntryKind.CONF_CHANGE``, read once: the follower checks every entry it receives against it."""

SENT_BEFORE_DURABLE_TYPES = frozenset({MessageType.APPEND, MessageType.HEARTBEAT})


def sent_before_durable(ready: Ready, role: str, term: int, changes_term_or_vote: bool) -> bool:
    """May this Ready's messages leave while its own save is still being made durable? Only a
    leader's appends and heartbeats of its current term, in a Ready with no snapshot and no new
    term or vote (Raft dissertation section 10.2.1): the leader's log counts towards a majority
    only through the acknowledgements it steps, and a runtime steps none before the save has
    returned, so nothing is committed, applied or acknowledged before it is durable on the leader
    and on enough followers. Votes, acknowledgements and a new term still wait for the disk.
    Both runtimes use it (the real managers, and the simulated cluster's ``persist_s``)."""
    return (role == LEADER and ready.snapshot is None and not changes_term_or_vote
            and all(m.type in SENT_BEFORE_DURABLE_TYPES and m.term == term for m in ready.messages))


@dataclass(frozen=True, slots=True)
class RaftConfig:
    node_id: int
    election_ticks_min: int = 15
    election_ticks_max: int = 30
    heartbeat_ticks: int = 5
    pre_vote: bool = True
    check_quorum: bool = True
    max_entries_per_message: int = 64
    commit_broadcast: bool = True
    """When the leader's commit index moves, send every follower an append carrying it (etcd's
    raft does): followers apply at once. False: they learn it from the next append or heartbeat
    (the paper's Figure 2: leaderCommit travels in later AppendEntries), which saves an append and
    its answer per follower per commit -- half the messages per command with one in flight -- and
    delays only the followers' apply, never the leader's commit. Safety does not depend on it."""

    def __post_init__(self) -> None:
        if self.node_id <= NO_NODE:
            raise ValueError(f"node_id must be >= 1, got {self.node_id}")
        error = timing_error(self.heartbeat_ticks, self.election_ticks_min, self.election_ticks_max)
        if error is not None:
            raise ValueError(error)


def timing_error(heartbeat_ticks: int, election_ticks_min: int, election_ticks_max: int) -> str | None:
    """Why these timeouts cannot work, or None: heartbeats must come well inside the shortest
    election timeout, or followers campaign against a healthy leader (section 5.2)."""
    if 0 < heartbeat_ticks < election_ticks_min <= election_ticks_max:
        return None
    return ("need 0 < heartbeat_ticks < election_ticks_min <= election_ticks_max, got "
            f"{heartbeat_ticks}, {election_ticks_min}, {election_ticks_max}")


@dataclass(slots=True)
class Stored:
    """Everything a node persists; what a runtime hands back to ``RaftNode`` after a restart."""

    hard_state: HardState = field(default_factory=HardState)
    snapshot: Snapshot = field(default_factory=Snapshot)
    entries: list[Entry] = field(default_factory=list)

    @classmethod
    def bootstrap(cls, voters: tuple[int, ...], learners: tuple[int, ...] = ()) -> Stored:
        """The state of a brand-new cluster member: the initial configuration as snapshot 0."""
        if set(voters) & set(learners):
            raise ValueError(f"a member is a voter or a learner, not both: {sorted(set(voters) & set(learners))}")
        return cls(snapshot=Snapshot(index=0, term=0, voters=tuple(sorted(voters)), learners=tuple(sorted(learners))))


class RaftNode:
    def __init__(self, config: RaftConfig, rng: Random, stored: Stored) -> None:
        self.config = config
        self.id = config.node_id
        self._rng = rng
        self.log = RaftLog(stored.snapshot, stored.entries, stored.hard_state.commit)
        self.term = stored.hard_state.term
        self.vote = stored.hard_state.vote
        self.role = FOLLOWER
        self.leader = NO_NODE
        self.voters: tuple[int, ...] = ()
        self.learners: tuple[int, ...] = ()
        self.progress: dict[int, Progress] = {}
        self.votes: dict[int, bool] = {}
        self.ahead_voters: set[int] = set()
        """Voters that rejected this node's current candidacy with a log ahead of its own."""
        self.election_elapsed = 0
        self.heartbeat_elapsed = 0
        self.randomized_timeout = 0
        self.transfer_target = NO_NODE
        self.pending_conf_index = 0
        self.pending_reads: dict[bytes, tuple[int, set[int]]] = {}
        self.queued_reads: list[bytes] = []
        self.messages_stepped = 0
        self._msgs: list[Message] = []
        self._read_states: list[ReadState] = []
        self._truncations_seen = self.log.truncations
        self._prev_hard = stored.hard_state
        self._prev_soft = SoftState(NO_NODE, FOLLOWER)
        self._refresh_voters()
        self._reset_randomized_timeout()

    # -- inputs ------------------------------------------------------------------------------

    def tick(self) -> None:
        if self.role == LEADER:
            self._tick_leader()
            return
        self.election_elapsed += 1
        if self.election_elapsed >= self.randomized_timeout and self.promotable():
            self.election_elapsed = 0
            self.campaign(transfer=False)

    def campaign(self, *, transfer: bool = False) -> None:
        """Start an election now (also the ``hup`` a runtime may use to speed up bootstrap)."""
        if self.role == LEADER or not self.promotable():
            return
        if self.config.pre_vote and not transfer:
            self._start_election(pre_vote=True, context=b"")
        else:
            self._start_election(pre_vote=False, context=TRANSFER_CONTEXT if transfer else b"")

    def _start_election(self, *, pre_vote: bool, context: bytes) -> None:
        if pre_vote:
            self._become_pre_candidate()
            vote_type, vote_term = T.PRE_VOTE, self.term + 1
        else:
            self._become_candidate()
            vote_type, vote_term = T.VOTE, self.term
        self.votes = {self.id: True}
        if self._poll() == "won":
            self._election_won()
            return
        for peer in self.voters:
            if peer != self.id:
                self._send(Message(vote_type, self.id, peer, vote_term, index=self.log.last_index(),
                                   log_term=self.log.last_term(), context=context))

    def propose(self, data: bytes, kind: int = EntryKind.NORMAL) -> tuple[int, int] | None:
        """Append a command if this node leads; returns (index, term), or None if it cannot."""
        if self.role != LEADER or self.transfer_target != NO_NODE:
            return None
        if kind == EntryKind.CONF_CHANGE:
            change = ConfChange.decode(data).resolved(self.voters, self.learners)
            if not self._conf_change_allowed(change):
                return None
            data = change.encode()
        index = self.log.last_index() + 1
        self._append_own(Entry(index, self.term, kind, data))
        if kind == EntryKind.CONF_CHANGE:
            self.pending_conf_index = index
        self._broadcast_append()
        return index, self.term

    def propose_conf_change(self, change: ConfChange) -> tuple[int, int] | None:
        return self.propose(change.encode(), EntryKind.CONF_CHANGE)

    def read_index(self, context: bytes) -> bool:
        """Ask for a linearizable read point; a ``ReadState`` with ``context`` follows in a Ready."""
        if self.role != LEADER or not context:
            return False
        if not self._committed_in_current_term():
            self.queued_reads.append(context)
        else:
            self._start_read(context)
        return True

    def transfer_leadership(self, target: int) -> bool:
        if self.role != LEADER or target == self.id or target not in self.voters:
            return False
        self.transfer_target = target
        self.election_elapsed = 0
        if self.progress[target].match == self.log.last_index():
            self._send(Message(T.TIMEOUT_NOW, self.id, target, self.term))
        else:
            self._send_append(target)
        return True

    def compact(self, index: int, data: bytes) -> Snapshot:
        """The runtime saved the state machine at applied ``index``: drop the log up to it."""
        term = self.log.term(index)
        if term is None:
            raise ValueError(f"cannot compact at {index}: outside the log")
        voters, learners = self._config_at(index)
        snapshot = Snapshot(index, term, voters, data, learners)
        self.log.compact(snapshot)
        return snapshot

    # -- the Ready cycle ---------------------------------------------------------------------

    def has_ready(self) -> bool:
        hard, soft, log = self._prev_hard, self._prev_soft, self.log
        return bool(self._msgs or self._read_states or log.pending_snapshot is not None
                    or log.unstable_from <= log.last_index() or log.committed > log.applied
                    or self.term != hard.term or self.vote != hard.vote or log.committed != hard.commit
                    or self.leader != soft.leader or self.role != soft.role)

    def ready(self) -> Ready:
        hard, soft, log = self._prev_hard, self._prev_soft, self.log
        # Built only if a field moved (a Ready is made for nearly every message), then compared
        # as before: ``_hard_state`` may be overridden (``sim.raft.planted_bugs``).
        hard_state = soft_state = None
        if (self.term, self.vote, log.committed) != (hard.term, hard.vote, hard.commit):
            hard_state = self._hard_state()
            hard_state = hard_state if hard_state != hard else None
        if (self.leader, self.role) != (soft.leader, soft.role):
            soft_state = self._soft_state()
        ready = Ready(hard_state=hard_state, entries=log.unstable_entries(), snapshot=log.pending_snapshot,
                      messages=self._msgs, committed_entries=log.committed_to_apply(),
                      read_states=self._read_states, soft_state=soft_state)
        self._msgs, self._read_states = [], []
        return ready

    def advance(self, ready: Ready) -> None:
        if ready.hard_state is not None:
            self._prev_hard = ready.hard_state
        if ready.soft_state is not None:
            self._prev_soft = ready.soft_state
        if ready.snapshot is not None and self.log.pending_snapshot is ready.snapshot:
            self.log.pending_snapshot = None
        if ready.entries:
            self.log.stable_to(ready.entries[-1].index)
        if ready.committed_entries:
            self.log.applied_to(ready.committed_entries[-1].index)

    def _hard_state(self) -> HardState:
        return HardState(self.term, self.vote, self.log.committed)

    def _soft_state(self) -> SoftState:
        return SoftState(self.leader, self.role)

    # -- step ----------------------------------------------------------------------------------

    def step(self, m: Message) -> None:
        self.messages_stepped += 1
        if m.term > self.term:
            if m.type in (T.VOTE, T.PRE_VOTE) and m.context != TRANSFER_CONTEXT and self._in_lease():
                return
            if not (m.type == T.PRE_VOTE or (m.type == T.PRE_VOTE_RESP and not m.reject)):
                if m.type in (T.APPEND, T.HEARTBEAT, T.SNAPSHOT):
                    self._become_follower(m.term, m.src)
                else:
                    self._adopt_term(m.term)
        elif m.term < self.term:
            if m.type in (T.APPEND, T.HEARTBEAT) and (self.config.check_quorum or self.config.pre_vote):
                self._send(Message(T.APPEND_RESP, self.id, m.src, self.term))
            elif m.type in (T.VOTE, T.PRE_VOTE):
                # Reject with our term so a candidate whose term lags catches up. Dropping old-term
                # votes (as the paper allows) left a node stuck below the term of a peer that
                # campaigned in an out-of-date configuration and never wrote to it (issue 13).
                resp_type = T.VOTE_RESP if m.type == T.VOTE else T.PRE_VOTE_RESP
                self._send(Message(resp_type, self.id, m.src, self.term, reject=True))
            return
        if m.type in (T.VOTE, T.PRE_VOTE):
            self._handle_vote_request(m)
        elif self.role == LEADER:
            self._step_leader(m)
        elif self.role == FOLLOWER:
            self._step_follower(m)
        else:
            self._step_candidate(m)

    def _in_lease(self) -> bool:
        # A leader under CheckQuorum holds the lease for as long as it leads (it steps down by
        # itself once it loses its quorum); otherwise a server removed from the configuration,
        # which never learns it was removed, deposes the leader with every term it starts
        # (dissertation 4.2.3) -- the vopr found exactly that.
        if not self.config.check_quorum or self.leader == NO_NODE:
            return False
        return self.role == LEADER or self.election_elapsed < self.config.election_ticks_min

    def _handle_vote_request(self, m: Message) -> None:
        can_vote = (self.vote == m.src or (self.vote == NO_NODE and self.leader == NO_NODE)
                    or (m.type == T.PRE_VOTE and m.term > self.term))
        resp_type = T.VOTE_RESP if m.type == T.VOTE else T.PRE_VOTE_RESP
        if can_vote and self.log.is_up_to_date(m.index, m.log_term):
            self._send(Message(resp_type, self.id, m.src, m.term))
            if m.type == T.VOTE:
                self._restart_election_timer()
                self.vote = m.src
        else:
            # The rejection carries our last log position so the candidate can tell "you are
            # behind" from "I voted for someone else" (``_step_candidate``).
            self._send(Message(resp_type, self.id, m.src, self.term, reject=True,
                               index=self.log.last_index(), log_term=self.log.last_term()))

    def _step_follower(self, m: Message) -> None:
        if m.type in (T.APPEND, T.HEARTBEAT, T.SNAPSHOT):
            self.election_elapsed = 0
            self.leader = m.src
            self._handle_from_leader(m)
        elif m.type == T.TIMEOUT_NOW:
            self.campaign(transfer=True)

    def _step_candidate(self, m: Message) -> None:
        if m.type in (T.APPEND, T.HEARTBEAT, T.SNAPSHOT):
            self._become_follower(self.term, m.src)
            self._handle_from_leader(m)
            return
        expected = T.PRE_VOTE_RESP if self.role == PRE_CANDIDATE else T.VOTE_RESP
        if m.type != expected:
            return
        self.votes[m.src] = not m.reject
        if m.reject and (m.log_term, m.index) > (self.log.last_term(), self.log.last_index()):
            self.ahead_voters.add(m.src)
        outcome = self._poll()
        if outcome == "won":
            self._election_won()
        elif outcome == "lost":
            behind = self.role == CANDIDATE and self._found_behind()
            self._become_follower(self.term, NO_NODE)
            if behind:
                self.randomized_timeout += self.config.election_ticks_max

    def _found_behind(self) -> bool:
        """Did a majority of this configuration reject this candidate because their logs are ahead?

        Then it cannot win here until it receives entries, and without PreVote every campaign
        spends its vote on itself in a new term. A node whose configuration is out of date asks
        only voters that may all be ahead of it, while the up-to-date node that needs its vote is
        not in that configuration and never sees those terms: its requests arrived in terms
        already voted in, again and again for as long as the stale node's timer fired first
        (vopr seeds 61915, 66779: 5-9 s without a leader). So the stale node waits an extra
        election timeout before its next campaign, as a failed PreVote round would have made it
        (dissertation 9.6); timing only, so safety is untouched, and it still campaigns.

        "A majority" is counted as ``_poll`` counts a loss: enough voters rejected it as ahead
        that the rest cannot make a majority. With an even number of voters that is fewer than
        half: in a configuration of two, the other voter alone (vopr learners seed 919, commit
        broadcast off: a stale node whose configuration was (2, 6) kept starting terms that the
        up-to-date node's vote requests then arrived in, 3 s without a leader).
        """
        return self._majority_out_of_reach(len(self.ahead_voters & set(self.voters)))

    def _handle_from_leader(self, m: Message) -> None:
        if m.type == T.APPEND:
            self._handle_append(m)
        elif m.type == T.HEARTBEAT:
            self.log.commit_to(min(m.commit, self.log.last_index()))
            self._send(Message(T.HEARTBEAT_RESP, self.id, m.src, self.term, context=m.context))
        else:
            self._handle_snapshot(m)

    def _handle_append(self, m: Message) -> None:
        if m.index < self.log.committed:
            self._send(Message(T.APPEND_RESP, self.id, m.src, self.term, index=self.log.committed))
            return
        last_new = self.log.maybe_append(m.index, m.log_term, m.commit, m.entries)
        if self.log.truncations != self._truncations_seen or any(
                e.kind == CONF_CHANGE_KIND for e in m.entries):
            self._truncations_seen = self.log.truncations
            self._refresh_voters()
        if last_new is not None:
            self._send(Message(T.APPEND_RESP, self.id, m.src, self.term, index=last_new))
            return
        hint = self.log.find_conflict_by_term(min(m.index, self.log.last_index()), m.log_term)
        self._send(Message(T.APPEND_RESP, self.id, m.src, self.term, index=m.index, reject=True,
                           reject_hint=hint, log_term=self.log.term(hint) or 0))

    def _handle_snapshot(self, m: Message) -> None:
        snap = m.snapshot
        if snap is None or snap.index <= self.log.committed:
            self._send(Message(T.APPEND_RESP, self.id, m.src, self.term, index=self.log.committed))
            return
        if self.log.match_term(snap.index, snap.term):
            self.log.commit_to(snap.index)
        else:
            self.log.restore(snap)
            self._refresh_voters()
        self._send(Message(T.APPEND_RESP, self.id, m.src, self.term, index=self.log.committed))

    # -- leader ----------------------------------------------------------------------------------

    def _tick_leader(self) -> None:
        self.heartbeat_elapsed += 1
        self.election_elapsed += 1
        # CheckQuorum waits the *longest* election timeout: with the shortest one a leader on a WAN
        # whose RTT approaches it steps down before its first heartbeat round can come back.
        if self.election_elapsed >= self.config.election_ticks_max:
            self.election_elapsed = 0
            if self.config.check_quorum and not self._quorum_recently_active():
                self._become_follower(self.term, NO_NODE)
                return
            self.transfer_target = NO_NODE
        for peer, pr in self.progress.items():
            if pr.state == SNAPSHOT:
                pr.snapshot_wait_ticks += 1
                if pr.snapshot_wait_ticks >= self.config.election_ticks_min:
                    pr.become_probe()
                    self._send_append(peer)
        if self.heartbeat_elapsed >= self.config.heartbeat_ticks:
            self.heartbeat_elapsed = 0
            self._broadcast_heartbeat(b"")

    def _quorum_recently_active(self) -> bool:
        """Did a majority of the voters answer since the last check? Every member's flag starts
        over, learners' too: a runtime reads ``recent_active`` as "heard from it lately" (the
        federation's failure detector does), so a learner's must not stay set forever."""
        active = sum(1 for peer in self.voters if peer == self.id or self.progress[peer].recent_active)
        for pr in self.progress.values():
            pr.recent_active = False
        return active >= quorum_size(len(self.voters))

    def _step_leader(self, m: Message) -> None:
        pr = self.progress.get(m.src)
        if pr is None:
            return
        pr.recent_active = True
        if m.type == T.APPEND_RESP:
            self._handle_append_resp(m, pr)
        elif m.type == T.HEARTBEAT_RESP:
            pr.paused = False
            last = self.log.last_index()
            if pr.state == REPLICATE and pr.match < last and not pr.acked_since_heartbeat:
                pr.become_probe()
            if pr.match < last:
                self._send_append(m.src)
            if m.context:
                self._ack_read(m.context, m.src)

    def _handle_append_resp(self, m: Message, pr: Progress) -> None:
        if m.reject:
            hint = m.reject_hint
            if m.log_term > 0:
                hint = self.log.find_conflict_by_term(m.reject_hint, m.log_term)
            if pr.maybe_decrease_to(m.index, hint):
                if pr.state == REPLICATE:
                    pr.become_probe()
                self._send_append(m.src)
            return
        was_paused = pr.is_paused()
        if not pr.maybe_update(m.index):
            return
        if pr.state != REPLICATE:
            pr.become_replicate()
        if self._maybe_commit() and self.config.commit_broadcast:
            self._broadcast_append()
        elif was_paused or pr.next <= self.log.last_index():
            self._send_append(m.src)
        if m.src == self.transfer_target and pr.match == self.log.last_index():
            self._send(Message(T.TIMEOUT_NOW, self.id, m.src, self.term))

    def _send_append(self, peer: int) -> None:
        pr = self.progress[peer]
        if pr.is_paused():
            return
        prev_term = self.log.term(pr.next - 1)
        if prev_term is None:
            snap = self.log.snapshot
            self._send(Message(T.SNAPSHOT, self.id, peer, self.term, snapshot=snap))
            pr.become_snapshot(snap.index)
            return
        last = self.log.last_index()
        entries = tuple(self.log.slice(pr.next, min(last + 1, pr.next + self.config.max_entries_per_message)))
        self._send(Message(T.APPEND, self.id, peer, self.term, index=pr.next - 1, log_term=prev_term,
                           commit=self.log.committed, entries=entries))
        if pr.state == REPLICATE and entries:
            pr.next = entries[-1].index + 1
        else:
            pr.paused = True

    def _broadcast_append(self) -> None:
        for peer in self.progress:
            if peer != self.id:
                self._send_append(peer)

    def _broadcast_heartbeat(self, context: bytes) -> None:
        for peer in self.progress:
            if peer != self.id:
                pr = self.progress[peer]
                pr.acked_since_heartbeat = False
                self._send(Message(T.HEARTBEAT, self.id, peer, self.term, commit=min(pr.match, self.log.committed),
                                   context=context))

    def _maybe_commit(self) -> bool:
        index = quorum_index(self.progress[v].match for v in self.voters)
        if index <= self.log.committed or self.log.term(index) != self.term:
            return False
        self.log.commit_to(index)
        if self.queued_reads and self._committed_in_current_term():
            queued, self.queued_reads = self.queued_reads, []
            for context in queued:
                self._start_read(context)
        if self.id not in self.voters and self.log.committed >= self.pending_conf_index:
            self._become_follower(self.term, NO_NODE)
        return True

    def _append_own(self, entry: Entry) -> None:
        self.log.append([entry])
        if entry.kind == EntryKind.CONF_CHANGE:
            self._refresh_voters()
        own = self.progress.get(self.id)
        if own is not None:
            own.maybe_update(entry.index)
        if len(self.voters) == 1 and self.id in self.voters:
            self._maybe_commit()

    def _committed_in_current_term(self) -> bool:
        return self.log.term(self.log.committed) == self.term

    def _conf_change_allowed(self, change: ConfChange) -> bool:
        if self.pending_conf_index > self.log.committed or not self._committed_in_current_term():
            return False
        if change.action == "add-learner" and change.node_id in self.voters:
            return False  # demoting a voter would change the quorum: remove it, then add it back
        if change.voters == self.voters:  # learners only: no quorum moves, whatever the group's size
            return change.learners != self.learners
        return 1 <= len(change.voters) <= MAX_VOTERS

    # -- ReadIndex -------------------------------------------------------------------------------

    def _start_read(self, context: bytes) -> None:
        # Only a leader that is itself the whole configuration may answer without a round trip.
        # A leader that proposed its own removal leads a configuration it is not part of: with
        # voters (X,) the quorum is X alone, and X may already have elected itself and committed
        # newer writes (issue 13: a put completed, then a get returned the older value), so the
        # leader neither answers at once nor counts its own ack.
        if self.voters == (self.id,):
            self._read_states.append(ReadState(self.log.committed, context))
            return
        self.pending_reads[context] = (self.log.committed, {self.id} & set(self.voters))
        self._broadcast_heartbeat(context)

    def _ack_read(self, context: bytes, peer: int) -> None:
        pending = self.pending_reads.get(context)
        if pending is None:
            return
        pending[1].add(peer)
        if len(pending[1] & set(self.voters)) < quorum_size(len(self.voters)):
            return
        for ctx in list(self.pending_reads):
            index, _ = self.pending_reads.pop(ctx)
            self._read_states.append(ReadState(index, ctx))
            if ctx == context:
                break

    # -- role changes ------------------------------------------------------------------------------

    def promotable(self) -> bool:
        """May this node start an election? A voter of its latest configuration may, and so may a
        node that configuration removed while it does not know the removal committed: it may be
        needed until then (dissertation 4.2.2). Otherwise a 2-voter leader that removed itself and
        lost leadership first deadlocked the cluster, holding the longest log (issue 13). Its own
        vote never counts (``_poll``); if it wins, it steps down once the removal commits. Once
        the removal is known committed, a majority of the new configuration can elect without it.
        A learner never may, not even a voter removed by a change it does not know committed and
        added back as a learner: a leader proposes a change only once the previous one committed,
        so the voters can elect without it.
        """
        if self.log.pending_snapshot is not None:
            return False
        return self.id in self.voters or (self.id not in self.learners and self._removal_uncommitted())

    def _removal_uncommitted(self) -> bool:
        """Was this node removed by a change it does not know to be committed (and a voter before)?"""
        log = self.log
        uncommitted = log.slice(max(log.committed + 1, log.first_index()), log.last_index() + 1)
        if not any(e.kind == EntryKind.CONF_CHANGE for e in uncommitted):
            return False  # the committed configuration is the latest one, which lacks this node
        return self.id in self._voters_at(log.committed)

    def _reset(self, term: int) -> None:
        if term != self.term:
            self.term = term
            self.vote = NO_NODE
        self.leader = NO_NODE
        self.election_elapsed = 0
        self.heartbeat_elapsed = 0
        self._reset_randomized_timeout()
        self.transfer_target = NO_NODE
        self.votes = {}
        self.ahead_voters = set()
        self.pending_conf_index = 0
        self.pending_reads = {}
        self.queued_reads = []
        last = self.log.last_index()
        self.progress = {v: Progress(match=last if v == self.id else 0, next=last + 1) for v in self.members()}

    def _restart_election_timer(self) -> None:
        """Granting a vote restarts the timer with a fresh draw: voters keeping their old timeouts
        fire in the same order round after round and repeat split votes (raft-fig16 showed it)."""
        self.election_elapsed = 0
        self._reset_randomized_timeout()

    def _reset_randomized_timeout(self) -> None:
        self.randomized_timeout = self._rng.randint(self.config.election_ticks_min, self.config.election_ticks_max)

    def _become_follower(self, term: int, leader: int) -> None:
        self._reset(term)
        self.role = FOLLOWER
        self.leader = leader

    def _adopt_term(self, term: int) -> None:
        """Follow a higher term learnt from a vote or a response, without restarting the timer.

        Section 5.2 restarts the election timer only on granting a vote or hearing from the
        current leader (``_handle_vote_request`` and ``_step_follower`` do that). Restarting it on
        every higher term let a node with a stale log and a fast clock keep every up-to-date node
        from ever timing out first: each of its rejected candidacies reset their timers (issue
        13, a livelock with CheckQuorum on and PreVote off). A deposed leader's counter measured
        CheckQuorum rounds, not silence from a leader, so it starts over.
        """
        keep = self.role != LEADER
        elapsed, timeout = self.election_elapsed, self.randomized_timeout
        self._become_follower(term, NO_NODE)
        if keep:
            self.election_elapsed, self.randomized_timeout = elapsed, timeout

    def _become_pre_candidate(self) -> None:
        # PreVote changes neither term nor vote (dissertation 9.6), only the role.
        self.role = PRE_CANDIDATE
        self.leader = NO_NODE
        self.votes = {}
        self._reset_randomized_timeout()

    def _become_candidate(self) -> None:
        self._reset(self.term + 1)
        self.vote = self.id
        self.role = CANDIDATE

    def _election_won(self) -> None:
        if self.role == PRE_CANDIDATE:
            self._start_election(pre_vote=False, context=b"")
            return
        self._reset(self.term)
        self.role = LEADER
        self.leader = self.id
        self.pending_conf_index = self.log.last_index()
        self._append_own(Entry(self.log.last_index() + 1, self.term))
        self._broadcast_append()

    def _poll(self) -> str:
        """Won with a majority of the voters; lost once the voters not yet rejecting cannot make
        one (as etcd's raft counts): with an even number of voters that is before half reject."""
        granted = sum(1 for v in self.voters if self.votes.get(v) is True)
        rejected = sum(1 for v in self.voters if self.votes.get(v) is False)
        if granted >= quorum_size(len(self.voters)):
            return "won"
        return "lost" if self._majority_out_of_reach(rejected) else "pending"

    def _majority_out_of_reach(self, refused: int) -> bool:
        """With ``refused`` voters against it, can the other voters no longer make a majority?"""
        return refused > len(self.voters) - quorum_size(len(self.voters))

    # -- configuration -------------------------------------------------------------------------

    def _config_at(self, index: int) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """(voters, learners) of the latest configuration in the log up to ``index``."""
        snapshot = self.log.snapshot
        voters, learners = snapshot.voters, snapshot.learners
        for entry in self.log.entries:
            if entry.index > index:
                break
            if entry.kind == EntryKind.CONF_CHANGE:
                change = ConfChange.decode(entry.data)
                voters, learners = change.voters, change.learners
        return voters, learners

    def _voters_at(self, index: int) -> tuple[int, ...]:
        return self._config_at(index)[0]

    def members(self) -> tuple[int, ...]:
        """Voters, then learners: everyone the leader replicates to (and tracks in ``progress``)."""
        return self.voters + self.learners

    def _refresh_voters(self) -> None:
        voters, learners = self._config_at(self.log.last_index())
        if (voters, learners) == (self.voters, self.learners):
            return
        self.voters, self.learners = voters, learners
        last = self.log.last_index()
        self.progress = {v: self.progress.get(v) or Progress(next=last + 1) for v in self.members()}

    def _send(self, m: Message) -> None:
        self._msgs.append(m)

"""Deliberately broken Raft nodes, to show that the vopr's checkers catch real protocol bugs.

Each class breaks one rule of the paper; a checker that cannot tell them from ``RaftNode`` is
useless. ``novacron vopr --plant NAME`` runs one of them (and is expected to fail). The three
``learner-*`` bugs need learners: ``--generator learners`` catches them (``LEARNER_PLANTED_BUGS``).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from novacron.raft.messages import HardState, Message, MessageType, ReadState
from novacron.raft.node import LEADER, RaftNode
from novacron.raft.progress import quorum_index, quorum_size


class CommitsEntriesOfOldTerms(RaftNode):
    """Counts replicas of entries from earlier terms as committed: the Figure 8 bug (section 5.4.2)."""

    def _maybe_commit(self) -> bool:
        index = quorum_index(self.progress[v].match for v in self.voters)
        if index <= self.log.committed:
            return False
        self.log.commit_to(index)
        return True


class IgnoresElectionRestriction(RaftNode):
    """Grants votes to candidates whose logs are behind (breaks section 5.4.1)."""

    def _handle_vote_request(self, m: Message) -> None:
        if m.type == MessageType.VOTE and self.vote in (0, m.src):
            self.vote = m.src
            self.election_elapsed = 0
            self._send(Message(MessageType.VOTE_RESP, self.id, m.src, m.term))
            return
        super()._handle_vote_request(m)


class ForgetsItsVote(RaftNode):
    """Never persists ``votedFor`` (Figure 2 requires it), so a restart can vote twice in a term."""

    def _hard_state(self) -> HardState:
        return HardState(self.term, 0, self.log.committed)


class ServesReadsWithoutConfirmingLeadership(RaftNode):
    """Answers ReadIndex at once, trusting that it still leads (dissertation 6.4 requires a
    heartbeat round first). The general form of the single-voter shortcut that served a stale
    read after a leader removed itself: a deposed leader that has not heard of its successor
    serves reads that miss the successor's writes."""

    def _start_read(self, context: bytes) -> None:
        self._read_states.append(ReadState(self.log.committed, context))


class SkipsLogMatchingCheck(RaftNode):
    """Accepts an AppendEntries whose previous entry it holds with another term (Figure 2's
    receiver rule 2 checks that term), so entries land after a prefix that differs from the
    leader's."""

    def _handle_append(self, m: Message) -> None:
        held = self.log.term(m.index)
        if held is not None and held != m.log_term and m.index >= self.log.committed:
            m = Message(m.type, m.src, m.dst, m.term, index=m.index, log_term=held, commit=m.commit,
                        entries=m.entries, context=m.context)
        super()._handle_append(m)


class LeaderIgnoresHigherTerm(RaftNode):
    """A leader that sees a higher term adopts it but keeps leading (Figure 2: "if RPC request or
    response contains term T > currentTerm: set currentTerm = T, convert to follower")."""

    def step(self, m: Message) -> None:
        if self.role == LEADER and m.term > self.term and m.type != MessageType.PRE_VOTE:
            self.term, self.vote = m.term, 0
        super().step(m)


class CountsLearnersTowardsCommit(RaftNode):
    """Commits what a majority of voters *and learners* store: learners' acknowledgements stand in
    for voters', so an entry commits on a minority of the voters (learners count towards no
    majority; the Commit Quorum check compares the count with the disks)."""

    def _maybe_commit(self) -> bool:
        voters, self.voters = self.voters, self.members()  # the commit rule alone sees learners as voters
        try:
            return super()._maybe_commit()
        finally:
            self.voters = voters


class CountsLearnersVotes(RaftNode):
    """Asks learners for their votes too and counts them towards winning an election."""

    def _start_election(self, *, pre_vote: bool, context: bytes) -> None:
        super()._start_election(pre_vote=pre_vote, context=context)
        if self.role == LEADER:
            return
        vote_type = MessageType.PRE_VOTE if pre_vote else MessageType.VOTE
        for learner in self.learners:
            self._send(Message(vote_type, self.id, learner, self.term + 1 if pre_vote else self.term,
                               index=self.log.last_index(), log_term=self.log.last_term(), context=context))

    def _poll(self) -> str:
        granted = sum(1 for m in self.members() if self.votes.get(m) is True)
        return "won" if granted >= quorum_size(len(self.voters)) else super()._poll()


class LearnerCampaigns(RaftNode):
    """Lets a learner time out and campaign like a voter (learners never campaign)."""

    def promotable(self) -> bool:
        return self.id in self.learners or super().promotable()


PLANTED_BUGS: Mapping[str, type[RaftNode]] = MappingProxyType({
    "old-term-commit": CommitsEntriesOfOldTerms,
    "no-election-restriction": IgnoresElectionRestriction,
    "forget-vote": ForgetsItsVote,
    "stale-read": ServesReadsWithoutConfirmingLeadership,
    "no-log-matching": SkipsLogMatchingCheck,
    "leader-keeps-term": LeaderIgnoresHigherTerm,
    "learner-quorum": CountsLearnersTowardsCommit,
    "learner-votes": CountsLearnersVotes,
    "learner-campaigns": LearnerCampaigns,
})

LEARNER_PLANTED_BUGS = ("learner-quorum", "learner-votes", "learner-campaigns")
"""The planted bugs only the ``learners`` workload can catch (other plans have no learners)."""

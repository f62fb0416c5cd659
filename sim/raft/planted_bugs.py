"""Deliberately broken Raft nodes, to show that the vopr's checkers catch real protocol bugs.

Each class breaks one rule of the paper; a checker that cannot tell them from ``RaftNode`` is
useless. ``novacron vopr --plant NAME`` runs one of them (and is expected to fail).
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from novacron.raft.messages import HardState, Message, MessageType
from novacron.raft.node import RaftNode
from novacron.raft.progress import quorum_index


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


PLANTED_BUGS: Mapping[str, type[RaftNode]] = MappingProxyType({
    "old-term-commit": CommitsEntriesOfOldTerms,
    "no-election-restriction": IgnoresElectionRestriction,
    "forget-vote": ForgetsItsVote,
})

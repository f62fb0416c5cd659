"""Scenarios from the Raft paper (Ongaro & Ousterhout 2014), cited by section and figure."""

from __future__ import annotations

import dataclasses

import pytest

from novacron.raft.invariants import SafetyChecker, SafetyViolation
from novacron.raft.log import RaftLog, RaftSafetyError
from novacron.raft.messages import Entry, HardState, Message, MessageType, Ready
from novacron.raft.node import CANDIDATE, FOLLOWER, LEADER
from sim.raft.planted_bugs import CommitsEntriesOfOldTerms, ForgetsItsVote
from tests.raft_harness import Net, entries_of_terms

NO_PREVOTE = {"pre_vote": False, "check_quorum": False}


def test_5_2_a_candidate_with_a_majority_of_votes_becomes_leader() -> None:
    net = Net((1, 2, 3, 4, 5), **NO_PREVOTE)
    net.campaign(1)
    assert net.nodes[1].role == LEADER and net.nodes[1].term == 1
    assert all(net.nodes[i].role == FOLLOWER and net.nodes[i].leader == 1 for i in (2, 3, 4, 5))


def test_5_2_a_candidate_without_a_majority_stays_candidate() -> None:
    net = Net((1, 2, 3, 4, 5), **NO_PREVOTE)
    for peer in (2, 3, 4):
        net.isolate(peer)
    net.campaign(1)
    assert net.nodes[1].role == CANDIDATE


def test_5_2_each_server_votes_for_at_most_one_candidate_per_term() -> None:
    net = Net((1, 2, 3), **NO_PREVOTE)
    net.isolate(1)
    net.nodes[1].campaign()
    net.nodes[1].ready()
    net.heal()
    net.step(Message(MessageType.VOTE, 3, 2, 1, index=0, log_term=0))
    net.step(Message(MessageType.VOTE, 1, 2, 1, index=0, log_term=0))
    responses = [m for m in net.queue if m.type == MessageType.VOTE_RESP and m.src == 2]
    assert [(m.dst, m.reject) for m in responses] == [(3, False), (1, True)]


@pytest.mark.parametrize(("voter_log", "candidate_last", "granted"), [
    ([1, 1, 2], (3, 2), True),    # same last term, same length
    ([1, 1, 2], (2, 2), False),   # same last term, shorter log
    ([1, 1, 2], (1, 3), True),    # higher last term wins even with a shorter log
    ([1, 1, 3], (5, 2), False),   # lower last term loses even with a longer log
])
def test_5_4_1_election_restriction(voter_log: list[int], candidate_last: tuple[int, int], granted: bool) -> None:
    net = Net((1, 2), logs={2: voter_log}, **NO_PREVOTE)
    index, term = candidate_last
    net.step(Message(MessageType.VOTE, 1, 2, 5, index=index, log_term=term))
    (resp,) = [m for m in net.queue if m.type == MessageType.VOTE_RESP]
    assert resp.reject is not granted


FIGURE_7_LEADER = [1, 1, 1, 4, 4, 5, 5, 6, 6, 6]
FIGURE_7_FOLLOWERS = {
    "a": [1, 1, 1, 4, 4, 5, 5, 6, 6],
    "b": [1, 1, 1, 4],
    "c": [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 6],
    "d": [1, 1, 1, 4, 4, 5, 5, 6, 6, 6, 7, 7],
    "e": [1, 1, 1, 4, 4, 4, 4],
    "f": [1, 1, 1, 2, 2, 2, 3, 3, 3, 3, 3],
}


@pytest.mark.parametrize("case", sorted(FIGURE_7_FOLLOWERS))
def test_figure_7_the_leader_brings_every_follower_log_in_line(case: str) -> None:
    """Section 5.3, Figure 7: the term-8 leader repairs followers (a)-(f), with few round trips."""
    follower = FIGURE_7_FOLLOWERS[case]
    net = Net((1, 2, 3), logs={1: FIGURE_7_LEADER, 2: follower, 3: FIGURE_7_LEADER}, terms={1: 7, 3: 7},
              **NO_PREVOTE)
    net.campaign(1)
    assert net.nodes[1].role == LEADER and net.nodes[1].term == 8
    net.tick(1, 5)
    net.deliver_all()
    assert net.log_terms(2) == [*FIGURE_7_LEADER, 8]
    rejections = [m for m in net.delivered if m.type == MessageType.APPEND_RESP and m.src == 2 and m.reject]
    assert len(rejections) <= 2, "fast back-off skips a whole term per rejection"


def _figure_8_net(node_class: type = CommitsEntriesOfOldTerms.__mro__[1]) -> Net:
    """Figure 8 (c): S1 leads term 4 with S1,S2 holding (2, term 2); S5 holds (2, term 3)."""
    net = Net((1, 2, 3, 4, 5), node_class=node_class, logs={1: [1, 2], 2: [1, 2], 3: [1], 4: [1], 5: [1, 3]},
              terms={1: 3, 2: 3, 3: 3, 4: 3, 5: 3}, max_entries_per_message=1, **NO_PREVOTE)
    net.mutators.append(lambda m: dataclasses.replace(m, entries=tuple(e for e in m.entries if e.term != 4)))
    net.filters.append(lambda m: m.src == 5 or m.dst == 5)
    net.campaign(1)
    assert net.nodes[1].role == LEADER and net.nodes[1].term == 4
    net.tick(1, 5)
    net.deliver_all()
    return net


def test_figure_8_a_leader_does_not_commit_an_old_term_entry_by_counting_replicas() -> None:
    """Section 5.4.2: (2, term 2) is on S1, S2, S3 -- a majority -- but must not count as committed."""
    net = _figure_8_net()
    assert [net.log_terms(i)[:2] for i in (1, 2, 3)] == [[1, 2]] * 3
    assert net.nodes[1].log.committed < 2
    net.heal()
    net.tick(1, 5)
    net.deliver_all()
    assert net.nodes[1].log.committed == 3, "once an entry of term 4 is on a majority, both commit"


def test_figure_8_the_checker_catches_a_leader_that_counts_old_term_replicas() -> None:
    """With the rule broken, S1 commits (2, term 2); S5 is then elected and erases it (Figure 8 (d))."""
    net = _figure_8_net(CommitsEntriesOfOldTerms)
    assert net.nodes[1].log.committed == 2
    net.crash(1)
    net.heal()
    net.campaign(5)  # term 4: everyone already voted for S1 in term 4
    assert net.nodes[5].role != LEADER
    with pytest.raises(SafetyViolation, match="Leader Completeness"):
        net.campaign(5)  # term 5: S5's last term (3) beats S2-S4's (2), as in Figure 8 (d)


@pytest.mark.parametrize("node_class", [CommitsEntriesOfOldTerms.__mro__[1], CommitsEntriesOfOldTerms],
                         ids=["raft", "old-term-commit"])
def test_figure_8_a_count_commit_is_caught_when_it_happens_if_a_later_term_leader_lacks_it(
        node_class: type) -> None:
    """Figure 8 (b)-(c) with S5's election seen: S5 leads term 3 without (2, term 2) and dies
    before sending its (2, term 3); S1 leads term 4 and gets (2, term 2) onto a majority. Counting
    those replicas commits it as of term 2 -- the term of the entry counted, not the leader's --
    and the leader of term 3 lacks it: a Leader Completeness violation at that very step, before
    S5 is ever elected again. Raft's own rule (section 5.4.2) commits nothing here."""
    net = Net((1, 2, 3, 4, 5), node_class=node_class, logs={1: [1, 2], 2: [1, 2], 3: [1], 4: [1], 5: [1]},
              terms=dict.fromkeys(range(1, 6), 2), max_entries_per_message=1, **NO_PREVOTE)
    net.filters.append(lambda m: m.src == 5 and m.type == MessageType.APPEND)
    net.campaign(5)
    assert net.nodes[5].role == LEADER and net.nodes[5].term == 3 and net.log_terms(5) == [1, 3]
    net.crash(5)
    net.mutators.append(lambda m: dataclasses.replace(m, entries=tuple(e for e in m.entries if e.term != 4)))
    if node_class is CommitsEntriesOfOldTerms:
        with pytest.raises(SafetyViolation, match="leader 5 of term 3 was elected without entry 2"):
            net.campaign(1)
        return
    net.campaign(1)
    assert net.nodes[1].role == LEADER and net.nodes[1].term == 4 and net.nodes[1].log.committed < 2


def test_5_3_log_repairs_never_touch_committed_entries() -> None:
    log = RaftLog(entries=entries_of_terms([1, 1, 2]), committed=2)
    with pytest.raises(RaftSafetyError):
        log.maybe_append(1, 1, 3, [Entry(2, 3)])


def test_5_3_stale_appends_do_not_truncate_a_longer_matching_log() -> None:
    log = RaftLog(entries=entries_of_terms([1, 1, 2, 2]))
    assert log.maybe_append(1, 1, 0, entries_of_terms([1], start=2)) == 2
    assert log.last_index() == 4


def test_5_3_find_conflict_by_term_skips_whole_terms() -> None:
    log = RaftLog(entries=entries_of_terms([1, 1, 1, 4, 4, 5, 5, 6, 6, 6]))
    assert log.find_conflict_by_term(10, 5) == 7
    assert log.find_conflict_by_term(10, 3) == 3
    assert log.find_conflict_by_term(10, 0) == 0


class _ForgetsItsVoteQuietly(ForgetsItsVote):
    """ForgetsItsVote for the harness, which loops while ``has_ready``: the vote it never saves
    must not count as unsaved forever (the simulated cluster asks once per input)."""

    def advance(self, ready: Ready) -> None:
        super().advance(ready)
        self._prev_hard = HardState(self.term, self.vote, self.log.committed)


@pytest.mark.parametrize("node_class", [ForgetsItsVote.__mro__[1], _ForgetsItsVoteQuietly],
                         ids=["raft", "forget-vote"])
def test_5_2_a_server_votes_once_per_term_across_a_restart(node_class: type) -> None:
    """Section 5.2: "each server will vote for at most one candidate in a given term" (Figure 2
    persists votedFor for it). 1 and 2 campaign in term 2; 3 grants 1, restarts from disk, then
    gets 2's request of the same term. The checker sees the second vote even when 2 does not go
    on to win (with 3 voters here it would: two leaders of term 2)."""
    net = Net((1, 2, 3), node_class=node_class, logs={1: [1], 2: [1], 3: [1]}, **NO_PREVOTE)
    net.checker = SafetyChecker(check_votes=True)
    for candidate in (1, 2):
        net.nodes[candidate].campaign()
        net._ready(net.nodes[candidate])
    first, second = (next(m for m in net.queue if m.src == c and m.dst == 3) for c in (1, 2))
    net.step(first)
    assert net.nodes[3].vote == 1
    net.crash(3)
    net.boot(3)
    if node_class is _ForgetsItsVoteQuietly:
        with pytest.raises(SafetyViolation, match="One Vote per Term: node 3 voted for 1 and then for 2 in term 2"):
            net.step(second)
        return
    net.step(second)
    assert net.nodes[3].vote == 1

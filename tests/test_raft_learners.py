"""Learners (non-voting members) in the Raft core: encodings stay compatible, and the rules a
leader applies to configuration changes with learners (the golden script
``tests/testdata/raft/learners.txt`` shows the behaviour message by message)."""

from __future__ import annotations

from random import Random

import pytest

from novacron.raft import (
    ConfChange,
    Entry,
    EntryKind,
    HardState,
    Message,
    MessageType,
    RaftConfig,
    RaftNode,
    Snapshot,
    Stored,
    from_wire,
    to_wire,
)
from novacron.raft.node import LEADER


def test_a_change_without_learners_encodes_as_before_learners_existed() -> None:
    assert ConfChange("add", 4, (1, 2, 3, 4)).encode() == b"add:4:1,2,3,4"
    assert ConfChange.decode(b"remove:2:1,3") == ConfChange("remove", 2, (1, 3), ())


def test_learners_round_trip_through_the_entry_encoding() -> None:
    change = ConfChange("add-learner", 9, (1, 2, 3), (9,))
    assert ConfChange.decode(change.encode()) == change
    with pytest.raises(ValueError, match="unknown configuration change"):
        ConfChange.decode(b"demote:1:2,3")


@pytest.mark.parametrize(("change", "voters", "learners"), [
    (ConfChange("add-learner", 4), (1, 2, 3), (4,)),
    (ConfChange("add", 4), (1, 2, 3, 4), ()),        # a learner promoted
    (ConfChange("remove", 4), (1, 2, 3), ()),       # a learner removed
    (ConfChange("remove", 2), (1, 3), (4,)),
])
def test_resolving_a_change_gives_the_whole_configuration(change: ConfChange, voters: tuple[int, ...],
                                                          learners: tuple[int, ...]) -> None:
    start_learners = () if change.action == "add-learner" else (4,)
    resolved = change.resolved((1, 2, 3), start_learners)
    assert (resolved.voters, resolved.learners) == (voters, learners)


def test_a_snapshot_with_learners_crosses_the_wire_and_an_old_one_still_decodes() -> None:
    snap = Snapshot(7, 2, (1, 2, 3), b"kv", learners=(4, 5))
    message = Message(MessageType.SNAPSHOT, 1, 4, 2, snapshot=snap)
    assert from_wire(to_wire(message)).snapshot == snap
    old = to_wire(Message(MessageType.SNAPSHOT, 1, 4, 2, snapshot=Snapshot(7, 2, (1, 2, 3), b"kv")))
    assert len(old["snapshot"]) == 4 and from_wire(old).snapshot == Snapshot(7, 2, (1, 2, 3), b"kv")


def test_a_member_is_a_voter_or_a_learner_not_both() -> None:
    with pytest.raises(ValueError, match="not both"):
        Stored.bootstrap((1, 2), learners=(2, 3))


def _single_voter_leader(learners: tuple[int, ...]) -> RaftNode:
    """A leader that is its whole quorum; its first Ready replicates to every learner."""
    node = RaftNode(RaftConfig(node_id=1), Random(1), Stored.bootstrap((1,), learners))
    node.campaign()
    ready = node.ready()
    node.advance(ready)
    assert node.role == LEADER and node.log.committed == 1
    assert {m.dst for m in ready.messages if m.type == MessageType.APPEND} == set(learners)
    return node


def test_a_leader_refuses_to_demote_a_voter_or_to_repeat_the_configuration() -> None:
    node = _single_voter_leader((4,))
    assert node.propose_conf_change(ConfChange("add-learner", 1)) is None   # itself, a voter
    assert node.propose_conf_change(ConfChange("add-learner", 4)) is None   # already a learner
    assert node.propose_conf_change(ConfChange("add-learner", 5)) is not None
    assert node.learners == (4, 5) and node.voters == (1,)


def test_a_single_voter_commits_alone_while_learners_lag_and_a_learner_never_campaigns() -> None:
    node = _single_voter_leader((2, 3))
    index, _ = node.propose(b"x") or (0, 0)
    node.advance(node.ready())
    assert node.log.committed == index == 2 and all(node.progress[p].match == 0 for p in (2, 3))
    learner = RaftNode(RaftConfig(node_id=2), Random(2), Stored.bootstrap((1,), (2, 3)))
    for _ in range(10 * learner.config.election_ticks_max):
        learner.tick()
    assert learner.role == "follower" and learner.term == 0 and not learner.ready().messages


def test_a_learners_recent_activity_starts_over_at_every_check_quorum_round() -> None:
    """Runtimes read ``recent_active`` as "heard from lately" (the federation's failure detector):
    a learner's flag must be cleared like a voter's, or a silent learner looks alive forever."""
    node = _single_voter_leader((2,))
    node.step(Message(MessageType.HEARTBEAT_RESP, 2, 1, node.term))
    assert node.progress[2].recent_active
    for _ in range(node.config.election_ticks_max):
        node.tick()
    assert node.role == LEADER and not node.progress[2].recent_active


def test_a_removed_voter_added_back_as_a_learner_never_campaigns_even_unsure_the_removal_committed() -> None:
    """Review finding: ``_removal_uncommitted`` alone let such a learner campaign (safe, as for a
    removed voter, but a learner must not: the voters can elect without it)."""
    entries = [Entry(1, 1, EntryKind.CONF_CHANGE, ConfChange("remove", 3).resolved((1, 2, 3)).encode()),
               Entry(2, 1, EntryKind.CONF_CHANGE, ConfChange("add-learner", 3).resolved((1, 2)).encode())]
    stored = Stored(HardState(term=1), Snapshot(0, 0, (1, 2, 3)), entries)
    node = RaftNode(RaftConfig(node_id=3), Random(3), stored)
    assert (node.voters, node.learners, node.log.committed) == ((1, 2), (3,), 0)
    for _ in range(10 * node.config.election_ticks_max):
        node.tick()
    assert not node.promotable() and node.role == "follower" and not node.ready().messages


def test_learners_may_change_in_a_group_bootstrapped_with_more_voters_than_a_change_may_leave() -> None:
    """Nine voters (a federation may boot with them) are over ``MAX_VOTERS`` for a voter change,
    but adding or removing a learner moves no quorum and is allowed."""
    node = RaftNode(RaftConfig(node_id=1), Random(1), Stored.bootstrap(tuple(range(1, 10))))
    node.campaign()
    node.advance(node.ready())
    for peer in range(2, 10):
        node.step(Message(MessageType.PRE_VOTE_RESP, peer, 1, node.term + 1))
    node.advance(node.ready())
    for peer in range(2, 10):
        node.step(Message(MessageType.VOTE_RESP, peer, 1, node.term))
    node.advance(node.ready())
    for peer in range(2, 6):
        node.step(Message(MessageType.APPEND_RESP, peer, 1, node.term, index=node.log.last_index()))
    node.advance(node.ready())
    assert node.role == LEADER and node.log.committed == node.log.last_index()
    assert node.propose_conf_change(ConfChange("add-learner", 10)) is not None
    assert node.learners == (10,) and len(node.voters) == 9

"""Directed regression tests for the Raft bugs an adversarial search found (issue 13, items 1 and 3).

Each test drives a scripted schedule -- which node ticks how often, which messages are lost, who
crashes -- through the synchronous harness, so the failure does not depend on a lucky seed; the
seeds are parametrized only to show that the outcome does not depend on the randomized timeouts.

- A stale read (dissertation 6.4): a leader that removed itself from a 2-voter configuration
  answered a read at once because its configuration had one voter -- the other one.
- A deadlock (dissertation 4.2.2): after a 2-voter leader removed itself and stepped down, the
  node with the longest log never campaigned, and the remaining voter needed its vote.
- Two livelocks without PreVote (section 5.2): followers restarted their election timer on
  adopting a higher term while rejecting the vote, and vote requests of an older term got no
  reply, so a node whose term lagged never caught up.
"""

from __future__ import annotations

import itertools

import pytest

from novacron.raft.messages import ConfChange, Entry, EntryKind, HardState, MessageType, Snapshot
from novacron.raft.node import FOLLOWER, LEADER, Stored
from tests.raft_harness import Net, entries_of_terms

SEEDS = range(4)
MODES = [pytest.param(pv, cq, id=f"prevote={pv}-checkquorum={cq}")
         for pv, cq in itertools.product((False, True), repeat=2)]
ELECTION_TICKS_MAX = 30  # the RaftConfig default


def _leader_of(net: Net, node_id: int) -> None:
    net.campaign(node_id)
    assert net.nodes[node_id].role == LEADER


@pytest.mark.parametrize(("pre_vote", "check_quorum"), MODES)
@pytest.mark.parametrize("seed", SEEDS)
def test_a_leader_that_removed_itself_does_not_serve_a_stale_read(pre_vote: bool, check_quorum: bool,
                                                                  seed: int) -> None:
    """Voters {1, 2}; leader 1 removes itself, 2 gets the entry but its ack is lost; 2, now alone
    in its configuration, is elected and commits v2; 1, still leader of the old term, must not
    answer a read with v1's index (a put(v2) completed before the get)."""
    net = Net((1, 2), seed=seed, pre_vote=pre_vote, check_quorum=check_quorum)
    _leader_of(net, 1)
    net.propose(1, b"v1")
    old_term = net.nodes[1].term
    net.filters.append(lambda m: m.src == 2 and m.dst == 1)  # every ack from 2 is lost
    assert net.propose_conf_change(1, ConfChange("remove", 1)) is not None
    assert net.nodes[1].voters == (2,) and net.nodes[2].voters == (2,)
    net.isolate(1)
    net.tick(2, ELECTION_TICKS_MAX + 1)
    net.deliver_all()
    assert net.nodes[2].role == LEADER and net.nodes[2].term > old_term
    index, _ = net.propose(2, b"v2") or (0, 0)
    assert net.nodes[2].log.committed >= index > 0, "2 is alone in its configuration: v2 commits at once"
    assert net.nodes[1].role == LEADER and net.nodes[1].term == old_term, "1's clock is paused: still leader"
    net.read_index(1, b"get")
    stale = [r for r in net.read_states[1] if r.index < index]
    assert not stale, f"leader 1 served a read at index {stale[0].index} after v2 committed at {index}"
    net.heal()
    net.tick(1, 5)  # a heartbeat round reaches 2, whose reply carries the higher term
    net.deliver_all()
    assert not [r for r in net.read_states[1] if r.index < index]
    if pre_vote or check_quorum:  # otherwise 2 drops old-term heartbeats silently and 1 lingers
        assert net.nodes[1].role == FOLLOWER


@pytest.mark.parametrize("seed", SEEDS)
def test_a_removed_leader_does_not_count_itself_towards_a_read_quorum(seed: int) -> None:
    """Voters {1, 2, 3}; 1 removes itself, so a read needs both 2 and 3 -- 1's own ack is not one."""
    net = Net((1, 2, 3), seed=seed)
    _leader_of(net, 1)
    net.filters.append(lambda m: m.dst == 1 and m.type == MessageType.APPEND_RESP)
    assert net.propose_conf_change(1, ConfChange("remove", 1)) is not None
    assert net.nodes[1].voters == (2, 3) and net.nodes[1].role == LEADER
    net.heal()
    net.filters.append(lambda m: m.src == 3 and m.dst == 1)
    net.read_index(1, b"get")
    assert net.read_states[1] == [], "only 2 confirmed; the configuration (2, 3) needs both"


def _run_rounds(net: Net, rounds: int, ticks_per_round: dict[int, int]) -> int | None:
    """Tick each live node its share per round (a clock rate), delivering after every tick; return
    the round in which some node became leader, or None."""
    for round_no in range(rounds):
        for node_id, ticks in ticks_per_round.items():
            for _ in range(ticks):
                if node_id in net.nodes:
                    net.tick(node_id)
                    net.deliver_all()
        if net.leader() is not None:
            return round_no
    return None


@pytest.mark.parametrize(("pre_vote", "check_quorum"), MODES)
@pytest.mark.parametrize("seed", SEEDS)
def test_b_the_cluster_recovers_after_a_2_voter_leader_removes_itself(pre_vote: bool, check_quorum: bool,
                                                                      seed: int) -> None:
    """Voters {1, 2}; leader 1 removes itself while cut off, so 2 never sees the entry; CheckQuorum
    (or a crash) makes 1 step down. 1 holds the longest log and 2 needs 1's vote: 1 must campaign
    although it is outside its latest configuration (dissertation 4.2.2)."""
    net = Net((1, 2), seed=seed, pre_vote=pre_vote, check_quorum=check_quorum)
    _leader_of(net, 1)
    net.propose(1, b"a")
    net.isolate(1)
    assert net.propose_conf_change(1, ConfChange("remove", 1)) is not None
    if check_quorum:
        net.tick(1, 2 * ELECTION_TICKS_MAX)  # the first check still counts 2's acks of "a"
    else:
        net.crash(1)  # no CheckQuorum: a restart is what takes the leadership away
        net.boot(1)
    assert net.nodes[1].role == FOLLOWER and net.nodes[1].voters == (2,) and net.nodes[2].voters == (1, 2)
    net.heal()
    bound_rounds = 10 * ELECTION_TICKS_MAX
    recovered_at = None
    for round_no in range(bound_rounds):
        _run_rounds(net, 1, {1: 1, 2: 1})
        leader = net.leader()
        if leader is not None and not any(e.data == b"after" for e in leader.log.entries):
            net.propose(leader.id, b"after")
        if any(e.data == b"after" for e in net.applied[2]):
            recovered_at = round_no
            break
    assert recovered_at is not None, f"no entry committed within {bound_rounds} ticks after healing"
    net.tick(2, 2 * ELECTION_TICKS_MAX)
    net.deliver_all()
    assert net.leader() is net.nodes[2] and net.nodes[2].voters == (2,), "2 ends up leading its own config"


@pytest.mark.parametrize("check_quorum", [True, False])
@pytest.mark.parametrize("seed", SEEDS)
def test_c1_a_stale_candidate_with_a_fast_clock_does_not_keep_others_from_timing_out(check_quorum: bool,
                                                                                    seed: int) -> None:
    """Section 5.2: a follower restarts its election timer only when it grants a vote (or hears
    from the leader). Node 3's log is behind and its clock runs 3x fast; the leader 1 is down. If
    adopting 3's higher term restarted node 2's timer, 2 would never time out first."""
    net = Net((1, 2, 3), seed=seed, logs={1: [1, 1, 1], 2: [1, 1, 1], 3: [1]}, pre_vote=False,
              check_quorum=check_quorum)
    net.crash(1)
    bound_rounds = 10 * ELECTION_TICKS_MAX
    elected_at = _run_rounds(net, bound_rounds, {3: 3, 2: 1})
    assert elected_at is not None, f"no leader within {bound_rounds} ticks of node 2 (terms: " \
                                   f"2 at {net.nodes[2].term}, 3 at {net.nodes[3].term})"
    assert net.leader() is net.nodes[2]


@pytest.mark.parametrize("check_quorum", [True, False])
@pytest.mark.parametrize("seed", SEEDS)
def test_c2_a_node_whose_term_lags_learns_the_higher_term_from_a_rejection(check_quorum: bool, seed: int) -> None:
    """Node 1 still has configuration {1, 3}: it missed the entry adding 2 while cut off, and ran
    its term far ahead campaigning to 3 alone. 3 (the leader) then crashes. 2 is up to date and
    needs 1's vote, but its requests carry an older term; 1 must answer them with its term (as it
    answers an old-term PreVote) or 2 never catches up and {1, 2}, a majority, stays leaderless."""
    net = Net((1, 3), seed=seed, pre_vote=False, check_quorum=check_quorum)
    net.add_node(2, Stored())
    _leader_of(net, 3)
    net.isolate(1)
    assert net.propose_conf_change(3, ConfChange("add", 2)) is not None
    net.propose(3, b"x")
    assert net.nodes[2].voters == (1, 2, 3) and net.nodes[3].log.committed == net.nodes[2].log.last_index()
    net.tick(1, 20 * ELECTION_TICKS_MAX)
    assert net.nodes[1].term > net.nodes[2].term + 10 and net.nodes[1].voters == (1, 3)
    net.crash(3)
    net.heal()
    bound_rounds = 40 * ELECTION_TICKS_MAX
    elected_at = _run_rounds(net, bound_rounds, {1: 1, 2: 1})
    assert elected_at is not None, f"no leader within {bound_rounds} ticks (terms: 1 at {net.nodes[1].term}, " \
                                   f"2 at {net.nodes[2].term})"
    assert net.leader() is net.nodes[2]


def test_b_a_node_that_knows_its_removal_committed_stays_quiet() -> None:
    """The other side of dissertation 4.2.2: a leader that removed itself and saw the removal
    commit steps down and never campaigns again; the new configuration elects without it."""
    net = Net((1, 2, 3))
    _leader_of(net, 1)
    assert net.propose_conf_change(1, ConfChange("remove", 1)) is not None
    removed = net.nodes[1]
    assert removed.role == FOLLOWER and removed.voters == (2, 3)
    assert removed.log.committed == removed.log.last_index()
    term = removed.term
    net.tick(1, 10 * ELECTION_TICKS_MAX)
    assert removed.term == term and not net.queue, "a node that knows it was removed must not campaign"


def _stale_config_cluster(seed: int, check_quorum: bool, *, stale_is_member: bool) -> Net:
    """The histories of vopr seeds 61915 and 66779 (swarm1), set down directly. History: (1, 2, 3)
    shrank to (4) while node 3 was cut off (3 never heard of it); nodes 1 and 2 know their
    removal committed (snapshot at 5 with voters (4)), so they stay quiet; 4 then proposed adding
    3 back, an entry nobody else has: 4 needs 3's vote. Node 3 still has the old configuration
    (1, 2, 3) -- or, with ``stale_is_member`` false, a configuration (1, 2) it is not in but whose
    change it does not know committed, so it still campaigns (dissertation 4.2.2) -- and asks only
    1 and 2, who are ahead of it and reject it; campaigning while cut off ran its term (5) past
    4's. Election timeouts are fixed at 10 ticks and 3 ticks first in every round: its phase
    leads 4's by more than the width of the timeout range, as in seed 61915 (170-230 ms ahead
    with a 150 ms range)."""
    net = Net((), seed=seed, pre_vote=False, check_quorum=check_quorum, heartbeat_ticks=1,
              election_ticks_min=10, election_ticks_max=10)
    quiet = Snapshot(index=5, term=1, voters=(4,))
    for removed in (1, 2):
        net.add_node(removed, Stored(HardState(term=1, commit=5), quiet))
    add_3 = Entry(6, 2, EntryKind.CONF_CHANGE, ConfChange("add", 3).resolved((4,)).encode())
    net.add_node(4, Stored(HardState(term=2, vote=4, commit=5), quiet, [add_3]))
    if stale_is_member:
        net.add_node(3, Stored(HardState(term=5, commit=2), Snapshot(0, 0, (1, 2, 3)), entries_of_terms([1, 1])))
    else:
        remove_3 = Entry(2, 1, EntryKind.CONF_CHANGE, ConfChange("remove", 3).resolved((1, 2, 3)).encode())
        net.add_node(3, Stored(HardState(term=5, commit=1), Snapshot(0, 0, (1, 2, 3)),
                               [*entries_of_terms([1]), remove_3]))
    assert net.nodes[4].voters == (3, 4) and net.nodes[3].promotable()
    assert not net.nodes[1].promotable() and not net.nodes[2].promotable()
    return net


@pytest.mark.parametrize("stale_is_member", [True, False], ids=["stale-member", "removed-uncommitted"])
@pytest.mark.parametrize("check_quorum", [True, False])
def test_c3_a_candidate_a_majority_found_behind_does_not_spend_its_vote_every_term(
        check_quorum: bool, stale_is_member: bool) -> None:
    """Without PreVote, node 3 campaigns in an out-of-date configuration whose voters are all
    ahead of it: it can never win there, yet each campaign bumps its term and spends its vote on
    itself. Node 4 is not in 3's configuration, so it never sees those terms: its request always
    arrives in a term 3 has already voted in, and {3, 4} stays leaderless for as long as 3's timer
    fires first (seeds 61915 and 66779 of swarm1: 5-9 s). A candidate that a majority of its
    configuration rejected as behind holds off its next campaign for an extra election timeout
    (as a failed PreVote would, dissertation 9.6), which gives the up-to-date node its turn."""
    net = _stale_config_cluster(0, check_quorum, stale_is_member=stale_is_member)
    bound_rounds = 6 * 10
    elected_at = _run_rounds(net, bound_rounds, {3: 1, 4: 1})
    assert elected_at is not None, f"no leader within {bound_rounds} ticks (terms: 3 at {net.nodes[3].term} " \
                                   f"voting for {net.nodes[3].vote}, 4 at {net.nodes[4].term})"
    assert net.leader() is net.nodes[4]
    net.propose(4, b"after")
    assert any(e.data == b"after" for e in net.applied[4]) and net.nodes[3].voters == (3, 4)

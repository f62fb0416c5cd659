"""The core Raft observer: one meaning per event (novacron/raft/events.py), and the cluster fold.

Directed regressions for the two meanings the runtimes used to give ``TermStarted``: the real
managers emitted it on ANY term change (a follower learning a higher term), the simulation only
when a node BECAME candidate (so a candidate re-campaigning after a split vote was not counted).
"""

from __future__ import annotations

from random import Random

from novacron.events import Event, InMemoryEventLog, Recorder
from novacron.raft.events import LeaderCommitted, LeaderElected, LeaderSteppedDown, ManagerCrashed, TermStarted
from novacron.raft.messages import HardState, Message, MessageType, Ready, SoftState
from novacron.raft.node import RaftConfig, RaftNode, Stored
from novacron.raft.observer import Observation, RaftObserver, fold_cluster


def drain(node: RaftNode, observer: RaftObserver, now_s: float) -> list[Observation]:
    found = []
    while node.has_ready():
        ready = node.ready()
        found.extend(observer.observe(ready, now_s))
        node.advance(ready)
    return found


def names(found: list[Observation]) -> list[str]:
    return [o.cls.__name__ for o in found]


def new_node(node_id: int = 1, pre_vote: bool = False) -> RaftNode:
    return RaftNode(RaftConfig(node_id=node_id, pre_vote=pre_vote, check_quorum=False), Random(1),
                    Stored.bootstrap((1, 2, 3)))


def test_a_follower_learning_a_higher_term_starts_no_term() -> None:
    node = new_node()
    observer = RaftObserver(1, term=0, now_s=0.0)
    node.step(Message(type=MessageType.HEARTBEAT, src=2, dst=1, term=5))
    found = drain(node, observer, 0.1)
    assert node.term == 5
    assert "TermStarted" not in names(found)


def test_every_campaign_starts_a_term_also_a_second_one_after_a_split_vote() -> None:
    node = new_node()
    observer = RaftObserver(1, term=0, now_s=0.0)
    node.campaign()
    first = drain(node, observer, 0.2)
    node.campaign()  # no majority answered: the candidate times out and campaigns again
    second = drain(node, observer, 0.5)
    assert [(o.cls, o.fields["term"]) for o in first + second] == [(TermStarted, 1), (TermStarted, 2)]


def test_pre_vote_alone_starts_no_term() -> None:
    node = new_node(pre_vote=True)
    observer = RaftObserver(1, term=0, now_s=0.0)
    node.campaign()
    assert node.role == "pre-candidate"
    assert drain(node, observer, 0.1) == []


def test_leader_elected_carries_the_nodes_own_leaderless_time_and_commit_follows() -> None:
    node = new_node()
    observer = RaftObserver(1, term=0, now_s=1.0)
    node.campaign()
    drain(node, observer, 1.1)
    node.step(Message(type=MessageType.VOTE_RESP, src=2, dst=1, term=1))
    elected = drain(node, observer, 1.25)
    assert names(elected) == ["LeaderElected"]
    assert elected[0].fields == {"manager_id": 1, "term": 1, "leaderless_ms": 250.0}
    last = node.log.last_index()
    node.step(Message(type=MessageType.APPEND_RESP, src=2, dst=1, term=1, index=last))
    assert [(o.cls, o.fields["log_index"]) for o in drain(node, observer, 1.3)] == [(LeaderCommitted, last)]


def test_step_down_is_reported_once() -> None:
    observer = RaftObserver(1, term=3, now_s=0.0)
    observer.observe(Ready(soft_state=SoftState(leader=1, role="leader")), 1.0)
    found = observer.observe(Ready(hard_state=HardState(4, 0, 0), soft_state=SoftState(leader=2, role="follower")),
                             2.0)
    assert [(o.cls, o.fields["term"]) for o in found] == [(LeaderSteppedDown, 4)]
    assert observer.observe(Ready(soft_state=SoftState(leader=0, role="follower")), 3.0) == []


def merged(*rows: tuple[float, type[Event], dict[str, object]]) -> list[Event]:
    clock = [0.0]
    log = InMemoryEventLog()
    recorder = Recorder(log, lambda: clock[0])
    for t_s, cls, fields in rows:
        clock[0] = t_s
        recorder.emit(cls, source="test", **fields)
    return list(log)


def test_fold_measures_failover_and_leaderless_gaps_across_managers() -> None:
    events = merged(
        (0.30, LeaderElected, {"manager_id": 1, "term": 1, "leaderless_ms": 300.0}),
        (0.31, LeaderCommitted, {"manager_id": 1, "term": 1, "log_index": 1}),
        (2.00, ManagerCrashed, {"manager_id": 1, "was_leader": True}),
        (2.25, LeaderElected, {"manager_id": 2, "term": 2, "leaderless_ms": 100.0}),
        (2.26, LeaderCommitted, {"manager_id": 2, "term": 2, "log_index": 2}),
        (3.00, LeaderElected, {"manager_id": 3, "term": 1, "leaderless_ms": 0.0}),  # stale, ignored
    )
    fold, derived = fold_cluster(reversed(events))  # merging order does not matter: sorted by t_s
    assert [round(ms, 6) for ms in fold.leaderless_ms] == [300.0, 250.0]
    assert len(derived) == 1 and derived[0].fields["term"] == 2
    assert round(float(derived[0].fields["failover_ms"]), 6) == 260.0  # type: ignore[arg-type]
    assert round(float(derived[0].fields["elect_ms"]), 6) == 250.0  # type: ignore[arg-type]

"""Hypothesis drives a Raft cluster by hand -- tick, deliver, drop, duplicate, partition, crash,
restart, propose -- and the Figure 3 safety properties are checked after every step."""

from __future__ import annotations

import math
from random import Random

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, precondition, rule

from novacron.raft.linearizability import GET, PUT, Operation, check_history, check_register
from novacron.raft.messages import Entry, Message, MessageType, Snapshot, from_wire, to_wire
from tests.raft_harness import Net

NODE = st.integers(min_value=1, max_value=5)


class RaftMachine(RuleBasedStateMachine):
    @initialize(size=st.sampled_from([3, 5]), pre_vote=st.booleans(), seed=st.integers(0, 2**16))
    def start(self, size: int, pre_vote: bool, seed: int) -> None:
        self.size = size
        self.net = Net(tuple(range(1, size + 1)), seed=seed, pre_vote=pre_vote, check_quorum=pre_vote,
                       election_ticks_min=4, election_ticks_max=8, heartbeat_ticks=1)
        self.cut: set[int] = set()
        self.proposals = 0

    def _id(self, node: int) -> int:
        return (node - 1) % self.size + 1

    @rule(node=NODE, times=st.integers(1, 8))
    def tick(self, node: int, times: int) -> None:
        node = self._id(node)
        if node in self.net.nodes:
            self.net.tick(node, times)

    @precondition(lambda self: bool(self.net.queue))
    @rule(count=st.integers(1, 20))
    def deliver(self, count: int) -> None:
        for _ in range(min(count, len(self.net.queue))):
            m = self.net.queue.popleft()
            if m.src not in self.cut and m.dst not in self.cut:
                self.net.step(m)

    @precondition(lambda self: bool(self.net.queue))
    @rule(position=st.integers(0, 1000))
    def drop(self, position: int) -> None:
        del self.net.queue[position % len(self.net.queue)]

    @precondition(lambda self: bool(self.net.queue))
    @rule(position=st.integers(0, 1000))
    def duplicate_and_reorder(self, position: int) -> None:
        m = self.net.queue[position % len(self.net.queue)]
        self.net.queue.append(m)

    @rule(node=NODE)
    def partition_away(self, node: int) -> None:
        self.cut.add(self._id(node))

    @rule()
    def heal(self) -> None:
        self.cut.clear()

    @rule(node=NODE)
    def crash(self, node: int) -> None:
        node = self._id(node)
        if node in self.net.nodes and len(self.net.nodes) > 1:
            self.net.crash(node)

    @rule(node=NODE)
    def restart(self, node: int) -> None:
        node = self._id(node)
        if node not in self.net.nodes:
            self.net.boot(node)

    @rule(node=NODE)
    def propose(self, node: int) -> None:
        node = self._id(node)
        if node in self.net.nodes:
            self.proposals += 1
            self.net.nodes[node].propose(f"p{self.proposals}".encode())
            self.net._ready(self.net.nodes[node])

    @invariant()
    def applied_prefixes_agree(self) -> None:
        logs = list(self.net.applied.values())
        for a in logs:
            for b in logs:
                n = min(len(a), len(b))
                assert a[:n] == b[:n], "State Machine Safety across applied sequences"


RaftMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=60, deadline=None)
TestRaftStateful = RaftMachine.TestCase


def test_wire_round_trip_through_msgpack() -> None:
    import msgpack

    m = Message(MessageType.SNAPSHOT, 1, 2, 7, index=9, log_term=6, commit=5, entries=(Entry(10, 7, 0, b"x"),),
                reject=True, reject_hint=3, snapshot=Snapshot(9, 6, (1, 2, 3), b"state"), context=b"c")
    assert from_wire(msgpack.unpackb(msgpack.packb(to_wire(m)))) == m


def test_linearizability_accepts_a_sequential_history_and_rejects_a_stale_read() -> None:
    ok = [Operation(1, "k", PUT, "1", 0.0, 1.0), Operation(2, "k", GET, "1", 2.0, 3.0)]
    assert check_history(ok).ok
    stale = [Operation(1, "k", PUT, "1", 0.0, 1.0), Operation(1, "k", PUT, "2", 1.5, 2.0),
             Operation(2, "k", GET, "1", 3.0, 4.0)]
    verdict = check_history(stale)
    assert not verdict.ok and verdict.key == "k"


def test_linearizability_orders_concurrent_operations_either_way() -> None:
    ops = [Operation(1, "k", PUT, "1", 0.0, 5.0), Operation(2, "k", GET, None, 1.0, 2.0),
           Operation(3, "k", GET, "1", 3.0, 4.0)]
    assert check_register(ops)[0]
    flipped = [Operation(1, "k", PUT, "1", 0.0, 5.0), Operation(2, "k", GET, "1", 1.0, 2.0),
               Operation(3, "k", GET, None, 3.0, 4.0)]
    assert not check_register(flipped)[0], "once a read saw the write, a later read cannot miss it"


def test_linearizability_lets_an_unfinished_write_take_effect_or_not() -> None:
    pending = Operation(1, "k", PUT, "1", 0.0, math.inf)
    assert check_register([pending, Operation(2, "k", GET, "1", 3.0, 4.0)])[0]
    assert check_register([pending, Operation(2, "k", GET, None, 3.0, 4.0)])[0]


def test_linearizability_search_stays_small_on_long_histories() -> None:
    rng = Random(3)
    ops, value, t = [], None, 0.0
    for i in range(200):
        if rng.random() < 0.5:
            value = str(i)
            ops.append(Operation(i % 3, "k", PUT, value, t, t + 0.5))
        else:
            ops.append(Operation(i % 3, "k", GET, value, t, t + 0.5))
        t += 1.0
    ok, explored = check_register(ops)
    assert ok and explored <= 2 * len(ops)

"""Model-based test of the sharded store: puts, deletes, node deaths, joins and repairs against a dict.

Rules: at most m nodes die between two repairs (what RS(k, m) promises to survive), puts and deletes
happen any time (a put skips dead nodes: a degraded write); every get
must return the model's value; after a repair nothing is lost and ``audit`` finds every object
fully protected on distinct racks.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from backends.sharded_store import ShardedStore
from novacron.storage.codecs import ReedSolomon
from novacron.storage.domains import PlacementRule, topology
from novacron.storage.hashing import Node

K, M = 3, 2
keys = st.sampled_from([f"obj-{i}" for i in range(12)])


class ShardedStoreMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.tmp = tempfile.TemporaryDirectory()
        self.root = Path(self.tmp.name)
        self.store = ShardedStore(self.root, topology(1, 1, 7, 1), ReedSolomon(K, M),
                                  rule=PlacementRule(count=K + M, level="rack"))
        self.model: dict[str, bytes] = {}
        self.dead_since_repair = 0
        self.joined = 0

    def teardown(self) -> None:
        self.tmp.cleanup()

    @rule(key=keys, value=st.binary(max_size=300))
    def put(self, key: str, value: bytes) -> None:  # also while nodes are dead: a degraded write
        self.store.put(key, value)
        self.model[key] = value

    @rule(key=keys)
    def delete(self, key: str) -> None:
        assert self.store.delete(key) == (key in self.model)
        self.model.pop(key, None)

    @rule(data=st.data())
    @precondition(lambda self: self.dead_since_repair < M
                  and len(self.store.dead_nodes()) < len(self.store.nodes) - K - M)  # repair still has K + M racks
    def kill_a_node(self, data: st.DataObject) -> None:
        live = sorted(name for name in self.store.nodes if name not in self.store.dead_nodes())
        shutil.rmtree(self.root / data.draw(st.sampled_from(live), label="victim"))
        self.dead_since_repair += 1

    @rule()
    @precondition(lambda self: self.joined < 3)
    def join_a_node(self) -> None:
        self.store.add_node(Node(name=f"joined-{self.joined}", rack=f"joined-rack-{self.joined}"))
        self.joined += 1

    @rule()
    def repair(self) -> None:
        report = self.store.repair()
        assert report.lost == []
        assert self.store.audit() == []
        self.dead_since_repair = 0

    @invariant()
    def every_object_reads_back(self) -> None:
        for key in sorted({*self.model, "obj-0", "obj-1"}):
            assert self.store.get(key) == self.model.get(key), key


ShardedStoreMachine.TestCase.settings = settings(max_examples=40, stateful_step_count=25, deadline=None)
TestShardedStore = ShardedStoreMachine.TestCase

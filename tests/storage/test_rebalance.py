"""Imbalance metrics and the reweighting rebalancer, pure and on the real sharded store."""

from __future__ import annotations

import random
from pathlib import Path

import pytest

from backends.sharded_store import ShardedStore
from novacron.storage.codecs import ReedSolomon
from novacron.storage.domains import PlacementRule, topology
from novacron.storage.hashing import Node
from novacron.storage.rebalance import imbalance, reweight


def test_imbalance_names_the_hot_nodes() -> None:
    found = imbalance({"a": 300, "b": 100, "c": 100}, {"a": 1000, "b": 1000, "c": 1000})
    assert found.peak_to_mean == pytest.approx(300 / (500 / 3))
    assert found.hot == ("a",)
    assert imbalance({}, {"a": 10}).peak_to_mean == 1.0


def test_reweight_moves_weight_from_full_to_empty_nodes_in_bounded_steps() -> None:
    nodes = (Node(name="a"), Node(name="b"), Node(name="c"))
    new = {n.name: n.weight for n in reweight(nodes, {"a": 500, "b": 400, "c": 300}, dict.fromkeys("abc", 1000),
                                               max_step=0.2)}
    assert new == {"a": pytest.approx(0.8), "b": pytest.approx(1.0), "c": pytest.approx(1.2)}
    with pytest.raises(ValueError, match=r"max_step=1\.5"):
        reweight(nodes, {}, dict.fromkeys("abc", 1), max_step=1.5)
    with pytest.raises(ValueError, match="capacity of node a=0"):
        imbalance({}, {"a": 0})


def test_rebalancing_a_heterogeneous_store_under_a_move_budget(tmp_path: Path) -> None:
    nodes = topology(1, 1, 10, 2)  # 10 racks for 6 shards: the rule leaves the rebalancer a choice of racks
    capacity = {n.name: (3 if i % 5 == 0 else 1) * 1_000_000 for i, n in enumerate(nodes)}
    store = ShardedStore(tmp_path, nodes, ReedSolomon(4, 2), rule=PlacementRule(count=6, level="rack"))
    rng = random.Random(4)
    values = {f"obj-{i}": rng.randbytes(rng.randint(2_000, 30_000)) for i in range(200)}
    for key, value in values.items():
        store.put(key, value)
    budget = 400_000
    before = imbalance(store.used_bytes(), capacity)
    history = [before.peak_to_mean]
    for _ in range(8):
        store.set_nodes(reweight(tuple(store.nodes.values()), store.used_bytes(), capacity, max_step=0.25))
        report = store.repair(move_budget_bytes=budget)
        assert report.lost == [] and report.shards_rebuilt == 0
        assert report.bytes_moved <= budget
        history.append(imbalance(store.used_bytes(), capacity).peak_to_mean)
    store.repair()  # let the deferred moves finish
    after = imbalance(store.used_bytes(), capacity)
    assert before.hot and not after.hot, history
    assert after.coefficient_of_variation < before.coefficient_of_variation / 3, (before, after)
    assert after.peak_to_mean < before.peak_to_mean
    assert store.audit() == []
    assert all(store.get(key) == value for key, value in values.items())

"""Placement properties: minimal movement on join/leave, failure-domain rules never violated, bounded loads."""

from __future__ import annotations

from collections import Counter

import pytest
from hypothesis import given
from hypothesis import strategies as st

from novacron.storage.bounded import BoundedLoads, assign_all
from novacron.storage.domains import PlacementImpossible, PlacementRule, place, topology, violations
from novacron.storage.hashing import (
    HashRing,
    JumpHash,
    ModuloPlacement,
    Node,
    Placement,
    Rendezvous,
    jump_hash,
    make_placement,
)

KEYS = [f"object-{i}" for i in range(300)]
CONSISTENT = ("ring", "rendezvous", "jump")


def nodes_named(count: int, weights: list[float] | None = None) -> tuple[Node, ...]:
    return tuple(Node(name=f"n{i}", weight=(weights[i] if weights else 1.0)) for i in range(count))


def build(strategy: str, nodes: tuple[Node, ...]) -> Placement:
    return make_placement(strategy, nodes, vnodes=20)


@given(strategy=st.sampled_from(CONSISTENT), count=st.integers(1, 12),
       weights=st.lists(st.floats(0.25, 4.0), min_size=13, max_size=13))
def test_a_join_moves_keys_only_to_the_new_node(strategy: str, count: int, weights: list[float]) -> None:
    weights = [1.0] * 13 if strategy == "jump" else weights
    before = build(strategy, nodes_named(count, weights))
    after = build(strategy, nodes_named(count + 1, weights))
    newcomer = f"n{count}"
    for key in KEYS:
        old, new = before.locate(key), after.locate(key)
        assert new in (old, newcomer), f"{strategy}: {key} moved {old} -> {new}, not to the newcomer"


@given(strategy=st.sampled_from(("ring", "rendezvous")), count=st.integers(2, 12), data=st.data())
def test_a_leave_moves_only_the_leaving_nodes_keys(strategy: str, count: int, data: st.DataObject) -> None:
    nodes = nodes_named(count)
    gone = data.draw(st.integers(0, count - 1), label="leaving node")
    before = build(strategy, nodes)
    after = build(strategy, nodes[:gone] + nodes[gone + 1:])
    for key in KEYS:
        if before.locate(key) != f"n{gone}":
            assert after.locate(key) == before.locate(key), f"{strategy}: {key} moved though n{gone} left"


def test_jump_hash_leave_of_the_last_bucket_moves_only_its_keys() -> None:
    before, after = JumpHash(nodes_named(9)), JumpHash(nodes_named(8))
    assert all(after.locate(k) == before.locate(k) for k in KEYS if before.locate(k) != "n8")


def test_modulo_baseline_fails_the_movement_property() -> None:
    """The property is not vacuous: the non-consistent baseline moves most keys to old nodes."""
    before, after = ModuloPlacement(nodes_named(10)), ModuloPlacement(nodes_named(11))
    wrongly_moved = sum(1 for k in KEYS if after.locate(k) not in (before.locate(k), "n10"))
    assert wrongly_moved > len(KEYS) // 2


def test_weighted_rendezvous_shares_keys_by_weight() -> None:
    nodes = nodes_named(4, [1.0, 2.0, 3.0, 4.0])
    counts = Counter(Rendezvous(nodes).locate(f"k{i}") for i in range(20_000))
    for node in nodes:
        assert counts[node.name] / 20_000 == pytest.approx(node.weight / 10, abs=0.015)


def test_jump_hash_stays_in_range_and_is_even() -> None:
    assert [jump_hash(k, 1) for k in range(5)] == [0] * 5
    assert all(0 <= jump_hash(k, 10) < 10 for k in range(1000))
    spread = Counter(jump_hash(k * 0x9E3779B97F4A7C15 & ((1 << 64) - 1), 4) for k in range(4000))
    assert max(spread.values()) < 1100


topologies = st.tuples(st.integers(1, 3), st.integers(1, 2), st.integers(1, 4), st.integers(1, 3), st.integers(1, 2))
rules = st.builds(PlacementRule, count=st.integers(1, 14),
                  level=st.sampled_from(("host", "rack", "zone", "datacenter")), max_per_domain=st.integers(1, 3))


@given(shape=topologies, rule=rules, strategy=st.sampled_from(("ring", "rendezvous")))
def test_failure_domain_rules_are_never_violated(shape: tuple[int, int, int, int, int], rule: PlacementRule,
                                                  strategy: str) -> None:
    nodes = topology(*shape)
    placement = HashRing(nodes, 10) if strategy == "ring" else Rendezvous(nodes)
    by_name = {n.name: n for n in nodes}
    domains = Counter(n.domain(rule.level) for n in nodes)
    feasible = sum(min(held, rule.max_per_domain) for held in domains.values()) >= rule.count
    for key in KEYS[:40]:
        if not feasible:
            with pytest.raises(PlacementImpossible, match=rule.level):
                place(placement, key, rule)
            continue
        chosen = place(placement, key, rule)
        assert violations(chosen, by_name, rule) == []


@given(shape=topologies, data=st.data())
def test_rule_placement_moves_only_objects_that_touch_the_changed_node(shape: tuple[int, int, int, int, int],
                                                                       data: st.DataObject) -> None:
    nodes = topology(*shape)
    if len(nodes) < 2:
        return
    racks = len({n.rack for n in nodes})
    rule = PlacementRule(count=data.draw(st.integers(1, racks), label="count"), level="rack")
    changed = data.draw(st.integers(0, len(nodes) - 1), label="changed node")
    full, without = Rendezvous(nodes), Rendezvous(nodes[:changed] + nodes[changed + 1:])
    if len({n.rack for n in without.nodes}) < rule.count:
        return
    name = nodes[changed].name
    for key in KEYS[:60]:
        with_node, without_node = place(full, key, rule), place(without, key, rule)
        if name not in with_node:  # a leave of an unchosen node, or a join that is not chosen
            assert with_node == without_node


def test_a_violation_is_reported() -> None:
    nodes = {n.name: n for n in topology(1, 1, 2, 2)}
    same_rack = ("dc0-z0-r0-h0-d0", "dc0-z0-r0-h1-d0")
    assert violations(same_rack, nodes, PlacementRule(count=2, level="rack")) == ["rack dc0-z0-r0 holds 2 > 1"]


@given(count=st.integers(1, 10), epsilon=st.sampled_from((0.05, 0.1, 0.25, 1.0)),
       weights=st.lists(st.floats(0.5, 3.0), min_size=10, max_size=10))
def test_bounded_loads_never_exceed_the_capacity(count: int, epsilon: float, weights: list[float]) -> None:
    ring = HashRing(nodes_named(count, weights), 10)
    bounded = BoundedLoads(ring, epsilon)
    for key in KEYS:
        bounded.assign(key)
    assert sum(bounded.load.values()) == len(KEYS)
    for name, load in bounded.load.items():
        assert load <= bounded.capacity(name, len(KEYS))
    assert assign_all(ring, KEYS, epsilon) == bounded.owner


@pytest.mark.parametrize("bad", [{"weight": 0.0}, {"weight": -1.0}])
def test_bad_node_weight_names_the_field(bad: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="weight="):
        Node(name="n", **bad)


def test_bad_rule_and_strategy_name_the_field() -> None:
    with pytest.raises(ValueError, match="level='shelf'"):
        PlacementRule(count=3, level="shelf")
    with pytest.raises(ValueError, match="strategy='crush'"):
        make_placement("crush", nodes_named(2))

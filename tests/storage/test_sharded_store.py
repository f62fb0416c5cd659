"""The real sharded store: objects erasure-coded over directories; a node deleted, everything re-protected."""

from __future__ import annotations

import random
import shutil
from pathlib import Path

import pytest

from backends.sharded_store import ShardedStore, StoreUnavailable
from novacron.storage.codecs import Codec, ReedSolomon, Replication
from novacron.storage.domains import PlacementRule, topology
from novacron.storage.hashing import Node

NODES = topology(1, 1, 8, 2)  # 8 racks of 2 nodes (16 directories)


def objects(count: int, seed: int = 1) -> dict[str, bytes]:
    rng = random.Random(seed)
    return {f"vm-image/{i}": rng.randbytes(rng.choice((0, 1, 100, 4096, 70_000))) for i in range(count)}


def store_of(tmp_path: Path, codec: Codec) -> ShardedStore:
    return ShardedStore(tmp_path, NODES, codec, rule=PlacementRule(count=codec.shards, level="rack"))


@pytest.mark.parametrize("codec", [ReedSolomon(4, 2), Replication(3)], ids=["rs4+2", "replication3"])
def test_a_deleted_node_is_reconstructed_and_everything_re_protected(tmp_path: Path, codec: Codec) -> None:
    store = store_of(tmp_path, codec)
    data = objects(120)
    for key, value in data.items():
        store.put(key, value)
    assert store.audit() == []
    victim = NODES[3].name
    held = sum(store.path_of(victim, key).exists() for key in data)
    assert held > 0
    shutil.rmtree(tmp_path / victim)  # the node is gone, and nobody told the store

    assert all(store.get(key) == value for key, value in data.items())  # degraded reads
    report = store.repair()
    assert victim not in store.nodes
    assert report.lost == []
    assert report.objects == len(data)
    assert report.shards_rebuilt == held
    assert store.audit() == []
    assert all(store.get(key) == value for key, value in data.items())


def test_m_nodes_lost_at_once_lose_nothing_but_m_plus_one_on_one_object_does(tmp_path: Path) -> None:
    store = store_of(tmp_path, ReedSolomon(4, 2))
    data = objects(60)
    for key, value in data.items():
        store.put(key, value)
    first, second, third = store.targets("vm-image/0")[:3]
    for node in (first, second):
        shutil.rmtree(tmp_path / node)
    assert all(store.get(key) == value for key, value in data.items())
    shutil.rmtree(tmp_path / third)
    assert store.get("vm-image/0") is None  # three of its six shards gone: RS(4,2) cannot decode
    report = store.repair()
    assert "vm-image/0" in report.lost
    survivors = [key for key in data if key not in report.lost]
    assert all(store.get(key) == data[key] for key in survivors)


def test_repeated_failures_with_repair_between_lose_nothing(tmp_path: Path) -> None:
    store = store_of(tmp_path, ReedSolomon(4, 2))
    data = objects(50, seed=2)
    for key, value in data.items():
        store.put(key, value)
    for victim in (NODES[0], NODES[5], NODES[9], NODES[14]):
        shutil.rmtree(tmp_path / victim.name)
        assert store.repair().lost == []
        assert store.audit() == []
    assert all(store.get(key) == value for key, value in data.items())


def test_a_corrupt_shard_is_not_returned_and_repair_rewrites_it(tmp_path: Path) -> None:
    store = store_of(tmp_path, ReedSolomon(4, 2))
    store.put("k", b"payload" * 1000)
    path = store.path_of(store.targets("k")[0], "k")
    blob = bytearray(path.read_bytes())
    blob[40] ^= 0xFF
    path.write_bytes(bytes(blob))
    assert store.get("k") == b"payload" * 1000
    assert store.repair().shards_rebuilt == 1
    assert store.audit() == []


def test_a_joining_node_takes_only_its_share(tmp_path: Path) -> None:
    store = store_of(tmp_path, ReedSolomon(4, 2))
    data = objects(80, seed=3)
    for key, value in data.items():
        store.put(key, value)
    store.add_node(Node(name="new", host="new", rack="rack-new"))
    report = store.repair()
    assert report.shards_rebuilt == 0  # every shard still exists: joins copy, never recompute
    assert report.shards_moved == report.stale_deleted == sum(store.path_of("new", k).exists() for k in data)
    assert store.audit() == []
    assert all(store.get(key) == value for key, value in data.items())


def test_overwrite_delete_and_reopen(tmp_path: Path) -> None:
    store = store_of(tmp_path, ReedSolomon(4, 2))
    store.put("k", b"one")
    store.put("k", b"two", expires_at_s=123.0)
    assert store.get_entry("k") == (b"two", 123.0)
    reopened = store_of(tmp_path, ReedSolomon(4, 2))
    assert reopened.get("k") == b"two"
    reopened.put("k", b"three")
    assert reopened.get_entry("k") == (b"three", None)
    assert reopened.delete("k") is True
    assert reopened.get("k") is None
    assert reopened.delete("k") is False


def test_bad_configuration_names_the_field(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="rule count=3"):
        ShardedStore(tmp_path, NODES, ReedSolomon(4, 2), rule=PlacementRule(count=3))
    store = store_of(tmp_path, Replication(2))
    with pytest.raises(ValueError, match="node='nope'"):
        store.remove_node("nope")


def test_a_write_while_a_node_is_dead_is_degraded_not_a_resurrection(tmp_path: Path) -> None:
    """Regression: a put used to recreate a deleted node's directory (mkdir parents=True), bringing
    the dead node back empty behind repair's back."""
    store = store_of(tmp_path, ReedSolomon(4, 2))
    victim = store.targets("k")[0]
    shutil.rmtree(tmp_path / victim)
    store.put("k", b"written while a node is dead")
    assert not (tmp_path / victim).exists()
    assert store.get("k") == b"written while a node is dead"
    assert store.repair().shards_rebuilt == 1
    assert store.audit() == []
    strict = ShardedStore(tmp_path, [n for n in NODES if n.name != victim], ReedSolomon(4, 2),
                          rule=PlacementRule(count=6, level="rack"), min_shards_written=5)
    for node in strict.targets("k")[:2]:
        shutil.rmtree(tmp_path / node)
    with pytest.raises(StoreUnavailable, match="4 of 6 shards written, 5 needed"):
        strict.put("k", b"x")

"""A real sharded object store: erasure-coded objects placed over directories that stand for nodes.

Theory of operation
-------------------
Each node is a directory ``root/<node name>``. ``put`` encodes the object with the codec
(``novacron.storage.codecs``: RS(k, m) or n-way replication), asks the placement
(``novacron.storage.domains.place`` over rendezvous hashing) for ``codec.shards`` nodes that obey
the failure-domain rule, and writes one shard to each, at ``<node>/<2 hex>/<blake2b(key) hex>``:
a node holds at most one shard of an object, so the path needs no shard index. A shard file is
a header (magic, format, version, shard index, expiry, key length), the key, the shard bytes,
and a BLAKE2b digest over all of it; it is written to a temporary file and renamed over the
target (atomic on POSIX), so a reader sees a whole shard or none. A digest mismatch is a lost
shard, never returned.

``version`` orders writes of one key: the store's counter, resumed past the highest version on
disk when it opens. ``get`` reads the placed nodes first and, if fewer than ``codec.needed``
shards of the newest version are there (a node died, the node set changed since the write),
every other live node; it decodes the newest version that has enough shards.

A node dies when its directory disappears (``rm -rf``, a lost disk) or when ``remove_node`` is
called; ``repair`` notices missing directories itself. Until then a ``put`` skips the dead node's
shard (a degraded write, like an undersized placement group in Ceph) and succeeds if at least
``min_shards_written`` shards landed (default ``codec.needed``: readable, though with less
redundancy until the repair); it never recreates a dead node's directory. ``repair`` then walks every object on
the live nodes and re-protects it against the current node set: shards already on a placed
node stay; a shard on a node the placement no longer wants is copied to a placed node; shards
that exist nowhere are recomputed from any ``needed`` survivors (``Codec.rebuild``); stale
versions and misplaced copies are deleted. An object with fewer than ``needed`` shards left is
reported lost. ``audit`` re-checks every object: all shards present, newest version only, on
nodes that satisfy the rule. One process owns the directories (no locking between stores).
"""

from __future__ import annotations

import hashlib
import math
import os
import shutil
import struct
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from novacron.storage.codecs import Codec, NotEnoughShards
from novacron.storage.domains import PlacementRule, place, violations
from novacron.storage.hashing import Node, Rendezvous

MAGIC = b"NCS1"
FORMAT = 1
HEADER = struct.Struct("<4sBQHdH")  # magic, format, version, shard index, expires_at_s (NaN: never), key length
DIGEST_BYTES = 16


class CorruptShard(ValueError):
    pass


class StoreUnavailable(OSError):
    """Too few live nodes to take a write."""


@dataclass(frozen=True, slots=True)
class Shard:
    key: str
    version: int
    index: int
    expires_at_s: float | None
    data: bytes


@dataclass(slots=True)
class RepairReport:
    objects: int = 0
    shards_rebuilt: int = 0
    shards_moved: int = 0
    stale_deleted: int = 0
    bytes_moved: int = 0
    deferred: int = 0
    """Objects whose moves waited for a later round (the move budget was spent)."""
    lost: list[str] = field(default_factory=list)


def encode_shard(shard: Shard) -> bytes:
    key = shard.key.encode()
    expires = math.nan if shard.expires_at_s is None else shard.expires_at_s
    body = HEADER.pack(MAGIC, FORMAT, shard.version, shard.index, expires, len(key)) + key + shard.data
    return body + hashlib.blake2b(body, digest_size=DIGEST_BYTES).digest()


def decode_shard(blob: bytes) -> Shard:
    if len(blob) < HEADER.size + DIGEST_BYTES:
        raise CorruptShard("short file")
    body, digest = blob[:-DIGEST_BYTES], blob[-DIGEST_BYTES:]
    if hashlib.blake2b(body, digest_size=DIGEST_BYTES).digest() != digest:
        raise CorruptShard("checksum mismatch")
    magic, fmt, version, index, expires, key_len = HEADER.unpack_from(body)
    if magic != MAGIC or fmt != FORMAT:
        raise CorruptShard(f"bad header {magic!r} format {fmt}")
    key = body[HEADER.size:HEADER.size + key_len].decode()
    return Shard(key, version, index, None if math.isnan(expires) else expires, body[HEADER.size + key_len:])


class ShardedStore:
    def __init__(self, root: str | os.PathLike[str], nodes: Sequence[Node], codec: Codec, *,
                 rule: PlacementRule | None = None, fsync: bool = False, min_shards_written: int | None = None
                 ) -> None:
        self.root = Path(root)
        self.codec = codec
        self.rule = rule or PlacementRule(count=codec.shards, level="node")
        if self.rule.count != codec.shards:
            raise ValueError(f"rule count={self.rule.count}; allowed: the codec's shard count {codec.shards}")
        self.fsync = fsync
        self.min_shards_written = codec.needed if min_shards_written is None else min_shards_written
        if not codec.needed <= self.min_shards_written <= codec.shards:
            raise ValueError(f"min_shards_written={min_shards_written}; allowed: {codec.needed} to {codec.shards}")
        self.nodes = {node.name: node for node in nodes}
        self._placement = Rendezvous(tuple(nodes))
        for name in self.nodes:
            (self.root / name).mkdir(parents=True, exist_ok=True)
        self._version = max((shard.version for _node, shard in self._scan()), default=0)

    # -- paths and single shards ------------------------------------------------------------

    @staticmethod
    def _name(key: str) -> str:
        return hashlib.blake2b(key.encode(), digest_size=16).hexdigest()

    def path_of(self, node: str, key: str) -> Path:
        name = self._name(key)
        return self.root / node / name[:2] / name

    def _read(self, node: str, key: str) -> Shard | None:
        try:
            shard = decode_shard(self.path_of(node, key).read_bytes())
        except (OSError, CorruptShard, UnicodeDecodeError):
            return None
        return shard if shard.key == key else None

    def _write(self, node: str, shard: Shard) -> None:
        path = self.path_of(node, shard.key)
        path.parent.mkdir(exist_ok=True)  # not parents: a node whose directory is gone stays gone
        tmp = path.with_name(f".tmp-{path.name}")
        with open(tmp, "wb") as out:
            out.write(encode_shard(shard))
            if self.fsync:
                out.flush()
                os.fsync(out.fileno())
        os.replace(tmp, path)

    def _unlink(self, node: str, key: str) -> bool:
        try:
            self.path_of(node, key).unlink()
        except FileNotFoundError:
            return False
        return True

    # -- the object API -----------------------------------------------------------------------

    def targets(self, key: str) -> tuple[str, ...]:
        return place(self._placement, key, self.rule)

    def put(self, key: str, value: bytes, *, expires_at_s: float | None = None) -> None:
        """Write every shard to its placed node; a node whose directory is gone is skipped (a
        degraded write, re-protected by ``repair``). Fewer than ``min_shards_written`` shards
        written raises ``StoreUnavailable`` (the new version is then not readable)."""
        self._version += 1
        targets = self.targets(key)
        written = 0
        for index, data in enumerate(self.codec.encode(value)):
            try:
                self._write(targets[index], Shard(key, self._version, index, expires_at_s, data))
                written += 1
            except FileNotFoundError:
                pass  # the node is dead (not yet forgotten): this shard waits for repair
        for node in self.nodes.keys() - set(targets):
            self._unlink(node, key)  # an older version placed under another node set
        if written < self.min_shards_written:
            raise StoreUnavailable(f"{key!r}: {written} of {self.codec.shards} shards written, "
                                   f"{self.min_shards_written} needed")

    def get_shard_set(self, key: str) -> tuple[int, dict[int, Shard]] | None:
        """The newest version of ``key`` with enough shards to decode, and those shards."""
        found: dict[int, dict[int, Shard]] = {}
        targets = self.targets(key)
        order = [*targets, *(n for n in self.nodes if n not in targets)]
        for position, node in enumerate(order):
            shard = self._read(node, key)
            if shard is not None:
                found.setdefault(shard.version, {})[shard.index] = shard
            if position == len(targets) - 1 and found and len(found[max(found)]) >= self.codec.shards:
                break  # every placed shard of the newest version is there: no need to look further
        for version in sorted(found, reverse=True):
            if len(found[version]) >= self.codec.needed:
                return version, found[version]
        return None

    def get_entry(self, key: str) -> tuple[bytes, float | None] | None:
        """The value and its expiry time, or None if absent (or lost)."""
        newest = self.get_shard_set(key)
        if newest is None:
            return None
        _version, shards = newest
        try:
            value = self.codec.decode({index: shard.data for index, shard in shards.items()})
        except NotEnoughShards:
            return None
        return value, next(iter(shards.values())).expires_at_s

    def get(self, key: str) -> bytes | None:
        entry = self.get_entry(key)
        return None if entry is None else entry[0]

    def delete(self, key: str) -> bool:
        return sum(self._unlink(node, key) for node in self.nodes) > 0

    def keys(self) -> set[str]:
        return {shard.key for _node, shard in self._scan()}

    def clear(self) -> int:
        keys = self.keys()
        for node in self.nodes:
            if not (self.root / node).is_dir():
                continue
            for child in (self.root / node).iterdir():
                shutil.rmtree(child) if child.is_dir() else child.unlink()
        return len(keys)

    # -- failures and repair ------------------------------------------------------------------

    def _scan(self) -> Iterator[tuple[str, Shard]]:
        for node in self.nodes:
            for path in sorted((self.root / node).glob("*/*")):
                if path.name.startswith(".tmp-"):
                    path.unlink(missing_ok=True)  # a write that never reached its rename
                    continue
                try:
                    yield node, decode_shard(path.read_bytes())
                except (OSError, CorruptShard, UnicodeDecodeError):
                    path.unlink(missing_ok=True)  # corrupt: counts as lost, repair rewrites it

    def remove_node(self, name: str) -> None:
        """Forget a dead node (its data is gone or unreachable); ``repair`` restores the protection."""
        if name not in self.nodes:
            raise ValueError(f"node={name!r}; allowed: one of {sorted(self.nodes)}")
        if len(self.nodes) == 1:
            raise ValueError(f"node={name!r} is the last node; allowed: remove a node while others remain")
        del self.nodes[name]
        self._placement = Rendezvous(tuple(self.nodes.values()))

    def add_node(self, node: Node) -> None:
        if node.name in self.nodes:
            raise ValueError(f"node={node.name!r} is already in the store; allowed: a new name")
        self.nodes[node.name] = node
        self._placement = Rendezvous(tuple(self.nodes.values()))
        (self.root / node.name).mkdir(parents=True, exist_ok=True)

    def set_nodes(self, nodes: Sequence[Node]) -> None:
        """New weights or domains for the same nodes (a rebalancer's reweight); ``repair`` moves the data."""
        if {node.name for node in nodes} != set(self.nodes):
            raise ValueError(f"nodes={sorted(n.name for n in nodes)}; allowed: the store's nodes {sorted(self.nodes)}")
        self.nodes = {node.name: node for node in nodes}
        self._placement = Rendezvous(tuple(nodes))

    def used_bytes(self) -> dict[str, int]:
        """Bytes of shard files per live node."""
        return {name: sum(path.stat().st_size for path in (self.root / name).glob("*/*"))
                for name in self.nodes if (self.root / name).is_dir()}

    def dead_nodes(self) -> list[str]:
        return [name for name in self.nodes if not (self.root / name).is_dir()]

    def forget_dead_nodes(self) -> list[str]:
        """Remove the nodes whose directory disappeared; returns their names."""
        dead = self.dead_nodes()
        for name in dead:
            self.remove_node(name)
        return dead

    def repair(self, *, move_budget_bytes: int | None = None) -> RepairReport:
        """Re-protect every object against the live nodes (see the module docstring).

        ``move_budget_bytes`` caps the bytes copied for objects that lost nothing (a rebalance):
        objects that need a rebuild are always repaired first; the others wait for a later call
        once the budget is spent (``deferred``)."""
        self.forget_dead_nodes()
        report = RepairReport()
        holdings: dict[str, dict[str, Shard]] = {}
        for node, shard in self._scan():
            holdings.setdefault(shard.key, {})[node] = shard
        budget = [math.inf if move_budget_bytes is None else move_budget_bytes]
        for key, held in sorted(holdings.items()):
            report.objects += 1
            self._repair_object(key, held, report, budget)
        return report

    def _repair_object(self, key: str, held: dict[str, Shard], report: RepairReport, budget: list[float]) -> None:
        version = max(shard.version for shard in held.values())
        newest = {node: shard for node, shard in held.items() if shard.version == version}
        by_index = {shard.index: shard for shard in newest.values()}
        if len(by_index) < self.codec.needed:
            report.lost.append(key)
            return
        targets = self.targets(key)
        kept = {shard.index: node for node, shard in newest.items() if node in targets}
        free = [node for node in targets if node not in kept.values()]
        missing = [index for index in range(self.codec.shards) if index not in kept]
        absent = [index for index in missing if index not in by_index]
        if not absent and missing:
            cost = sum(len(by_index[index].data) for index in missing)
            if cost > budget[0]:
                report.deferred += 1
                return
            budget[0] -= cost
        rebuilt = self.codec.rebuild({i: s.data for i, s in by_index.items()}, absent) if absent else {}
        sample = next(iter(newest.values()))
        for index, node in zip(missing, free, strict=True):
            data = rebuilt[index] if index in rebuilt else by_index[index].data
            self._write(node, Shard(key, version, index, sample.expires_at_s, data))
            report.shards_rebuilt += index in rebuilt
            report.shards_moved += index not in rebuilt
            report.bytes_moved += 0 if index in rebuilt else len(data)
        for node in held:
            if node not in targets:
                report.stale_deleted += self._unlink(node, key)

    def audit(self) -> list[str]:
        """Every object that is not fully protected: a shard missing, an old version or a rule broken."""
        problems = []
        holdings: dict[str, dict[str, Shard]] = {}
        for node, shard in self._scan():
            holdings.setdefault(shard.key, {})[node] = shard
        for key, held in sorted(holdings.items()):
            versions = {shard.version for shard in held.values()}
            indices = sorted(shard.index for shard in held.values())
            if len(versions) > 1 or indices != list(range(self.codec.shards)):
                problems.append(f"{key}: versions {sorted(versions)}, shard indices {indices}")
            problems.extend(f"{key}: {problem}" for problem in violations(sorted(held), self.nodes, self.rule))
        return problems

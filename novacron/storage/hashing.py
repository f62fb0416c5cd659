"""Key-to-node placement: modulo (the baseline), a ring with virtual nodes, rendezvous and jump hash.

Theory of operation
-------------------
Every strategy maps a key (a string) to a node name with a 64-bit hash and no shared state, so
any client computes the same answer. They differ in what moves when the node set changes, in
how even the load is, and in cost per lookup (n nodes, m keys):

* ``ModuloPlacement``: ``nodes[h(key) % n]``. Even load, O(1), but a change of n remaps about
  ``1 - 1/(n+1)`` of all keys: the baseline every other strategy is measured against.
* ``HashRing`` (Karger et al., "Consistent hashing and random trees", STOC 1997): each node owns
  ``round(vnodes * weight)`` points on a 64-bit circle; a key belongs to the first point
  clockwise of its hash. A join takes keys only for the new node's arcs and a leave hands only
  the leaving node's keys to its clockwise successors, so about 1/n of the keys move, the
  optimum. With v points per node the heaviest node carries about ``1 + O(sqrt(log n / v))``
  times the mean; lookup is a binary search, O(log(n v)).
* ``Rendezvous`` (highest random weight; Thaler and Ravishankar, IEEE/ACM ToN 1998): a key goes to
  the node with the highest score ``s(key, node)``. Weighted with the logarithmic method
  (Schindelhauer and Schomaker, "Weighted distributed hash tables", SPAA 2005): with ``u`` the
  key-node hash mapped uniformly into (0, 1), ``s = -w / ln(u)``, so node i wins with probability
  ``w_i / sum(w)`` exactly. Movement is optimal (the scores of the other nodes do not depend
  on the new one) and the full descending order is a natural replica ranking; lookup is O(n)
  (vectorised with numpy here).
* ``JumpHash`` (Lamping and Veach, "A fast, minimal memory, consistent hash algorithm", 2014):
  O(log n) arithmetic, no table, perfectly even and optimal movement, but buckets are numbered:
  only the last one can leave, and there are no weights. Suits numbered shards, not hosts that
  fail at random.

``ranking(key)`` (ring and rendezvous) yields every node once, preferred first: the walk that
failure-domain rules (``novacron.storage.domains``) filter. Bounded loads are in
``novacron.storage.bounded``.
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np

MASK64 = (1 << 64) - 1
LEVELS = ("node", "host", "rack", "zone", "datacenter")
"""Failure-domain levels, narrowest first."""


def hash64(data: str) -> int:
    """A stable 64-bit hash (BLAKE2b): the same on every machine and Python run, unlike ``hash()``."""
    return int.from_bytes(hashlib.blake2b(data.encode(), digest_size=8).digest(), "little")


@dataclass(frozen=True, slots=True, kw_only=True)
class Node:
    """A storage node: a name, a relative capacity weight and its failure domains by level."""

    name: str
    weight: float = 1.0
    host: str = ""
    rack: str = ""
    zone: str = ""
    datacenter: str = ""

    def __post_init__(self) -> None:
        if not self.weight > 0:
            raise ValueError(f"node {self.name}: weight={self.weight!r}; allowed: a number > 0")

    def domain(self, level: str) -> str:
        """The node's domain at ``level`` (the node itself for ``node``; its own name if unset)."""
        if level == "node":
            return self.name
        if level not in LEVELS:
            raise ValueError(f"domain level={level!r}; allowed: {', '.join(LEVELS)}")
        return str(getattr(self, level)) or self.name


class Placement(Protocol):
    @property
    def nodes(self) -> tuple[Node, ...]: ...

    def locate(self, key: str) -> str: ...


class RankedPlacement(Placement, Protocol):
    def ranking(self, key: str) -> Iterator[str]: ...


def _check_nodes(nodes: Sequence[Node]) -> tuple[Node, ...]:
    if not nodes:
        raise ValueError("nodes: an empty list; allowed: at least one node")
    names = [n.name for n in nodes]
    if len(set(names)) != len(names):
        raise ValueError(f"nodes: duplicate names in {names}; allowed: distinct names")
    return tuple(nodes)


@dataclass(frozen=True, slots=True)
class ModuloPlacement:
    """``h(key) mod n``: the baseline (even, but almost every key moves when n changes)."""

    nodes: tuple[Node, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "nodes", _check_nodes(self.nodes))

    def locate(self, key: str) -> str:
        return self.nodes[hash64(key) % len(self.nodes)].name


@dataclass(frozen=True, slots=True)
class HashRing:
    """Consistent hashing with ``vnodes`` points per unit of weight."""

    nodes: tuple[Node, ...]
    vnodes: int = 100
    _points: list[int] = field(init=False, repr=False)
    _owners: list[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "nodes", _check_nodes(self.nodes))
        if self.vnodes < 1:
            raise ValueError(f"vnodes={self.vnodes!r}; allowed: an integer >= 1")
        points = sorted((hash64(f"{node.name}#{i}"), node.name)
                        for node in self.nodes for i in range(max(1, round(self.vnodes * node.weight))))
        object.__setattr__(self, "_points", [p for p, _ in points])
        object.__setattr__(self, "_owners", [name for _, name in points])

    def locate(self, key: str) -> str:
        index = bisect.bisect(self._points, hash64(key))
        return self._owners[index % len(self._owners)]

    def ownership(self) -> dict[str, float]:
        """Each node's share of the hash circle: its expected share of infinitely many keys."""
        owned = dict.fromkeys((node.name for node in self.nodes), 0.0)
        for index, owner in enumerate(self._owners):
            owned[owner] += ((self._points[index] - self._points[index - 1]) % (1 << 64)) / (1 << 64)
        if len(self._points) == 1:
            owned[self._owners[0]] = 1.0
        return owned

    def ranking(self, key: str) -> Iterator[str]:
        start = bisect.bisect(self._points, hash64(key))
        seen: set[str] = set()
        total = len(self._owners)
        for step in range(total):
            owner = self._owners[(start + step) % total]
            if owner not in seen:
                seen.add(owner)
                yield owner
                if len(seen) == len(self.nodes):
                    return


def _mix64(values: np.ndarray) -> np.ndarray:
    """splitmix64's finaliser (Steele et al., OOPSLA 2014) on uint64 arrays: a cheap, well-spread mix."""
    z = values.copy()
    z ^= z >> np.uint64(30)
    z *= np.uint64(0xBF58476D1CE4E5B9)
    z ^= z >> np.uint64(27)
    z *= np.uint64(0x94D049BB133111EB)
    z ^= z >> np.uint64(31)
    return z


@dataclass(frozen=True, slots=True)
class Rendezvous:
    """Weighted highest-random-weight hashing: ``-w / ln(u(key, node))``, highest wins."""

    nodes: tuple[Node, ...]
    _seeds: np.ndarray = field(init=False, repr=False)
    _weights: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "nodes", _check_nodes(self.nodes))
        object.__setattr__(self, "_seeds", np.array([hash64(n.name) for n in self.nodes], dtype=np.uint64))
        object.__setattr__(self, "_weights", np.array([n.weight for n in self.nodes], dtype=np.float64))

    def scores(self, key: str) -> np.ndarray:
        mixed = _mix64(self._seeds ^ np.uint64(hash64(key)))
        # the top 53 bits as a float in (0, 1): never 0 (ln 0) nor 1 (division by zero)
        unit = ((mixed >> np.uint64(11)).astype(np.float64) + 0.5) / float(1 << 53)
        scores: np.ndarray = -self._weights / np.log(unit)
        return scores

    def locate(self, key: str) -> str:
        return self.nodes[int(np.argmax(self.scores(key)))].name

    def ranking(self, key: str) -> Iterator[str]:
        for index in np.argsort(-self.scores(key), kind="stable"):
            yield self.nodes[int(index)].name


def jump_hash(key: int, buckets: int) -> int:
    """Lamping and Veach's jump consistent hash: the bucket in ``[0, buckets)`` for a 64-bit key."""
    if buckets < 1:
        raise ValueError(f"buckets={buckets!r}; allowed: an integer >= 1")
    bucket, jump = -1, 0
    while jump < buckets:
        bucket = jump
        key = (key * 2862933555777941757 + 1) & MASK64
        jump = int((bucket + 1) * (float(1 << 31) / float((key >> 33) + 1)))
    return bucket


@dataclass(frozen=True, slots=True)
class JumpHash:
    """Jump hash over numbered buckets (the node list's order): only the last node may leave."""

    nodes: tuple[Node, ...]

    def __post_init__(self) -> None:
        object.__setattr__(self, "nodes", _check_nodes(self.nodes))

    def locate(self, key: str) -> str:
        return self.nodes[jump_hash(hash64(key), len(self.nodes))].name


STRATEGIES = ("modulo", "ring", "rendezvous", "jump")


def make_placement(strategy: str, nodes: Sequence[Node], *, vnodes: int = 100) -> Placement:
    """Build a placement by name (``STRATEGIES``); bounded loads need state, see ``bounded``."""
    if strategy == "modulo":
        return ModuloPlacement(tuple(nodes))
    if strategy == "ring":
        return HashRing(tuple(nodes), vnodes)
    if strategy == "rendezvous":
        return Rendezvous(tuple(nodes))
    if strategy == "jump":
        return JumpHash(tuple(nodes))
    raise ValueError(f"strategy={strategy!r}; allowed: {', '.join(STRATEGIES)}")

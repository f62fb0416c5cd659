"""Consistent hashing with bounded loads: a ring whose nodes refuse keys beyond a capacity.

Theory of operation
-------------------
Mirrokni, Thorup and Zadimoghaddam ("Consistent hashing with bounded loads", SODA 2018): with m
keys on n nodes and a balance parameter epsilon > 0, every node may hold at most
``ceil((1 + epsilon) * m / n)`` keys (here weighted: ``ceil((1 + epsilon) * m * w_i / sum(w))``).
A key walks the ring clockwise from its hash (``HashRing.ranking``) and lands on the first node
with room. So the peak-to-average load is at most ``1 + epsilon`` (plus rounding) by
construction, whatever the ring's own imbalance, and the paper shows a join or leave moves
``O(1 / epsilon**2)`` times the optimal 1/n of the keys in expectation: the price of the bound.

The capacity grows with m as keys arrive, so an assignment that respected it when made still
respects it later. A release lowers m without moving anyone (the paper re-inserts; a store
that cares rebalances in the background). ``assign_all`` replays a sequence of keys, which is
how the benchmark compares the assignments before and after a join or leave.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

from novacron.storage.hashing import HashRing


@dataclass(slots=True)
class BoundedLoads:
    """Stateful key-to-node assignment over ``ring`` with peak load at most ``1 + epsilon`` times the mean."""

    ring: HashRing
    epsilon: float = 0.25
    owner: dict[str, str] = field(default_factory=dict)
    load: dict[str, int] = field(init=False)
    _share: dict[str, float] = field(init=False)

    def __post_init__(self) -> None:
        if not self.epsilon > 0:
            raise ValueError(f"epsilon={self.epsilon!r}; allowed: a number > 0")
        total = sum(node.weight for node in self.ring.nodes)
        self._share = {node.name: node.weight / total for node in self.ring.nodes}
        self.load = dict.fromkeys(self._share, 0)
        for name in self.owner.values():
            self.load[name] += 1

    def capacity(self, name: str, keys: int) -> int:
        """The most keys node ``name`` may hold while ``keys`` keys are assigned."""
        return math.ceil((1 + self.epsilon) * keys * self._share[name])

    def assign(self, key: str) -> str:
        """The key's node (assigning it on first sight)."""
        if key in self.owner:
            return self.owner[key]
        keys = len(self.owner) + 1
        for name in self.ring.ranking(key):
            if self.load[name] < self.capacity(name, keys):
                self.owner[key] = name
                self.load[name] += 1
                return name
        raise AssertionError("unreachable: the total capacity is at least (1 + epsilon) * keys")

    def release(self, key: str) -> None:
        name = self.owner.pop(key, None)
        if name is not None:
            self.load[name] -= 1


def assign_all(ring: HashRing, keys: Iterable[str], epsilon: float) -> dict[str, str]:
    """The assignment of ``keys`` inserted in order: a snapshot to compare across node sets."""
    bounded = BoundedLoads(ring, epsilon)
    for key in keys:
        bounded.assign(key)
    return bounded.owner

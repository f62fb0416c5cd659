"""Storage imbalance metrics and a rebalancer that works by reweighting, a bounded step per round.

Theory of operation
-------------------
With hash placement a shard's node is a function of (key, node set, weights), so a rebalancer
cannot move single shards and stay consistent: it changes weights (as Ceph's ``reweight`` does
for CRUSH) and lets the store move what the new weights place elsewhere. Utilisation is
``used / capacity`` per node; the metrics are the peak over the mean utilisation (the hot spot),
the coefficient of variation, and the nodes above ``hot_ratio`` times the mean.

Each round multiplies every node's weight by ``(mean / utilisation) ** gain``, clamped to
``1 +- max_step``: a node twice as full as the average loses weight, an empty one gains; nodes
within ``dead_band`` of the mean keep their weight (without it the hashing's noise keeps moving
a little data every round). With
rendezvous hashing a weight change of a few percent moves about that fraction of the node's
keys (the shares are exactly proportional to weights), so ``max_step`` bounds the data one
round moves, and the store's ``repair(move_budget_bytes=...)`` caps it in bytes: rebuilding lost
shards always goes first, moves wait for the next round when the budget is spent. Iterating
converges on weights proportional to what each node can hold, including the hashing's own noise.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace

from novacron.storage.hashing import Node


@dataclass(frozen=True, slots=True, kw_only=True)
class Imbalance:
    peak_to_mean: float
    coefficient_of_variation: float
    hot: tuple[str, ...]


def utilisation(used_bytes: Mapping[str, int], capacity_bytes: Mapping[str, int]) -> dict[str, float]:
    for name, capacity in capacity_bytes.items():
        if capacity <= 0:
            raise ValueError(f"capacity of node {name}={capacity!r}; allowed: bytes > 0")
    return {name: used_bytes.get(name, 0) / capacity for name, capacity in capacity_bytes.items()}


def imbalance(used_bytes: Mapping[str, int], capacity_bytes: Mapping[str, int], *,
              hot_ratio: float = 1.2) -> Imbalance:
    shares = utilisation(used_bytes, capacity_bytes)
    mean = sum(shares.values()) / len(shares)
    if mean == 0:
        return Imbalance(peak_to_mean=1.0, coefficient_of_variation=0.0, hot=())
    spread = math.sqrt(sum((u - mean) ** 2 for u in shares.values()) / len(shares))
    hot = tuple(sorted(name for name, u in shares.items() if u > hot_ratio * mean))
    return Imbalance(peak_to_mean=max(shares.values()) / mean, coefficient_of_variation=spread / mean, hot=hot)


def reweight(nodes: Sequence[Node], used_bytes: Mapping[str, int], capacity_bytes: Mapping[str, int], *,
             gain: float = 1.0, max_step: float = 0.25, dead_band: float = 0.05) -> tuple[Node, ...]:
    """The nodes with weights nudged towards equal utilisation (one round; see the module doc)."""
    if not 0 < max_step < 1:
        raise ValueError(f"max_step={max_step!r}; allowed: a fraction in (0, 1)")
    shares = utilisation(used_bytes, capacity_bytes)
    mean = sum(shares.values()) / len(shares)
    if mean == 0:
        return tuple(nodes)
    adjusted = []
    for node in nodes:
        share = shares.get(node.name, 0.0)
        if abs(share / mean - 1) <= dead_band:
            adjusted.append(node)  # close enough: moving data for it would be churn
            continue
        factor = (mean / share) ** gain if share > 0 else 1 + max_step
        adjusted.append(replace(node, weight=node.weight * min(1 + max_step, max(1 - max_step, factor))))
    return tuple(adjusted)

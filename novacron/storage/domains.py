"""Failure-domain rules: choose the nodes for an object's shards so no domain holds too many.

Theory of operation
-------------------
In the spirit of CRUSH rules (Weil et al., "CRUSH: controlled, scalable, decentralized placement
of replicated data", SC 2006; Ceph's ``chooseleaf firstn N type rack``): a ``PlacementRule``
asks for ``count`` nodes (replicas, or the k + m shards of an erasure-coded object) with at
most ``max_per_domain`` of them in any one domain at ``level`` (host, rack, zone or datacenter).
``max_per_domain = 1`` is "every shard on a distinct rack"; RS(10,4) on five racks can take
``max_per_domain = 3``, so losing a rack loses at most 3 <= m = 4 shards.

``place`` walks the key's ranking from a ``RankedPlacement`` (ring or rendezvous) and takes each
node whose domain still has room, until it has ``count``. The choice is therefore a pure
function of (key, node set), and it inherits the ranking's minimal movement in this exact
form: a node that joins and is not chosen changes nothing, and a node that leaves without
having been chosen changes nothing (the greedy walk takes the same steps without it). Only
objects that had a shard on a leaving node, or that give one to a joining node, are touched.
If the topology cannot satisfy the rule (fewer domains than ``count / max_per_domain``), it
raises ``PlacementImpossible`` naming the rule and the domains it found.

``violations`` re-checks a placement against a rule: the property tests, the store's repair and
the durability model use it so a broken rule is a failure, not a silent loss of protection.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from novacron.storage.hashing import LEVELS, Node, RankedPlacement


class PlacementImpossible(ValueError):
    """The topology cannot satisfy the rule."""


@dataclass(frozen=True, slots=True, kw_only=True)
class PlacementRule:
    """``count`` nodes, at most ``max_per_domain`` in any domain at ``level``."""

    count: int
    level: str = "rack"
    max_per_domain: int = 1

    def __post_init__(self) -> None:
        if self.count < 1:
            raise ValueError(f"rule count={self.count!r}; allowed: an integer >= 1")
        if self.level not in LEVELS:
            raise ValueError(f"rule level={self.level!r}; allowed: {', '.join(LEVELS)}")
        if self.max_per_domain < 1:
            raise ValueError(f"rule max_per_domain={self.max_per_domain!r}; allowed: an integer >= 1")

    def describe(self) -> str:
        return f"{self.count} nodes, at most {self.max_per_domain} per {self.level}"


def place(placement: RankedPlacement, key: str, rule: PlacementRule) -> tuple[str, ...]:
    """The nodes for ``key``'s shards (shard i on the i-th), preferred first."""
    by_name = {node.name: node for node in placement.nodes}
    used: Counter[str] = Counter()
    chosen: list[str] = []
    for name in placement.ranking(key):
        domain = by_name[name].domain(rule.level)
        if used[domain] < rule.max_per_domain:
            used[domain] += 1
            chosen.append(name)
            if len(chosen) == rule.count:
                return tuple(chosen)
    domains = sorted({node.domain(rule.level) for node in placement.nodes})
    raise PlacementImpossible(f"rule ({rule.describe()}) cannot be met: {len(placement.nodes)} nodes in "
                              f"{len(domains)} {rule.level} domains")


def violations(chosen: Sequence[str], nodes: Mapping[str, Node], rule: PlacementRule) -> list[str]:
    """Every way ``chosen`` breaks ``rule`` (empty if it holds)."""
    found = []
    if len(chosen) != rule.count:
        found.append(f"{len(chosen)} nodes, the rule wants {rule.count}")
    if len(set(chosen)) != len(chosen):
        found.append(f"a node holds two shards: {list(chosen)}")
    missing = [name for name in chosen if name not in nodes]
    if missing:
        found.append(f"unknown nodes {missing}")
    per_domain = Counter(nodes[name].domain(rule.level) for name in chosen if name in nodes)
    found.extend(f"{rule.level} {domain} holds {held} > {rule.max_per_domain}"
                 for domain, held in sorted(per_domain.items()) if held > rule.max_per_domain)
    return found


def topology(datacenters: int, zones: int, racks: int, hosts: int, disks: int = 1) -> tuple[Node, ...]:
    """A regular tree of nodes (one per disk), named ``dc0-z0-r0-h0-d0``: for tests, benchmarks, scenarios."""
    nodes = []
    for dc in range(datacenters):
        for z in range(zones):
            for r in range(racks):
                for h in range(hosts):
                    for d in range(disks):
                        nodes.append(Node(name=f"dc{dc}-z{z}-r{r}-h{h}-d{d}", host=f"dc{dc}-z{z}-r{r}-h{h}",
                                          rack=f"dc{dc}-z{z}-r{r}", zone=f"dc{dc}-z{z}", datacenter=f"dc{dc}"))
    return tuple(nodes)

"""Placement benchmark: load balance, data moved on join/leave against the 1/n optimum, lookups/s.

Every strategy runs on the same keys in the same process; lookups/s is reported also as a ratio
to modulo hashing (the baseline, measured in the same run), so the machine's load cancels out.
Load balance and movement are deterministic (stable hashes), only the rates vary between runs.

    nice -n 10 .venv/bin/python -m benchmarks.bench_storage_placement [--keys 200000] [--nodes 10,100,1000]

Prints Markdown tables (the ones in benchmarks/RESULTS_storage.md) and the load average.
"""

from __future__ import annotations

import argparse
import os
import time
from collections import Counter
from collections.abc import Callable, Sequence

from novacron.storage.bounded import assign_all
from novacron.storage.domains import PlacementRule, place, topology
from novacron.storage.hashing import HashRing, JumpHash, ModuloPlacement, Node, Placement, Rendezvous

Builder = Callable[[tuple[Node, ...]], Placement]
STRATEGIES: dict[str, Builder] = {
    "modulo (baseline)": ModuloPlacement,
    "ring, 10 vnodes": lambda nodes: HashRing(nodes, 10),
    "ring, 100 vnodes": lambda nodes: HashRing(nodes, 100),
    "rendezvous": Rendezvous,
    "jump": JumpHash,
}
BOUNDED_EPSILON = 0.25


def nodes_of(count: int) -> tuple[Node, ...]:
    return tuple(Node(name=f"n{i}") for i in range(count))


def peak_to_average(owners: Sequence[str], node_count: int) -> float:
    return max(Counter(owners).values()) / (len(owners) / node_count)


def moved_fraction(before: Sequence[str], after: Sequence[str]) -> float:
    return sum(1 for a, b in zip(before, after, strict=True) if a != b) / len(before)


def lookups_per_s(placement: Placement, keys: Sequence[str], repeats: int = 3) -> float:
    """The best of ``repeats`` timed passes (the least disturbed by other jobs on the machine)."""
    sample = keys[: min(len(keys), 20_000 if len(placement.nodes) < 1000 else 5_000)]
    best_s = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for key in sample:
            placement.locate(key)
        best_s = min(best_s, time.perf_counter() - start)
    return len(sample) / best_s


def ring_ownership_peak(ring: HashRing) -> float:
    """The largest share of the hash circle one node owns, over the mean: the ring's exact load
    imbalance for infinitely many keys (the sampled peak adds the keys' own Poisson noise)."""
    return max(ring.ownership().values()) * len(ring.nodes)


def strategy_row(name: str, build: Builder, count: int, keys: Sequence[str], baseline_rate: float) -> str:
    nodes = nodes_of(count)
    placement = build(nodes)
    owners = [placement.locate(k) for k in keys]
    joined = build(nodes_of(count + 1))
    left = build(nodes[:-1]) if name == "jump" else build(nodes[:count // 2] + nodes[count // 2 + 1:])
    join = moved_fraction(owners, [joined.locate(k) for k in keys])
    leave = moved_fraction(owners, [left.locate(k) for k in keys])
    rate = baseline_rate if name.startswith("modulo") else lookups_per_s(placement, keys)
    exact = f"{ring_ownership_peak(placement):.3f}" if isinstance(placement, HashRing) else "1 (uniform)"
    return (f"| {count} | {name} | {peak_to_average(owners, count):.3f} | {exact} "
            f"| {join:.4f} ({join * (count + 1):.2f}x) "
            f"| {leave:.4f} ({leave * count:.2f}x) | {rate:,.0f} | {rate / baseline_rate:.2f} |")


def bounded_row(count: int, keys: Sequence[str], baseline_rate: float) -> str:
    nodes = nodes_of(count)
    owners = assign_all(HashRing(nodes, 100), keys, BOUNDED_EPSILON)
    joined = assign_all(HashRing(nodes_of(count + 1), 100), keys, BOUNDED_EPSILON)
    left = assign_all(HashRing(nodes[:count // 2] + nodes[count // 2 + 1:], 100), keys, BOUNDED_EPSILON)
    before = [owners[k] for k in keys]
    join = moved_fraction(before, [joined[k] for k in keys])
    leave = moved_fraction(before, [left[k] for k in keys])
    start = time.perf_counter()
    assign_all(HashRing(nodes, 100), keys[:20_000], BOUNDED_EPSILON)
    rate = min(len(keys), 20_000) / (time.perf_counter() - start)
    return (f"| {count} | bounded loads, eps {BOUNDED_EPSILON} (ring 100) | {peak_to_average(before, count):.3f} "
            f"| <= {1 + BOUNDED_EPSILON:.2f} "
            f"| {join:.4f} ({join * (count + 1):.2f}x) | {leave:.4f} ({leave * count:.2f}x) | {rate:,.0f} "
            f"| {rate / baseline_rate:.2f} |")


def placement_table(node_counts: Sequence[int], keys: Sequence[str]) -> list[str]:
    lines = ["| nodes | strategy | peak/avg load (keys) | peak/avg (hash space) | moved on join (x optimum 1/(n+1)) "
             "| moved on leave (x optimum 1/n) | lookups/s | lookups/s vs modulo |",
             "|---|---|---|---|---|---|---|---|"]
    for count in node_counts:
        baseline_rate = lookups_per_s(ModuloPlacement(nodes_of(count)), keys)
        lines.extend(strategy_row(name, build, count, keys, baseline_rate) for name, build in STRATEGIES.items())
        lines.append(bounded_row(count, keys, baseline_rate))
    return lines


def weighted_table(keys: Sequence[str]) -> list[str]:
    nodes = tuple(Node(name=f"n{i}", weight=float(w)) for i, w in enumerate((1, 1, 2, 2, 4, 4, 8, 8)))
    total = sum(n.weight for n in nodes)
    lines = ["| strategy | worst share / weight share | mean abs. error of shares |", "|---|---|---|"]
    for name, placement in (("ring, 100 vnodes per unit weight", HashRing(nodes, 100)),
                            ("rendezvous (logarithmic method)", Rendezvous(nodes))):
        counts = Counter(placement.locate(k) for k in keys)
        ratios = [counts[n.name] / len(keys) / (n.weight / total) for n in nodes]
        worst = max(ratios, key=lambda r: abs(r - 1))
        error = sum(abs(counts[n.name] / len(keys) - n.weight / total) for n in nodes) / len(nodes)
        lines.append(f"| {name} | {worst:.3f} | {error:.4f} |")
    return lines


def rule_table(keys: Sequence[str]) -> list[str]:
    """Shards relocated when one node leaves, for k+m shards on distinct racks, against the optimum
    (exactly the shards the leaving node held)."""
    nodes = topology(1, 1, 12, 4)
    lines = ["| rule | placement | shards moved / shards on the leaving node | max shards per rack |",
             "|---|---|---|---|"]
    for label, count in (("3 replicas, distinct racks", 3), ("RS(6,3): 9 shards, distinct racks", 9),
                         ("RS(10,4): 14 shards, <= 2 per rack", 14)):
        rule = PlacementRule(count=count, level="rack", max_per_domain=1 if count < 12 else 2)
        for name, build in (("ring 100", lambda n: HashRing(n, 100)), ("rendezvous", Rendezvous)):
            before_placement, after_placement = build(nodes), build(nodes[:7] + nodes[8:])
            gone, held, moved, worst = nodes[7].name, 0, 0, 0
            for key in keys:
                before, after = place(before_placement, key, rule), place(after_placement, key, rule)  # type: ignore[arg-type]
                held += gone in before
                moved += len(set(after) - set(before))
                worst = max(worst, *Counter(n.split("-h")[0] for n in after).values())
            lines.append(f"| {label} | {name} | {moved / held:.2f} | {worst} |")
    return lines


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keys", type=int, default=200_000)
    parser.add_argument("--nodes", default="10,100,1000")
    args = parser.parse_args(argv)
    keys = [f"object-{i}" for i in range(args.keys)]
    print(f"load average before: {os.getloadavg()}")
    print("\n".join(placement_table([int(n) for n in args.nodes.split(",")], keys)))
    print()
    print("\n".join(weighted_table(keys)))
    print()
    print("\n".join(rule_table(keys[:5_000])))
    print(f"load average after: {os.getloadavg()}")


if __name__ == "__main__":
    main()

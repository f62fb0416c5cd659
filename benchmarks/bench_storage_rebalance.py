"""Rebalancer demonstration: a real sharded store on nodes of unequal capacity, reweighted per round.

    nice -n 10 .venv/bin/python -m benchmarks.bench_storage_rebalance [--objects 300] [--budget 400000]

20 node directories on 10 racks, every fifth node with three times the capacity of the
others, RS(4,2) on distinct racks, objects of 2-30 kB; each round reweights from measured
utilisation and repairs under a move budget. Prints one Markdown row per round.
"""

from __future__ import annotations

import argparse
import random
import tempfile
from collections.abc import Sequence

from backends.sharded_store import ShardedStore
from novacron.storage.codecs import ReedSolomon
from novacron.storage.domains import PlacementRule, topology
from novacron.storage.rebalance import imbalance, reweight


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=300)
    parser.add_argument("--budget", type=int, default=400_000, help="bytes moved per round at most")
    parser.add_argument("--rounds", type=int, default=10)
    args = parser.parse_args(argv)
    nodes = topology(1, 1, 10, 2)
    capacity = {n.name: (3 if i % 5 == 0 else 1) * 1_000_000 for i, n in enumerate(nodes)}
    rng = random.Random(4)
    with tempfile.TemporaryDirectory() as root:
        store = ShardedStore(root, nodes, ReedSolomon(4, 2), rule=PlacementRule(count=6, level="rack"))
        for i in range(args.objects):
            store.put(f"obj-{i}", rng.randbytes(rng.randint(2_000, 30_000)))
        print("| round | peak/mean utilisation | coefficient of variation | hot nodes | bytes moved "
              "| objects deferred |")
        print("|---|---|---|---|---|---|")
        moved, deferred = 0, 0
        for round_index in range(args.rounds + 1):
            found = imbalance(store.used_bytes(), capacity)
            print(f"| {round_index} | {found.peak_to_mean:.3f} | {found.coefficient_of_variation:.3f} "
                  f"| {len(found.hot)} | {moved:,} | {deferred} |")
            store.set_nodes(reweight(tuple(store.nodes.values()), store.used_bytes(), capacity))
            report = store.repair(move_budget_bytes=args.budget)
            moved, deferred = report.bytes_moved, report.deferred


if __name__ == "__main__":
    main()

"""The predictive cache policy against S3-FIFO and W-TinyLFU on the repo's synthetic trace families.

    .venv/bin/python -m benchmarks.cache_predictive

Every policy replays the same keys through the same harness (``novacron.cache.race``), with
Belady's MIN at the same capacity as the ceiling; the goal of issue 20 is to close at least
25 % of the gap between S3-FIFO and Belady on at least two families without losing on the
others. The ``+prefetch`` entries add the learned sequential preloader (``novacron.cache.prefetch``):
hit rates count demand requests only, MIN is then no ceiling (a preloader can pass it), and the
last columns give the preloads as a share of the requests (the extra fetches) and how many of
them a demand request used. The families are the generators of ``novacron.cache.traces`` (the ones
``novacron cache-trace --kind`` writes), with fixed seeds. Results: ``benchmarks/RESULTS_prediction.md``.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence

import numpy as np

from novacron.cache.race import race
from novacron.cache.traces import Request, scan_trace, shifting_trace, vm_image_trace, zipf_trace

POLICIES = ("lru", "s3fifo", "wtinylfu", "predictive", "s3fifo+prefetch", "wtinylfu+prefetch", "predictive+prefetch")
SCORED = ("wtinylfu", "predictive", "s3fifo+prefetch", "wtinylfu+prefetch", "predictive+prefetch")
SEED = 20261130
"""Not the seed the predictive policy was tuned on (12345)."""


def families(requests: int, objects: int) -> dict[str, Callable[[np.random.Generator], list[Request]]]:
    return {
        "zipf-0.8": lambda r: zipf_trace(r, n_objects=objects, alpha=0.8, n_requests=requests),
        "zipf-1.0": lambda r: zipf_trace(r, n_objects=objects, alpha=1.0, n_requests=requests),
        "scan": lambda r: scan_trace(r, n_objects=objects, alpha=0.9, n_requests=requests,
                                     scan_length=objects // 40, scan_every=objects // 4),
        "shift": lambda r: shifting_trace(r, n_objects=objects, alpha=0.9, n_requests=requests, phases=5),
        "vm-image": lambda r: vm_image_trace(r, images=20, blocks_per_image=max(256, objects // 10), vms=200,
                                             n_requests=requests),
    }


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=200_000)
    parser.add_argument("--objects", type=int, default=20_000)
    parser.add_argument("--capacity-pct", type=float, nargs="+", default=[1.0, 5.0])
    parser.add_argument("--seed", type=int, default=SEED, help="trace seed (the committed table's: %(default)s)")
    args = parser.parse_args(argv)
    print("| family | cache items | Belady % | " + " | ".join(f"{p} %" for p in POLICIES) + " | "
          + " | ".join(f"{p}: gap closed" for p in SCORED) + " | preloads % of requests | preloads used % |")
    print("|---|---|---|" + "---|" * (len(POLICIES) + len(SCORED) + 2))
    for family, make in families(args.requests, args.objects).items():
        keys = [r.key for r in make(np.random.default_rng(args.seed))]
        for pct in args.capacity_pct:
            capacity = max(1, int(args.objects * pct / 100))
            results = {r.policy: r for r in race(keys, capacity, POLICIES)}
            closed = [results[p].gap_closed_pct for p in SCORED]
            preloading = results["predictive+prefetch"]
            accuracy = preloading.prefetch_accuracy_pct
            print(f"| {family} | {capacity} | {results['s3fifo'].belady_hit_rate_pct:.2f} | "
                  + " | ".join(f"{results[p].hit_rate_pct:.2f}" for p in POLICIES) + " | "
                  + " | ".join("n/a" if c is None else f"{c:+.1f} %" for c in closed)
                  + f" | {100 * preloading.prefetches / len(keys):.2f} | "
                  + ("n/a" if accuracy is None else f"{accuracy:.1f}") + " |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The vopr's planted-bug detection table and its seeds/s (a command, not a pytest benchmark).

Run (one bug per process, so bugs can run side by side; ``nice`` keeps the machine usable)::

    nice -n 10 .venv/bin/python -m benchmarks.bench_vopr --plant stale-read --seeds 1000 --out runs/vopr
    nice -n 10 .venv/bin/python -m benchmarks.bench_vopr --plant none --seeds 10000 --out runs/vopr
    .venv/bin/python -m benchmarks.bench_vopr --table runs/vopr

Every seed runs to its end (no stop at the first violation), so the detection rate is exact
over the range. *Median seeds to first detection*: from each of ten evenly spaced starting seeds
in the range (0, 100, ..., 900 for 1,000 seeds), count the seeds run until the first one that
detects the bug (the detecting seed included; a start with no detecting seed up to the end of
the range counts as "more than what was left", which only raises the median); the median of
those ten counts. With a detection rate p it estimates the median of a geometric distribution,
about ln 2 / p seeds.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

from novacron.raft.node import RaftNode
from sim.raft.planted_bugs import PLANTED_BUGS
from sim.raft.vopr import GENERATORS, run_seed

STARTS = 10


def seeds_to_first_detection(failing: list[int], first: int, count: int) -> list[float]:
    """From each of ``STARTS`` evenly spaced starts, seeds run until the first detection (inf: none)."""
    found = sorted(failing)
    counts: list[float] = []
    for k in range(STARTS):
        start = first + k * count // STARTS
        hit = next((s for s in found if s >= start), None)
        counts.append(hit - start + 1 if hit is not None else float("inf"))
    return counts


def run(plant: str | None, first: int, count: int, generator: str,
        checkpoint: Callable[[dict[str, object]], None] | None = None,
        commit_broadcast: bool = True) -> dict[str, object]:
    """Run every seed; ``checkpoint`` gets the results so far every 100 seeds (long runs can stop)."""
    node_class = PLANTED_BUGS[plant] if plant else RaftNode
    failing: list[int] = []
    kinds: dict[str, int] = {}
    unknown: list[int] = []
    started_s = time.perf_counter()
    started_cpu_s = time.process_time()
    load_before = os.getloadavg()
    done = 0

    def summary() -> dict[str, object]:
        wall_s = time.perf_counter() - started_s
        cpu_s = time.process_time() - started_cpu_s
        counts = seeds_to_first_detection(failing, first, done)
        return {"plant": plant or "none", "generator": generator, "commit_broadcast": commit_broadcast,
                "first": first, "seeds": done,
                "failing": failing, "violations": kinds, "unknown": unknown, "wall_s": round(wall_s, 1),
                "seeds_per_s": round(done / wall_s, 2), "cpu_s": round(cpu_s, 1),
                "seeds_per_cpu_s": round(done / cpu_s, 2) if cpu_s else None,
                "load_before": load_before, "load_after": os.getloadavg(),
                "to_first_detection": counts, "median_to_first_detection": statistics.median(counts)}

    for seed in range(first, first + count):
        result = run_seed(seed, node_class=node_class, generator=generator, plant=plant,
                          commit_broadcast=commit_broadcast)
        done += 1
        if result.unknown_keys:
            unknown.append(seed)
        if not result.ok:
            failing.append(seed)
            kind = (result.violation or "?").split(":")[0]
            kinds[kind] = kinds.get(kind, 0) + 1
        if checkpoint is not None and done % 100 == 0:
            checkpoint(summary())
    return summary()


def table(directory: Path) -> str:
    rows = ["| bug | detected in | median seeds to first detection (10 starts) | first detecting seeds | "
            "violations | wall | load avg (1 min, before/after) |", "|---|---|---|---|---|---|---|"]
    for path in sorted(directory.glob("*.json")):
        r = json.loads(path.read_text())
        median = r["median_to_first_detection"]
        rate = 100 * len(r["failing"]) / r["seeds"]
        cpu = f", {r['seeds_per_cpu_s']} seeds/CPU-s" if r.get("seeds_per_cpu_s") else ""
        lazy = "" if r.get("commit_broadcast", True) else " (commit broadcast off)"
        rows.append(f"| `{r['plant']}`{lazy} | {len(r['failing'])}/{r['seeds']} ({rate:.1f} %) "
                    f"| {median if median != float('inf') else '>range'} | {r['failing'][:5]} | "
                    f"{', '.join(f'{k} {v}' for k, v in sorted(r['violations'].items()))} | {r['wall_s']} s "
                    f"({r['seeds_per_s']} seeds/s{cpu}) | {r['load_before'][0]:.1f}/{r['load_after'][0]:.1f} |")
    return "\n".join(rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--plant", default="none", help=f"none or one of {', '.join(PLANTED_BUGS)}")
    parser.add_argument("--seeds", type=int, default=1000)
    parser.add_argument("--first-seed", type=int, default=0)
    parser.add_argument("--generator", default="swarm", choices=GENERATORS)
    parser.add_argument("--out", type=Path, default=Path("runs/vopr"))
    parser.add_argument("--table", type=Path, default=None, help="print the table of the results in this folder")
    parser.add_argument("--no-commit-broadcast", dest="commit_broadcast", action="store_false",
                        help="run every plan with RaftConfig.commit_broadcast off (followers learn a commit from "
                             "the next append or heartbeat), as scale-1000/scale-10000's control plane does")
    args = parser.parse_args(argv)
    if args.table is not None:
        print(table(args.table))
        return 0
    if args.plant != "none" and args.plant not in PLANTED_BUGS:
        print(f"--plant {args.plant!r}: allowed: none, {', '.join(PLANTED_BUGS)}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    lazy = "" if args.commit_broadcast else "-no-commit-broadcast"
    path = args.out / f"{args.generator}-{args.plant}-{args.first_seed}{lazy}.json"

    def save(result: dict[str, object]) -> None:
        path.write_text(json.dumps(result, indent=1, default=str))

    result = run(None if args.plant == "none" else args.plant, args.first_seed, args.seeds, args.generator, save,
                 commit_broadcast=args.commit_broadcast)
    save(result)
    print(json.dumps({k: v for k, v in result.items() if k != "failing"}, default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())

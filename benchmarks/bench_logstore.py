"""Latency of one durable ``save`` for each manager log store: SQLite (WAL, FULL) and segment log.

Each save is what a leader persists for one batch of a few synchronous clients' puts: one entry of
``--entry-bytes`` and a hard state whose commit index moved, fsynced before it returns. The stores
take turns save by save (ABBAAB...), in ``--rounds`` rounds of ``--saves`` saves, each round in
fresh directories under ``--dir`` (default /var/tmp: a disk, not tmpfs; the fsync is the point),
and the p50/p99/max of every store's saves are printed.

Run: .venv/bin/python -m benchmarks.bench_logstore --saves 2000 --rounds 2
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from backends.manager.logstore import SQLiteLogStore
from backends.manager.segment_log import SegmentLogStore
from novacron.raft import Entry, HardState, Ready

STORES = {"sqlite": lambda d: SQLiteLogStore(d / "raft.sqlite3"), "segment": lambda d: SegmentLogStore(d / "raft-wal")}


def time_saves(root: Path, saves: int, entry_bytes: int) -> dict[str, list[float]]:
    """Milliseconds per save of ``saves`` one-entry Readies into a new store of each kind, the
    stores taking turns save by save (the first one alternating), so a disk that is slow for a
    while (other processes' fsyncs) is slow for every store alike."""
    stores = {}
    for kind, make in STORES.items():
        (root / kind).mkdir(parents=True)
        stores[kind] = make(root / kind)
        stores[kind].bootstrap((1, 2, 3))
    payload = b"x" * entry_bytes
    took_ms: dict[str, list[float]] = {kind: [] for kind in STORES}
    order = list(stores.items())
    try:
        for i in range(1, saves + 1):
            ready = Ready(entries=[Entry(i, 1, 0, payload)], hard_state=HardState(1, 1, i - 1))
            for kind, store in order if i % 2 else order[::-1]:
                start = time.perf_counter_ns()
                store.save(ready)
                took_ms[kind].append((time.perf_counter_ns() - start) / 1e6)
    finally:
        for store in stores.values():
            store.close()
    return took_ms


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--saves", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--entry-bytes", type=int, default=200)
    parser.add_argument("--dir", type=Path, default=Path("/var/tmp"))
    args = parser.parse_args(argv)
    if args.saves < 1 or args.rounds < 1 or args.entry_bytes < 0:
        print("bench_logstore: --saves and --rounds must be >= 1, --entry-bytes >= 0", file=sys.stderr)
        return 2
    results: dict[str, list[float]] = {kind: [] for kind in STORES}
    root = Path(tempfile.mkdtemp(dir=args.dir, prefix="novacron-bench-logstore-"))
    try:
        for n in range(args.rounds):
            for kind, took_ms in time_saves(root / str(n), args.saves, args.entry_bytes).items():
                results[kind] += took_ms
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"load average before the summary: {os.getloadavg()}")
    for kind, took_ms in results.items():
        p50, p99 = np.percentile(took_ms, [50, 99], method="nearest")
        print(f"{kind:8s} saves {len(took_ms):6d}  p50 {p50:.3f} ms  p99 {p99:.3f} ms  max {max(took_ms):.3f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Latency of one durable ``save`` for each manager log store: SQLite (WAL, FULL) and segment log.

Each save is what a leader persists for one batch of a few synchronous clients' puts: one entry of
``--entry-bytes`` and a hard state whose commit index moved, fsynced before it returns. The stores
take turns in rounds of ``--saves`` saves (ABAB...), each in a fresh directory under ``--dir``
(default: a temporary directory on the disk that holds /var/tmp, not tmpfs: the fsync is the point),
and the p50/p99/max of every store's saves are printed, with the save and fdatasync counts.

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


def time_saves(kind: str, directory: Path, saves: int, entry_bytes: int) -> list[float]:
    """Milliseconds per save of ``saves`` one-entry Readies into a new store of ``kind``."""
    directory.mkdir(parents=True)
    store = STORES[kind](directory)
    store.bootstrap((1, 2, 3))
    payload = b"x" * entry_bytes
    took_ms = []
    try:
        for i in range(1, saves + 1):
            ready = Ready(entries=[Entry(i, 1, 0, payload)], hard_state=HardState(1, 1, i - 1))
            start = time.perf_counter_ns()
            store.save(ready)
            took_ms.append((time.perf_counter_ns() - start) / 1e6)
    finally:
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
            for kind in STORES:
                results[kind] += time_saves(kind, root / f"{kind}-{n}", args.saves, args.entry_bytes)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(f"load average before the summary: {os.getloadavg()}")
    for kind, took_ms in results.items():
        p50, p99 = np.percentile(took_ms, [50, 99], method="nearest")
        print(f"{kind:8s} saves {len(took_ms):6d}  p50 {p50:.3f} ms  p99 {p99:.3f} ms  max {max(took_ms):.3f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())

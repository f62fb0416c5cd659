"""One PySyncObj node for ``bench_managers.py``: a replicated counter loaded with a window of writes.

The node waits for a leader, then keeps ``--window`` non-blocking ``put(payload, callback=...)``
calls in flight from its own process (PySyncObj forwards a follower's commands to the leader),
counts the commands it applied over ``--measure-s`` after ``--warmup-s``, stops the load, waits
until its applied state stops changing, and prints one JSON line: its measured count, whether it
led throughout, and its final state (count and an order-sensitive CRC of every payload).
"""

from __future__ import annotations

import argparse
import json
import threading
import time
import zlib

from pysyncobj import SyncObj, SyncObjConf, replicated


class Counter(SyncObj):  # type: ignore[misc]
    def __init__(self, self_address: str, partners: list[str]) -> None:
        super().__init__(self_address, partners, SyncObjConf())
        self.count = 0
        self.crc = 0

    @replicated  # type: ignore[misc]
    def put(self, payload: str) -> None:
        self.count += 1
        self.crc = zlib.crc32(payload.encode(), self.crc)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--self", dest="self_address", required=True)
    parser.add_argument("--partners", required=True)
    parser.add_argument("--payload-bytes", type=int, required=True)
    parser.add_argument("--window", type=int, required=True)
    parser.add_argument("--warmup-s", type=float, required=True)
    parser.add_argument("--measure-s", type=float, required=True)
    args = parser.parse_args()
    node = Counter(args.self_address, args.partners.split(","))
    deadline = time.monotonic() + 30
    while node._getLeader() is None and time.monotonic() < deadline:
        time.sleep(0.01)

    window = threading.Semaphore(args.window)
    failed = [0]
    running = [True]
    prefix = args.self_address.rsplit(":", 1)[1]

    def done(_result: object, error: int) -> None:
        failed[0] += error != 0
        window.release()

    def load() -> None:
        seq = 0
        while running[0]:
            if window.acquire(timeout=0.1):
                seq += 1
                node.put(f"{prefix}-{seq}".rjust(args.payload_bytes, "x")[-args.payload_bytes:], callback=done)

    loader = threading.Thread(target=load, daemon=True)
    loader.start()
    time.sleep(args.warmup_s)
    leader_at_start, count0, t0 = node._isLeader(), node.count, time.monotonic()
    time.sleep(args.measure_s)
    leader_at_end, count1, t1 = node._isLeader(), node.count, time.monotonic()
    running[0] = False
    loader.join()
    for _ in range(args.window):  # wait (bounded) for the writes still in flight
        window.acquire(timeout=0.01)
    stable_since, last = time.monotonic(), node.count
    while time.monotonic() - stable_since < 2.0:
        time.sleep(0.1)
        if node.count != last:
            stable_since, last = time.monotonic(), node.count
    print(json.dumps({"address": args.self_address, "leader_at_start": leader_at_start,
                      "leader_at_end": leader_at_end, "measured_ops": count1 - count0, "measured_s": t1 - t0,
                      "failed_writes": failed[0], "final_count": node.count, "final_crc": node.crc}), flush=True)
    time.sleep(3.0)  # stay up while the other nodes finish draining
    node.destroy()


if __name__ == "__main__":
    main()

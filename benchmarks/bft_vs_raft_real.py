"""PBFT against Raft with real processes on loopback, in one run: latency and throughput.

Run with::

    nice -n 10 .venv/bin/python -m benchmarks.bft_vs_raft_real [--ops 200] [--sizes 4,7]

For 4 and 7 replicas: the Raft managers (``python -m novacron manager``, ``LocalCluster``, SQLite
fsynced, msgpack over TCP) and the PBFT replicas (``python -m backends.bft.process``,
``LocalBftCluster``, Ed25519, SQLite fsynced, the same framing). Each side:

- latency: ``--ops`` sequential writes from one client, p50/p99 of the wall-clock round trip
  (Raft: propose at the leader until the leader answers committed; PBFT: multicast until f + 1
  matching replies);
- throughput: ``--ops`` writes in total from 16 concurrent closed-loop clients, committed
  operations per wall-clock second.

Loopback only (the LAN case): the WAN case needs a delaying stage on every link (``tc netem`` is
not available here; see LAB.md). All processes share this machine's cores, so the numbers are a
ratio in one run, printed with the load average.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
from pathlib import Path

from backends.bft.client import RemoteBftClient
from backends.bft.localcluster import LocalBftCluster
from backends.bft.process import CLIENT_IDS
from backends.host_load import load_average_text
from backends.manager.client import ManagerClient
from backends.manager.localcluster import LocalCluster
from novacron.statemachine import encode_command
from sim.raft.experiments import percentile

CONCURRENT_CLIENTS = 16


async def raft_round(base: Path, size: int, ops: int) -> tuple[list[float], float]:
    cluster = LocalCluster(base / f"raft{size}", size)
    cluster.start_all()
    try:
        leader = await cluster.wait_for_leader(60.0)
        host, port = cluster.client_addresses[leader["id"]]
        client = await ManagerClient.connect(host, port)
        latencies = []
        for i in range(ops):
            started = time.perf_counter()
            reply = await client.propose(encode_command(op="put", key=f"k{i % 5}", value=str(i)))
            assert reply.get("ok"), reply
            latencies.append(time.perf_counter() - started)
        clients = [await ManagerClient.connect(host, port) for _ in range(CONCURRENT_CLIENTS)]

        async def loop(c: ManagerClient, n: int) -> None:
            for i in range(n):
                reply = await c.propose(encode_command(op="put", key=f"t{i % 5}", value=str(i)))
                assert reply.get("ok"), reply

        started = time.perf_counter()
        await asyncio.gather(*(loop(c, ops // CONCURRENT_CLIENTS) for c in clients))
        throughput = (ops // CONCURRENT_CLIENTS) * CONCURRENT_CLIENTS / (time.perf_counter() - started)
        for c in [client, *clients]:
            await c.close()
        return latencies, throughput
    finally:
        cluster.close()


async def bft_round(base: Path, size: int, ops: int) -> tuple[list[float], float]:
    cluster = LocalBftCluster(base / f"bft{size}", size)
    cluster.start_all()
    clients = [RemoteBftClient(cluster.peers, key_seed=cluster.key_seed, client_id=c)
               for c in CLIENT_IDS[:CONCURRENT_CLIENTS]]
    try:
        first = clients[0]
        deadline = time.monotonic() + 60
        for replica in cluster.peers:
            while await first.status(replica) is None:
                assert time.monotonic() < deadline, cluster.logs()
                await asyncio.sleep(0.1)
        latencies = []
        for i in range(ops):
            started = time.perf_counter()
            assert await first.call(b"put k%d %d" % (i % 5, i)) == b"ok"
            latencies.append(time.perf_counter() - started)

        async def loop(c: RemoteBftClient, n: int) -> None:
            for i in range(n):
                assert await c.call(b"put t%d %d" % (i % 5, i)) == b"ok"

        started = time.perf_counter()
        await asyncio.gather(*(loop(c, ops // CONCURRENT_CLIENTS) for c in clients))
        throughput = (ops // CONCURRENT_CLIENTS) * CONCURRENT_CLIENTS / (time.perf_counter() - started)
        return latencies, throughput
    finally:
        for c in clients:
            await c.close()
        cluster.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ops", type=int, default=200)
    parser.add_argument("--sizes", default="4,7")
    args = parser.parse_args()
    print(f"load average: {load_average_text()}")
    print("| protocol | replicas | p50 ms | p99 ms | ops/s (16 clients) |")
    print("|---|---|---|---|---|")
    with tempfile.TemporaryDirectory(prefix="bft-vs-raft-") as tmp:
        for size in (int(s) for s in args.sizes.split(",")):
            for name, run in (("Raft", raft_round), ("PBFT", bft_round)):
                latencies, throughput = asyncio.run(run(Path(tmp), size, args.ops))
                print(f"| {name} | {size} | {percentile(latencies, 50) * 1000:.1f} | "
                      f"{percentile(latencies, 99) * 1000:.1f} | {throughput:.0f} |", flush=True)
    print(f"load average: {load_average_text()}")


if __name__ == "__main__":
    main()

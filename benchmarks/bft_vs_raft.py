"""PBFT against Raft in one run, same machine, same simulated network: latency, throughput, CPU.

Run with::

    nice -n 10 .venv/bin/python -m benchmarks.bft_vs_raft [--ops 400] [--clients 1,16]

For each protocol, cluster size (4 and 7 replicas) and network profile (``lan``: 0.2 ms RTT;
``wan30``: 30 ms RTT, 100 Mbit/s; ``sim.network.PROFILES``), with no faults:

- commit latency p50/p99 in simulated time, ``--ops`` operations from one closed-loop client:
  PBFT from sending the request to the client's f + 1 matching replies (request, pre-prepare,
  prepare, commit, reply: 2.5 round trips plus batching); Raft from proposing at the leader to the
  leader applying the entry (append + acknowledgement: 1 round trip). Raft's client hop to the
  leader is not counted -- add one round trip for a like-for-like client latency;
- simulated throughput with 16 closed-loop clients: committed operations per simulated second.
  The simulator charges no CPU, so this is the network- and batching-bound ceiling;
- CPU per committed operation, measured (``time.process_time``) for the whole cluster simulated in
  this one process (all replicas' work plus the driver), and the signatures' share of it: the
  time inside Ed25519 sign/verify over the total. This is the CPU-bound side the simulated
  throughput leaves out; ``1e6 / cpu_us`` is what one core could commit.

Numbers are ratios in one run; the load average is printed with them (the machine is shared).
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import replace
from random import Random

from backends.host_load import load_average_text
from novacron.bft.client import BftClient
from novacron.bft.crypto import Ed25519Keyring
from novacron.bft.messages import Signed
from novacron.raft.messages import Entry
from novacron.statemachine import encode_command
from sim.bft.cluster import SIM_REPLICA, BftCluster, BftSettings
from sim.network import PROFILES, NetworkModel
from sim.raft.cluster import ClusterSettings, Hook, Manager, RaftCluster
from sim.raft.experiments import percentile

CLIENT_BASE = 100


class TimedKeyring:
    """An Ed25519 keyring that adds up the CPU time spent signing and verifying."""

    def __init__(self, inner: Ed25519Keyring) -> None:
        self.inner = inner
        self.crypto_s = 0.0
        self.signs = 0
        self.verifies = 0

    def signer(self, identity: int) -> TimedSigner:
        return TimedSigner(self, identity)

    def verify(self, identity: int, data: bytes, signature: bytes) -> bool:
        started = time.process_time()
        ok = self.inner.verify(identity, data, signature)
        self.crypto_s += time.process_time() - started
        self.verifies += 1
        return ok


class TimedSigner:
    def __init__(self, keyring: TimedKeyring, identity: int) -> None:
        self.keyring = keyring
        self.identity = identity
        self._inner = keyring.inner.signer(identity)

    def sign(self, data: bytes) -> bytes:
        started = time.process_time()
        signature = self._inner.sign(data)
        self.keyring.crypto_s += time.process_time() - started
        self.keyring.signs += 1
        return signature


def run_bft(replicas: int, profile: str, clients: int, ops: int) -> dict[str, float]:
    keyring = TimedKeyring(Ed25519Keyring(1, [*range(1, replicas + 1), *range(CLIENT_BASE, CLIENT_BASE + clients)]))
    cluster = BftCluster(BftSettings(tick_s=0.010, bft=replace(SIM_REPLICA, replicas=replicas, view_change_ticks=100)),
                         NetworkModel(PROFILES[profile], Random(1)), Random(1), keyring)  # type: ignore[arg-type]
    f = (replicas - 1) // 3
    bft_clients = {c: BftClient(c, keyring.signer(c), keyring, f, replicas)
                   for c in range(CLIENT_BASE, CLIENT_BASE + clients)}
    sent_s: dict[int, float] = {}
    latencies: list[float] = []

    def issue(client_id: int) -> None:
        if len(latencies) + len(sent_s) >= ops:
            return
        request = bft_clients[client_id].request(b"put k%d %d" % (client_id, len(latencies)))
        sent_s[client_id] = cluster.now_s
        cluster.send_request(client_id, request)

    def inbox(client_id: int, message: Signed) -> None:
        if bft_clients[client_id].on_reply(message) is not None:
            latencies.append(cluster.now_s - sent_s.pop(client_id))
            issue(client_id)

    cluster.client_inbox = inbox
    return _measure(cluster.run_until, lambda: cluster.now_s, clients, issue, latencies, ops, keyring)


class _RaftClients(Hook):
    def __init__(self, ops: int) -> None:
        self.ops = ops
        self.waiting: dict[int, tuple[int, float]] = {}
        self.latencies: list[float] = []
        self.issue: Callable[[int], None] = lambda client: None

    def applied(self, cluster: RaftCluster, manager: Manager, entry: Entry) -> None:
        leader = cluster.leader()
        if leader is None or manager.node_id != leader.id:
            return
        for client, (index, at_s) in list(self.waiting.items()):
            if index == entry.index:
                del self.waiting[client]
                self.latencies.append(cluster.now_s - at_s)
                self.issue(client)


def run_raft(replicas: int, profile: str, clients: int, ops: int) -> dict[str, float]:
    hook = _RaftClients(ops)
    cluster = RaftCluster(ClusterSettings(managers=replicas), NetworkModel(PROFILES[profile], Random(1)), Random(1),
                          hooks=[hook])
    cluster.run_until(3.0, stop=lambda: cluster.leader() is not None)

    def issue(client: int) -> None:
        leader = cluster.leader()
        if leader is None or len(hook.latencies) + len(hook.waiting) >= ops:
            return
        placed = cluster.propose(leader.id, encode_command(op="put", key=f"k{client}", value=str(len(hook.latencies))))
        if placed is not None:
            hook.waiting[client] = (placed[0], cluster.now_s)

    hook.issue = issue
    return _measure(cluster.run_until, lambda: cluster.now_s, clients, issue, hook.latencies, ops, None)


def _measure(run_until: Callable[..., bool], now_s: Callable[[], float], clients: int, issue: Callable[[int], None],
             latencies: list[float], ops: int, keyring: TimedKeyring | None) -> dict[str, float]:
    started_cpu_s = time.process_time()
    crypto_before_s = keyring.crypto_s if keyring is not None else 0.0
    start_s = now_s()
    for client in range(CLIENT_BASE, CLIENT_BASE + clients):
        issue(client)
    run_until(start_s + 600.0, stop=lambda: len(latencies) >= ops)
    cpu_s = time.process_time() - started_cpu_s
    crypto_s = (keyring.crypto_s - crypto_before_s) if keyring is not None else 0.0
    done = max(1, len(latencies))
    return {"p50_ms": percentile(latencies, 50) * 1000, "p99_ms": percentile(latencies, 99) * 1000,
            "ops_s": done / max(now_s() - start_s, 1e-9), "cpu_us": cpu_s / done * 1e6,
            "crypto_share": crypto_s / cpu_s if cpu_s else 0.0, "done": float(len(latencies))}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--ops", type=int, default=400)
    args = parser.parse_args()
    print(f"load average: {load_average_text()}")
    print("| protocol | replicas | network | clients | p50 ms | p99 ms | ops/s (sim) | CPU us/op | signatures share |")
    print("|---|---|---|---|---|---|---|---|---|")
    for replicas in (4, 7):
        for profile in ("lan", "wan30"):
            for clients in (1, 16):
                for name, run in (("Raft", run_raft), ("PBFT", run_bft)):
                    r = run(replicas, profile, clients, args.ops)
                    share = f"{r['crypto_share'] * 100:.0f} %" if name == "PBFT" else "-"
                    print(f"| {name} | {replicas} | {profile} | {clients} | {r['p50_ms']:.2f} | {r['p99_ms']:.2f} | "
                          f"{r['ops_s']:.0f} | {r['cpu_us']:.0f} | {share} |", flush=True)
    print(f"load average: {load_average_text()}")


if __name__ == "__main__":
    main()

"""Committed proposals per second: three real NovaCron managers against three PySyncObj nodes.

Both clusters run as three OS processes on loopback on this machine, in the same benchmark
run, with the same payloads (10 B and 1 KB) and the same writes in flight: ``LOADERS`` (3)
load generators with ``WINDOW`` (1000) writes in flight each. For PySyncObj there is one per
node, as LAB.md measured it (followers forward to the leader); for the managers, three
connections from the benchmark process to the leader (followers would only redirect).
Throughput is counted on the leader (commands it applied) over ``MEASURE_S`` seconds after
``WARMUP_S`` seconds of load. After the load stops every replica must reach the same state:
same applied index and state digest for the managers, same count and order-sensitive CRC for
PySyncObj. A throughput is only reported together with ``replicas_equal`` (LAB.md).

The NovaCron managers fsync every Ready (SQLite WAL, ``synchronous=FULL``); PySyncObj runs with
its defaults, which keep the journal in memory.

Run: PYTHONPATH=. /work/venv/bin/python -m pytest benchmarks/bench_managers.py --benchmark-enable
     -p no:cacheprovider -o testpaths=benchmarks -o python_files='bench_*.py' -s
"""

from __future__ import annotations

import asyncio
import itertools
import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from backends.manager.client import ManagerClient
from backends.manager.framing import FrameDecoder, encode_frame
from backends.manager.localcluster import LocalCluster
from backends.ports import free_ports
from novacron.statemachine import encode_command

WINDOW = int(os.environ.get("NOVACRON_BENCH_WINDOW", "1000"))
"""Writes in flight per load generator; both systems get ``LOADERS`` generators (LAB.md's setup)."""
LOADERS = 3
WARMUP_S = float(os.environ.get("NOVACRON_BENCH_WARMUP_S", "2"))
MEASURE_S = float(os.environ.get("NOVACRON_BENCH_MEASURE_S", "10"))
KEYS = 1000
"""Commands cycle over this many keys so state (and snapshots) stay small on both sides."""
PYSYNCOBJ_NODE = Path(__file__).with_name("pysyncobj_node.py")
RESULTS: dict[str, dict[str, Any]] = {}


def payload(seq: int, size: int) -> str:
    """``size`` bytes that differ per command, so replicas that skipped one end up different."""
    return str(seq).rjust(size, "x")[-size:]


# -- NovaCron managers -------------------------------------------------------------------------


class ProposalLoad(asyncio.Protocol):
    """Keeps ``window`` proposals in flight on one connection: each reply sends the next request.

    A plain protocol rather than a task per request, so the load generator spends a few
    microseconds per command and the managers, not the client, are what is measured."""

    def __init__(self, window: int, size: int, seqs: Iterator[int]) -> None:
        self.window, self.size, self.seqs = window, size, seqs
        self.decoder = FrameDecoder()
        self.transport: asyncio.Transport | None = None
        self.running = True
        self.in_flight = 0
        self.acknowledged = 0
        self.failed = 0
        self.drained = asyncio.get_running_loop().create_future()

    def request(self) -> bytes:
        seq = next(self.seqs)
        command = encode_command(op="put", key=f"k{seq % KEYS}", value=payload(seq, self.size))
        self.in_flight += 1
        return encode_frame({"id": seq, "op": "propose", "data": command})

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport
        transport.write(b"".join(self.request() for _ in range(self.window)))

    def data_received(self, data: bytes) -> None:
        more = []
        for reply in self.decoder.feed(data):
            self.in_flight -= 1
            if reply["ok"]:
                self.acknowledged += 1
            else:
                self.failed += 1
            if self.running:
                more.append(self.request())
        if more and self.transport is not None:
            self.transport.write(b"".join(more))
        if not self.running and self.in_flight == 0 and not self.drained.done():
            self.drained.set_result(None)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.drained.done():
            self.drained.set_result(None)


async def _novacron_load(cluster: LocalCluster, size: int) -> dict[str, Any]:
    leader = await cluster.wait_for_leader()
    host, port = cluster.client_addresses[leader["id"]]
    client = await ManagerClient.connect(host, port)
    seqs = itertools.count()
    loop = asyncio.get_running_loop()
    loads = []
    for _ in range(LOADERS):
        _, load = await loop.create_connection(lambda: ProposalLoad(WINDOW, size, seqs), host, port)
        loads.append(load)
    await asyncio.sleep(WARMUP_S)
    start, t0 = await client.status(), time.monotonic()
    await asyncio.sleep(MEASURE_S)
    end, t1 = await client.status(), time.monotonic()
    for load in loads:
        load.running = False
    drained = True
    try:
        await asyncio.wait_for(asyncio.gather(*(load.drained for load in loads)), 60)
    except TimeoutError:
        drained = False
    for load in loads:
        assert load.transport is not None
        load.transport.close()
    await client.close()
    failed = sum(load.failed for load in loads)
    throughput = (end["commands_applied"] - start["commands_applied"]) / (t1 - t0)
    same_leader = start["term"] == end["term"] and end["role"] == "leader"
    return {"throughput_ops_s": round(throughput), "failed_writes": failed, "same_leader": same_leader,
            "all_answered": drained, "replicas_equal": await _novacron_replicas_equal(cluster)}


async def _novacron_replicas_equal(cluster: LocalCluster, timeout_s: float = 30.0) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        digests = []
        for host, port in cluster.client_addresses.values():
            client = await ManagerClient.connect(host, port)
            digests.append(await client.request("digest"))
            await client.close()
        if len({(d["applied"], d["digest"]) for d in digests}) == 1:
            return True
        await asyncio.sleep(0.2)
    return False


def run_novacron(size: int, base_dir: Path) -> dict[str, Any]:
    cluster = LocalCluster(base_dir)
    try:
        cluster.start_all()
        return asyncio.run(_novacron_load(cluster, size))
    finally:
        cluster.close()


# -- PySyncObj ---------------------------------------------------------------------------------


def run_pysyncobj(size: int, base_dir: Path) -> dict[str, Any]:
    pytest.importorskip("pysyncobj")
    ports = free_ports(3)
    addresses = [f"127.0.0.1:{p}" for p in ports]
    processes = []
    base_dir.mkdir(parents=True, exist_ok=True)
    try:
        for i, address in enumerate(addresses):
            partners = ",".join(a for a in addresses if a != address)
            cmd = [sys.executable, str(PYSYNCOBJ_NODE), "--self", address, "--partners", partners,
                   "--payload-bytes", str(size), "--window", str(WINDOW), "--warmup-s", str(WARMUP_S),
                   "--measure-s", str(MEASURE_S)]
            stderr = (base_dir / f"pysyncobj-{i}.log").open("wb")
            processes.append(subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=stderr))
            stderr.close()
        reports = [json.loads(p.communicate(timeout=WARMUP_S + MEASURE_S + 120)[0]) for p in processes]
    finally:
        for p in processes:
            if p.poll() is None:
                p.kill()
                p.wait()
    leaders = [r for r in reports if r["leader_at_start"] and r["leader_at_end"]]
    throughput = leaders[0]["measured_ops"] / leaders[0]["measured_s"] if len(leaders) == 1 else 0.0
    finals = {(r["final_count"], r["final_crc"]) for r in reports}
    return {"throughput_ops_s": round(throughput), "failed_writes": sum(r["failed_writes"] for r in reports),
            "same_leader": len(leaders) == 1, "replicas_equal": len(finals) == 1,
            "final_counts": [r["final_count"] for r in reports]}


# -- the benchmarks ----------------------------------------------------------------------------


def _record(name: str, benchmark: Any, result: dict[str, Any]) -> None:
    RESULTS[name] = result
    benchmark.extra_info.update(result)
    print(f"\n{name}: {json.dumps(result)}")


RUNNERS = {"novacron": run_novacron, "pysyncobj": run_pysyncobj}


@pytest.mark.parametrize(("payload_bytes", "system"),
                         [(10, "novacron"), (10, "pysyncobj"), (1024, "novacron"), (1024, "pysyncobj")])
def test_committed_proposals_per_second(benchmark: Any, payload_bytes: int, system: str, tmp_path: Path) -> None:
    """Interleaved (each payload: managers, then PySyncObj) so a change in the machine's load hits both."""
    benchmark.group = f"managers-{payload_bytes}B"
    result = benchmark.pedantic(RUNNERS[system], args=(payload_bytes, tmp_path / system), rounds=1, iterations=1)
    _record(f"{system}-{payload_bytes}B", benchmark, result)
    assert result["replicas_equal"], result
    ours, theirs = RESULTS.get(f"novacron-{payload_bytes}B"), RESULTS.get(f"pysyncobj-{payload_bytes}B")
    if ours is not None and theirs is not None:
        ratio = ours["throughput_ops_s"] / max(1, theirs["throughput_ops_s"])
        print(f"novacron / pysyncobj at {payload_bytes} B: {ratio:.2f}x")

"""Real managers against their peers, one load generator for all: latency and throughput.

Theory of operation
-------------------
Four three-member clusters on loopback, started one after the other in the same run and
measured back to back (so a change in this shared machine's load hits all of them):

- ``novacron``: ``novacron manager`` processes (Raft log in the segment log, one fdatasync per
  save: every entry fsynced on a majority before a client hears "ok"); ``novacron-sqlite`` the
  same with ``--log-store sqlite`` (WAL, ``synchronous=FULL``), and ``novacron-baseline`` the
  managers of another source tree (``NOVACRON_BASELINE_ROOT``, e.g. ``git archive main``);
- ``pysyncobj-default`` and ``pysyncobj-tuned``: PySyncObj 0.3.17 behind the managers' client
  protocol (``pysyncobj_server.py``), at its defaults and with ``appendEntriesUseBatch=False``;
  journal in memory in both (nothing fsynced);
- ``etcd``: etcd 3.4 (Debian ``etcd-server``), WAL fdatasync'd on every member before it
  acknowledges; driven through its HTTP/JSON gateway (``POST /v3/kv/put``), because the load
  generator speaks plain TCP to everyone -- the gateway costs etcd a loopback gRPC hop per put.

The load generator (this process, asyncio) sends every put to the leader over persistent
connections. Closed loop: ``C`` synchronous clients (1, 16, 64), each waiting for its answer
before the next put. Open loop: puts offered at a fixed rate (etcd's ``check perf`` levels: 150,
1,000 and 8,000 puts/s, from up to 50, 200 and 500 connections as its clients), each put's latency
counted from the moment it was *due* (not sent), so a system that falls behind is charged for
the queue (no coordinated omission). Each level: ``--warmup-s`` of load, then ``--measure-s``
counted: throughput is the puts completed in the window per second; p50/p99/max over the puts
*started* (closed loop) or *due* (open loop) in the window. After
the load every cluster's replicas must agree (same applied count and digest or revision).
The load generator is Python on the same 2 cores: at 64 clients it is a large share of the CPU;
it is the same generator for every system.

Run: ``.venv/bin/python -m benchmarks.managers_vs_peers --out /tmp/mvp`` (writes results.json and
prints a Markdown table with the load average next to every row); ``--quick`` is the CI smoke.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable, Hashable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from backends.host_load import load_average_text
from backends.manager.framing import FrameDecoder, encode_frame
from backends.manager.localcluster import REPO_ROOT, LocalCluster
from backends.ports import free_ports
from novacron.statemachine import encode_command

VALUE_BYTES = 10
KEYS = 1000
CLOSED_CLIENTS = (1, 16, 64)
OPEN_RATES = (150, 1000, 8000)
"""``etcdctl check perf`` offers 150, 1,000, 8,000 and 15,000 puts/s (loads s, m, l, xl)..."""
OPEN_CLIENTS = {150: 50, 1000: 200, 8000: 500}
"""... from 50, 200, 500 (and 1,000) clients: the connections an open-loop level may use at once."""
SYSTEMS = ("novacron", "pysyncobj-default", "pysyncobj-tuned", "etcd", "novacron-baseline", "novacron-sqlite",
           "novacron-lazy-commit")
DURABILITY = {"novacron": "fdatasync on a majority before ack (segment log)",
              "novacron-sqlite": "fsync on a majority before ack (SQLite WAL, synchronous=FULL)",
              "novacron-baseline": "fsync on a majority before ack (the baseline tree's log store)",
              "novacron-lazy-commit": "fdatasync on a majority before ack (segment log, --commit-broadcast off)",
              "pysyncobj-default": "none (journal in memory)",
              "pysyncobj-tuned": "none (journal in memory)",
              "etcd": "fdatasync of the WAL on a majority before ack"}


class PutClient(Protocol):
    async def put(self, key: str, value: bytes) -> None: ...

    async def close(self) -> None: ...


class FramedClient:
    """The managers' protocol (and the PySyncObj front end's): one request in flight."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, novacron: bool) -> None:
        self.reader, self.writer, self.novacron = reader, writer, novacron
        self.decoder = FrameDecoder()
        self.next_id = 0

    async def request(self, message: dict[str, Any]) -> dict[str, Any]:
        self.next_id += 1
        self.writer.write(encode_frame({"id": self.next_id, **message}))
        while True:
            for reply in self.decoder.feed(await self.reader.read(1 << 16) or _eof()):
                if reply["id"] == self.next_id:
                    return dict(reply)

    async def put(self, key: str, value: bytes) -> None:
        data = encode_command(op="put", key=key, value=value.decode()) if self.novacron else value
        reply = await self.request({"op": "propose", "data": data})
        if not reply["ok"]:
            raise RuntimeError(f"put failed: {reply}")

    async def close(self) -> None:
        self.writer.close()


def _eof() -> bytes:
    raise ConnectionError("the server closed the connection")


class EtcdHttpClient:
    """etcd's v3 JSON gateway over one keep-alive HTTP/1.1 connection."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, host: str) -> None:
        self.reader, self.writer, self.host = reader, writer, host

    async def call(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        payload = json.dumps(body).encode()
        self.writer.write(f"POST {path} HTTP/1.1\r\nHost: {self.host}\r\nContent-Type: application/json\r\n"
                          f"Content-Length: {len(payload)}\r\n\r\n".encode() + payload)
        head = await self.reader.readuntil(b"\r\n\r\n")
        status = int(head.split(b" ", 2)[1])
        headers = {k.strip().lower(): v.strip() for k, _, v in
                   (line.partition(b":") for line in head.split(b"\r\n")[1:] if line)}
        if b"content-length" in headers:
            body_bytes = await self.reader.readexactly(int(headers[b"content-length"]))
        else:  # chunked
            body_bytes = b""
            while size := int((await self.reader.readuntil(b"\r\n")).strip(), 16):
                body_bytes += await self.reader.readexactly(size + 2)
            await self.reader.readuntil(b"\r\n")
        if status != 200:
            raise RuntimeError(f"etcd {path}: HTTP {status}: {body_bytes[:200]!r}")
        return dict(json.loads(body_bytes))

    async def put(self, key: str, value: bytes) -> None:
        await self.call("/v3/kv/put", {"key": base64.b64encode(key.encode()).decode(),
                                       "value": base64.b64encode(value).decode()})

    async def close(self) -> None:
        self.writer.close()


# -- the clusters ------------------------------------------------------------------------------


@dataclass
class Cluster:
    name: str
    leader: tuple[str, int]
    connect: Callable[[], Awaitable[PutClient]]
    replicas_equal: Callable[[], Awaitable[bool]]
    stop: Callable[[], None]


async def _framed(address: tuple[str, int], novacron: bool) -> FramedClient:
    reader, writer = await asyncio.open_connection(*address)
    return FramedClient(reader, writer, novacron)


async def start_novacron(work: Path, repo_root: Path = REPO_ROOT, name: str = "novacron",
                         extra_args: tuple[str, ...] = ()) -> Cluster:
    cluster = LocalCluster(work / name, repo_root=repo_root, extra_args=extra_args)
    cluster.start_all()
    try:
        leader = await cluster.wait_for_leader()
    except BaseException:
        cluster.close()
        raise
    address = cluster.client_addresses[leader["id"]]

    async def digests() -> list[tuple[Any, Any]]:
        out = []
        for other in cluster.client_addresses.values():
            client = await _framed(other, True)
            reply = await client.request({"op": "digest"})
            await client.close()
            out.append((reply["applied"], reply["digest"]))
        return out

    return Cluster(name, address, lambda: _framed(address, True), lambda: _converged(digests), cluster.close)


def _spawn(cmd: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=REPO_ROOT)


def _stopper(processes: Sequence[subprocess.Popen[bytes]]) -> Callable[[], None]:
    def stop() -> None:
        for p in processes:
            if p.poll() is None:
                p.kill()
        for p in processes:
            p.wait()
    return stop


async def _until(check: Callable[[], Awaitable[Any]], what: str, timeout_s: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout_s
    while True:
        with contextlib.suppress(OSError, RuntimeError, asyncio.IncompleteReadError, KeyError, ValueError):
            result = await check()
            if result is not None:
                return result
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: not ready after {timeout_s:.0f} s")
        await asyncio.sleep(0.1)


async def _leader_or_stop(leader: Callable[[], Awaitable[Any]], what: str, stop: Callable[[], None]) -> Any:
    """``_until`` the cluster has a leader; if it never does (or this is interrupted), stop the processes."""
    try:
        return await _until(leader, what)
    except BaseException:
        stop()
        raise


async def _converged(fingerprints: Callable[[], Awaitable[Sequence[Hashable]]]) -> bool:
    """Whether every replica reports one fingerprint (applied state) within 100 polls 0.2 s apart."""
    for _ in range(100):
        if len(set(await fingerprints())) == 1:
            return True
        await asyncio.sleep(0.2)
    return False


async def start_pysyncobj(work: Path, tuned: bool) -> Cluster:
    name = "pysyncobj-tuned" if tuned else "pysyncobj-default"
    (work / name).mkdir(parents=True, exist_ok=True)
    ports = free_ports(6)
    raft = [f"127.0.0.1:{p}" for p in ports[:3]]
    clients = [("127.0.0.1", p) for p in ports[3:]]
    env = {**os.environ, "PYTHONPATH": str(REPO_ROOT)}
    processes = [_spawn([sys.executable, "-m", "benchmarks.pysyncobj_server", "--self", raft[i], "--partners",
                         ",".join(a for a in raft if a != raft[i]), "--client-port", str(clients[i][1]),
                         *(["--tuned"] if tuned else [])], work / name / f"node-{i}.log", env)
                 for i in range(3)]
    stop = _stopper(processes)

    async def statuses() -> list[dict[str, Any]]:
        out = []
        for address in clients:
            client = await _framed(address, False)
            out.append(await client.request({"op": "status"}))
            await client.close()
        return out

    async def leader() -> tuple[str, int] | None:
        leading = [address for address, s in zip(clients, await statuses(), strict=True) if s["leader"]]
        return leading[0] if len(leading) == 1 else None

    async def counts() -> list[tuple[Any, Any]]:
        return [(s["count"], s["crc"]) for s in await statuses()]

    address = await _leader_or_stop(leader, f"{name} leader", stop)
    return Cluster(name, address, lambda: _framed(address, False), lambda: _converged(counts), stop)


async def _etcd(address: tuple[str, int]) -> EtcdHttpClient:
    reader, writer = await asyncio.open_connection(*address)
    return EtcdHttpClient(reader, writer, f"{address[0]}:{address[1]}")


async def start_etcd(work: Path) -> Cluster:
    binary = shutil.which("etcd")
    if binary is None:
        raise RuntimeError("etcd is not installed (apt-get install etcd-server)")
    ports = free_ports(6)
    peers = [f"http://127.0.0.1:{p}" for p in ports[:3]]
    clients = [("127.0.0.1", p) for p in ports[3:]]
    initial = ",".join(f"e{i}={peers[i]}" for i in range(3))
    (work / "etcd").mkdir(parents=True, exist_ok=True)
    processes = [_spawn([binary, "--name", f"e{i}", "--data-dir", str(work / "etcd" / f"e{i}"),
                         "--listen-peer-urls", peers[i], "--initial-advertise-peer-urls", peers[i],
                         "--listen-client-urls", f"http://127.0.0.1:{clients[i][1]}",
                         "--advertise-client-urls", f"http://127.0.0.1:{clients[i][1]}",
                         "--initial-cluster", initial, "--initial-cluster-state", "new",
                         "--initial-cluster-token", f"bench-{ports[0]}", "--logger", "zap"],
                        work / "etcd" / f"e{i}.log") for i in range(3)]
    stop = _stopper(processes)

    async def statuses() -> list[dict[str, Any]]:
        out = []
        for address in clients:
            client = await _etcd(address)
            out.append(await client.call("/v3/maintenance/status", {}))
            await client.close()
        return out

    async def leader() -> tuple[str, int] | None:
        leading = [address for address, s in zip(clients, await statuses(), strict=True)
                   if s.get("leader") and s["leader"] == s["header"]["member_id"]]
        return leading[0] if len(leading) == 1 else None

    async def revisions() -> list[Any]:
        return [s["header"]["revision"] for s in await statuses()]

    address = await _leader_or_stop(leader, "etcd leader", stop)
    return Cluster("etcd", address, lambda: _etcd(address), lambda: _converged(revisions), stop)


BASELINE_ROOT_ENV = "NOVACRON_BASELINE_ROOT"
"""``novacron-baseline`` runs the managers from this source tree (e.g. ``git archive main``)."""
STARTERS: dict[str, Callable[[Path], Awaitable[Cluster]]] = {
    "novacron": start_novacron,
    "novacron-baseline": lambda work: start_novacron(work, Path(os.environ[BASELINE_ROOT_ENV]), "novacron-baseline"),
    "novacron-sqlite": lambda work: start_novacron(work, name="novacron-sqlite", extra_args=("--log-store", "sqlite")),
    "novacron-lazy-commit": lambda work: start_novacron(work, name="novacron-lazy-commit",
                                                        extra_args=("--commit-broadcast", "off")),
    "pysyncobj-default": lambda work: start_pysyncobj(work, tuned=False),
    "pysyncobj-tuned": lambda work: start_pysyncobj(work, tuned=True),
    "etcd": start_etcd,
}

# -- the load ----------------------------------------------------------------------------------


@dataclass
class Level:
    system: str
    mode: str
    """``closed`` (``clients`` synchronous clients) or ``open`` (``rate_s`` puts offered per second)."""
    clients: int = 0
    rate_s: int = 0
    latencies_s: list[float] = field(default_factory=list)
    completed_in_window: int = 0
    errors: int = 0
    window_s: float = 0.0
    load_average: str = ""
    generator_lag_s: float = 0.0
    """Open loop: how late the generator itself issued a put, at worst (it is Python on the same
    cores: a large lag means the offered rate was not really offered)."""

    def summary(self) -> dict[str, Any]:
        lat_ms = np.asarray(self.latencies_s) * 1000
        pct = (lambda q: round(float(np.percentile(lat_ms, q, method="nearest")), 2)) if len(lat_ms) else (
            lambda q: None)
        return {"system": self.system, "mode": self.mode, "clients": self.clients, "offered_s": self.rate_s,
                "throughput_s": round(self.completed_in_window / self.window_s) if self.window_s else 0,
                "p50_ms": pct(50), "p99_ms": pct(99), "max_ms": round(float(lat_ms.max()), 2) if len(lat_ms) else None,
                "puts_measured": len(lat_ms), "errors": self.errors, "load_average": self.load_average,
                "generator_lag_max_ms": round(self.generator_lag_s * 1000, 1)}


def _keys() -> Iterator[tuple[str, bytes]]:
    seq = 0
    while True:
        seq += 1
        yield f"k{seq % KEYS}", str(seq).rjust(VALUE_BYTES, "x")[-VALUE_BYTES:].encode()


async def run_closed(cluster: Cluster, clients: int, warmup_s: float, measure_s: float) -> Level:
    level = Level(cluster.name, "closed", clients=clients)
    conns = [await cluster.connect() for _ in range(clients)]
    keys = _keys()
    start = time.perf_counter() + warmup_s
    end = start + measure_s

    async def client(conn: PutClient) -> None:
        while (t0 := time.perf_counter()) < end:
            key, value = next(keys)
            try:
                await conn.put(key, value)
            except RuntimeError:
                level.errors += 1
                continue
            t1 = time.perf_counter()
            if t0 >= start:
                level.latencies_s.append(t1 - t0)
            if start <= t1 < end:
                level.completed_in_window += 1

    await asyncio.gather(*(client(c) for c in conns))
    level.window_s = measure_s
    for c in conns:
        await c.close()
    return level


async def run_open(cluster: Cluster, rate_s: int, warmup_s: float, measure_s: float) -> Level:
    """Puts due every ``1/rate_s`` s; a put waits for a free connection (that wait counts). Puts
    still unanswered 10 s after the last one was due are cancelled and counted as errors."""
    level = Level(cluster.name, "open", rate_s=rate_s)
    free: asyncio.Queue[PutClient] = asyncio.Queue()
    pool = OPEN_CLIENTS.get(rate_s, max(50, min(500, rate_s // 16)))
    conns = [await cluster.connect() for _ in range(pool)]
    for c in conns:
        free.put_nowait(c)
    keys = _keys()
    t_zero = time.perf_counter()
    start, end = t_zero + warmup_s, t_zero + warmup_s + measure_s

    async def one(due: float) -> None:
        conn = await free.get()
        key, value = next(keys)
        try:
            await conn.put(key, value)
        except RuntimeError:
            level.errors += 1
        finally:
            free.put_nowait(conn)
        t1 = time.perf_counter()
        if start <= due < end:
            level.latencies_s.append(t1 - due)
        if start <= t1 < end:
            level.completed_in_window += 1

    tasks = []
    for i in range(int((warmup_s + measure_s) * rate_s)):
        due = t_zero + i / rate_s
        if (delay := due - time.perf_counter()) > 0:
            await asyncio.sleep(delay)
        level.generator_lag_s = max(level.generator_lag_s, -delay)
        tasks.append(asyncio.ensure_future(one(due)))
    _, late = await asyncio.wait(tasks, timeout=10)
    for task in late:  # a system that fell far behind: its unfinished puts count as errors
        task.cancel()
    await asyncio.gather(*late, return_exceptions=True)
    level.errors += len(late)
    level.window_s = measure_s
    for c in conns:
        await c.close()
    return level


async def measure(systems: Sequence[str], work: Path, clients: Sequence[int], rates: Sequence[int],
                  warmup_s: float, measure_s: float, log: Callable[[str], None] = print) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for system in systems:
        cluster = await STARTERS[system](work)
        try:
            for level_args in [("closed", c) for c in clients] + [("open", r) for r in rates]:
                mode, n = level_args
                level = await (run_closed(cluster, n, warmup_s, measure_s) if mode == "closed"
                               else run_open(cluster, n, warmup_s, measure_s))
                level.load_average = load_average_text()
                row = level.summary()
                rows.append(row)
                log(json.dumps(row))
            equal = await cluster.replicas_equal()
            for row in rows:
                if row["system"] == system:
                    row["replicas_equal"] = equal
        finally:
            cluster.stop()
    return rows


def markdown(rows: Sequence[dict[str, Any]]) -> str:
    lines = ["| system | durability | load | throughput ops/s | p50 ms | p99 ms | max ms | errors | replicas equal | "
             "generator lag max ms | load average (1/5/15 min) |",
             "|---|---|---|---:|---:|---:|---:|---:|---|---:|---|"]
    for r in rows:
        load = f"{r['clients']} sync clients" if r["mode"] == "closed" else f"open loop {r['offered_s']}/s"
        lines.append(f"| {r['system']} | {DURABILITY[r['system']]} | {load} | {r['throughput_s']:,} | {r['p50_ms']} | "
                     f"{r['p99_ms']} | {r['max_ms']} | {r['errors']} | {'yes' if r.get('replicas_equal') else 'NO'} | "
                     f"{r['generator_lag_max_ms'] if r['mode'] == 'open' else ''} | {r['load_average']} |")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--systems", default=",".join(SYSTEMS[:4]))
    parser.add_argument("--clients", default=",".join(map(str, CLOSED_CLIENTS)))
    parser.add_argument("--rates", default=",".join(map(str, OPEN_RATES)))
    parser.add_argument("--warmup-s", type=float, default=1.0)
    parser.add_argument("--measure-s", type=float, default=5.0)
    args = parser.parse_args(argv)
    systems = [s for s in args.systems.split(",") if s]
    unknown = sorted(set(systems) - set(SYSTEMS))
    if unknown:
        print(f"--systems {','.join(unknown)}: allowed: {', '.join(SYSTEMS)}", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    ints = lambda text: [int(x) for x in text.split(",") if x]  # noqa: E731
    rows = asyncio.run(measure(systems, args.out, ints(args.clients), ints(args.rates), args.warmup_s,
                               args.measure_s))
    (args.out / "results.json").write_text(json.dumps(rows, indent=1) + "\n")
    print(markdown(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

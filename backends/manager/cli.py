"""Argument handling behind ``novacron manager`` and ``novacron cluster status``.

``--peers 1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003`` names every manager's Raft
address (for ``manager``) or client address (for ``cluster status``). A manager's client port
defaults to its Raft port + ``CLIENT_PORT_OFFSET``.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import sys
from pathlib import Path

from backends.manager.client import cluster_status, format_status_table
from backends.manager.debug_leak import InjectedLeak
from backends.manager.runtime import ManagerConfig, ManagerRuntime, is_storage_failure

CLIENT_PORT_OFFSET = 100
START_BARRIER_ENV = "NOVACRON_MANAGER_START_BARRIER"


def parse_peers(text: str) -> dict[int, tuple[str, int]]:
    """``"1=host:port,2=host:port"`` -> ``{1: ("host", port), 2: ...}``; raises ``ValueError``."""
    peers: dict[int, tuple[str, int]] = {}
    for item in filter(None, (part.strip() for part in text.split(","))):
        node, sep, address = item.partition("=")
        host, colon, port = address.rpartition(":")
        if not sep or not colon or not node.strip().isdigit() or not port.isdigit() or not host:
            raise ValueError(f"bad peer {item!r}: expected ID=HOST:PORT, e.g. 1=127.0.0.1:7001")
        node_id = int(node)
        if node_id < 1 or node_id in peers:
            raise ValueError(f"bad peer {item!r}: ids must be >= 1 and distinct")
        peers[node_id] = (host, int(port))
    if not peers:
        raise ValueError("--peers names no manager")
    return peers


def run_manager(node_id: int, peers: dict[int, tuple[str, int]], data_dir: Path, client_port: int | None,
                snapshot_every: int = 5000, events_origin_monotonic_s: float | None = None,
                events_jsonl: bool = False, metrics_port: int | None = None,
                debug_leak_mib_s: float | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format=f"manager {node_id} %(levelname)s %(message)s")
    if node_id not in peers:
        raise ValueError(f"--id {node_id} is not one of the --peers ids {sorted(peers)}")
    host, port = peers[node_id]
    config = ManagerConfig(node_id=node_id, peers=peers, data_dir=data_dir, client_host=host,
                           client_port=port + CLIENT_PORT_OFFSET if client_port is None else client_port,
                           snapshot_every=snapshot_every, events_origin_monotonic_s=events_origin_monotonic_s,
                           events_jsonl=events_jsonl, metrics_port=metrics_port)

    leak = None if debug_leak_mib_s is None else InjectedLeak(debug_leak_mib_s)

    async def main() -> None:
        await wait_for_start_barrier()
        runtime = ManagerRuntime(config)
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, runtime.stop)
        if leak is not None:
            leak.arm(loop)
        try:
            await runtime.serve()
        finally:
            if leak is not None:
                await leak.stop()

    try:
        asyncio.run(main())
    except Exception as exc:
        if not is_storage_failure(exc):
            raise
        # One line, no traceback: what failed and that nothing after it was acknowledged.
        print(f"novacron manager {node_id}: stopped: storage failure in {data_dir}: {exc} "
              "(nothing unsaved was sent or acknowledged)", file=sys.stderr, flush=True)
        return 1
    return 0


async def wait_for_start_barrier() -> None:
    """With ``$NOVACRON_MANAGER_START_BARRIER`` set, wait (imports done) until that file exists:
    timing experiments start several managers at one instant, as a simulated cluster boots."""
    barrier = os.environ.get(START_BARRIER_ENV)
    while barrier and not os.path.exists(barrier):
        await asyncio.sleep(0.001)


def print_cluster_status(peers: dict[int, tuple[str, int]], timeout_s: float) -> int:
    """Print the table; exit status 0 if a leader is known by a reachable manager, else 1."""
    rows = asyncio.run(cluster_status(peers, timeout_s))
    print(format_status_table(rows))
    return 0 if any(r.get("reachable") and r.get("role") == "leader" for r in rows) else 1

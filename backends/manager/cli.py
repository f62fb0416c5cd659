"""Argument handling behind ``novacron manager`` and ``novacron cluster status``.

``--peers 1=127.0.0.1:7001,2=127.0.0.1:7002,3=127.0.0.1:7003`` names every manager's Raft
address (for ``manager``) or client address (for ``cluster status``). A manager's client port
defaults to its Raft port + ``CLIENT_PORT_OFFSET``. ``--heartbeat-ticks`` and ``--election-ticks
MIN-MAX`` set the cluster group's Raft timing (10 ms ticks); ``--federation-id`` with
``--federation-peers`` also runs the manager's federation agent (``federation_agent``).
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import os
import signal
import sys
from pathlib import Path

from backends.manager.client import cluster_status, format_status_table
from backends.manager.debug_leak import InjectedLeak
from backends.manager.federation_agent import FederationOptions, FederationReplica, agent_config
from backends.manager.runtime import LOG_STORE_PATHS, ManagerConfig, ManagerRuntime, is_storage_failure
from novacron.raft import RaftConfig
from novacron.raft.node import timing_error

CLIENT_PORT_OFFSET = 100
START_BARRIER_ENV = "NOVACRON_MANAGER_START_BARRIER"
BARRIER_READY_SUFFIX = ".ready-"
"""A manager waiting at the start barrier ``B`` creates ``B.ready-<pid>`` first."""


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
        if not 1 <= int(port) <= 65535:
            raise ValueError(f"bad peer {item!r}: port {int(port)}; allowed: a TCP port from 1 to 65535")
        peers[node_id] = (host, int(port))
    if not peers:
        raise ValueError("--peers names no manager")
    return peers


def parse_election_ticks(text: str) -> tuple[int, int]:
    """``"15-30"`` -> (15, 30); raises ``ValueError`` naming what is allowed."""
    low, sep, high = text.partition("-")
    if not sep or not low.strip().isdigit() or not high.strip().isdigit():
        raise ValueError(f"--election-ticks {text!r}: expected MIN-MAX in ticks, e.g. 15-30")
    return int(low), int(high)


def raft_timing(node_id: int, heartbeat_ticks: int | None, election_ticks: str | None, *,
                commit_broadcast: bool = True) -> RaftConfig:
    """The cluster group's Raft settings: the core's defaults, with the given timing and
    ``RaftConfig.commit_broadcast`` (off: followers learn a commit from the next append or
    heartbeat instead of an append sent for it at once)."""
    default = RaftConfig(node_id=node_id)
    low, high = parse_election_ticks(election_ticks) if election_ticks else (default.election_ticks_min,
                                                                             default.election_ticks_max)
    heartbeat = default.heartbeat_ticks if heartbeat_ticks is None else heartbeat_ticks
    error = timing_error(heartbeat, low, high)
    if error is not None:
        raise ValueError(f"--heartbeat-ticks {heartbeat} --election-ticks {low}-{high}: {error}")
    return dataclasses.replace(default, heartbeat_ticks=heartbeat, election_ticks_min=low, election_ticks_max=high,
                               commit_broadcast=commit_broadcast)


def federation_options(member_id: int | None, peers_text: str | None, client_port: int | None,
                       rtt_ms: float) -> FederationOptions | None:
    """The agent's options from the command line, or None when no federation is asked for."""
    if member_id is None and peers_text is None:
        return None
    if member_id is None or peers_text is None:
        raise ValueError("--federation-id and --federation-peers: give both or neither")
    peers = parse_peers(peers_text)
    if member_id not in peers:
        raise ValueError(f"--federation-id {member_id} is not one of the --federation-peers ids {sorted(peers)}")
    port = peers[member_id][1] + CLIENT_PORT_OFFSET if client_port is None else client_port
    return FederationOptions(member_id=member_id, peers=peers, client_port=port, rtt_ms=rtt_ms)


def run_manager(node_id: int, peers: dict[int, tuple[str, int]], data_dir: Path, client_port: int | None,
                snapshot_every: int = 5000, events_origin_monotonic_s: float | None = None,
                events_jsonl: bool = False, metrics_port: int | None = None, raft: RaftConfig | None = None,
                federation: FederationOptions | None = None, debug_leak_mib_s: float | None = None, *,
                leader_min_health: float = 0.0, log_store: str | None = None) -> int:
    logging.basicConfig(level=logging.WARNING, format=f"manager {node_id} %(levelname)s %(message)s")
    if node_id not in peers:
        raise ValueError(f"--id {node_id} is not one of the --peers ids {sorted(peers)}")
    if log_store is not None and log_store not in LOG_STORE_PATHS:
        raise ValueError(f"--log-store {log_store!r}: allowed: {', '.join(LOG_STORE_PATHS)}")
    host, port = peers[node_id]
    config = ManagerConfig(node_id=node_id, peers=peers, data_dir=data_dir, client_host=host,
                           client_port=port + CLIENT_PORT_OFFSET if client_port is None else client_port,
                           snapshot_every=snapshot_every, events_origin_monotonic_s=events_origin_monotonic_s,
                           events_jsonl=events_jsonl, metrics_port=metrics_port,
                           raft=raft or RaftConfig(node_id=node_id), leader_min_health=leader_min_health,
                           log_store=log_store)
    agent = agent_config(config, federation) if federation is not None else None

    leak = None if debug_leak_mib_s is None else InjectedLeak(debug_leak_mib_s)

    async def main() -> None:
        await wait_for_start_barrier()
        runtimes = [ManagerRuntime(config)]
        if agent is not None:
            runtimes.append(ManagerRuntime(agent, FederationReplica))
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop_all, runtimes)
        if leak is not None:
            leak.arm(loop)
        try:
            await serve_together(runtimes)
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


def stop_all(runtimes: list[ManagerRuntime]) -> None:
    for runtime in runtimes:
        runtime.stop()


async def serve_together(runtimes: list[ManagerRuntime]) -> None:
    """Serve every runtime of this process; when one stops (a signal, a storage failure) the
    others are stopped too -- a manager without its federation agent, or the reverse, is not
    what was started -- and the first failure is re-raised."""
    tasks = [asyncio.get_running_loop().create_task(r.serve(), name=f"runtime-{r.id}") for r in runtimes]
    await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    stop_all(runtimes)
    results = await asyncio.gather(*tasks, return_exceptions=True)
    failure = next((r for r in results if isinstance(r, BaseException)), None)
    if failure is not None:
        raise failure


async def wait_for_start_barrier() -> None:
    """With ``$NOVACRON_MANAGER_START_BARRIER`` set, wait (imports done) until that file exists:
    timing experiments start several managers at one instant, as a simulated cluster boots."""
    barrier = os.environ.get(START_BARRIER_ENV)
    if barrier:
        # Say that the imports are done: a loaded machine can take seconds to get five processes
        # here, and a barrier released before that would time the imports, not the managers.
        Path(f"{barrier}{BARRIER_READY_SUFFIX}{os.getpid()}").touch()
    while barrier and not os.path.exists(barrier):
        await asyncio.sleep(0.001)


def print_cluster_status(peers: dict[int, tuple[str, int]], timeout_s: float) -> int:
    """Print the table; exit status 0 if a leader is known by a reachable manager, else 1."""
    rows = asyncio.run(cluster_status(peers, timeout_s))
    print(format_status_table(rows))
    return 0 if any(r.get("reachable") and r.get("role") == "leader" for r in rows) else 1

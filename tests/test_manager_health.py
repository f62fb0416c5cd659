"""Leadership preference in real manager processes: a leader whose health falls hands over.

Three ``novacron manager --leader-min-health 70`` processes on loopback (``LocalCluster``). The
leader is sent five frames announcing more than the 64 MiB frame limit on five connections to
its Raft port: each is a process error (the connection is dropped, ``FrameTooLarge``), costing 3
of its 30 reliability points, so its score falls from 80 (its own connectivity is unknown: it
cannot time its own heartbeats) to 65. It must then hand leadership to a peer it measured
healthy through Raft's leadership transfer (``LeadershipTransferRequested`` in its log), and the
new leader, healthy, must keep it. Every process is killed by the fixture's finalizer.
"""

from __future__ import annotations

import asyncio
import json
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from backends.manager.framing import HEADER, MAX_FRAME_BYTES
from backends.manager.localcluster import LocalCluster
from novacron.app.cli import main

pytestmark = pytest.mark.slow


@pytest.fixture
def cluster(tmp_path: Path) -> Iterator[LocalCluster]:
    made = LocalCluster(tmp_path / "cluster", extra_args=("--events-jsonl", "--leader-min-health", "70"))
    try:
        yield made
    finally:
        made.close_and_print_logs()


def send_oversized_frame(address: tuple[str, int]) -> None:
    with socket.create_connection(address, timeout=5.0) as conn:
        conn.sendall(HEADER.pack(MAX_FRAME_BYTES + 1))
        conn.settimeout(5.0)
        assert conn.recv(1) == b"", "the manager drops a connection that announces an oversized frame"


def transfers_requested(cluster: LocalCluster, manager_id: int) -> list[dict[str, object]]:
    path = cluster.data_dir(manager_id) / "events.jsonl"
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return [r for r in rows if r.get("type") == "LeadershipTransferRequested"]


def test_a_leader_whose_health_falls_hands_over_and_the_healthy_one_keeps_it(cluster: LocalCluster) -> None:
    asyncio.run(_scenario(cluster))


async def _scenario(cluster: LocalCluster) -> None:
    cluster.start_all()
    first = await cluster.wait_for_leader(timeout_s=60.0)
    await asyncio.sleep(1.0)  # heartbeats enough for it to have measured its peers healthy
    status = {r["id"]: r for r in await cluster.statuses()}[first["id"]]
    assert status["role"] == "leader", "a healthy leader (score 80 >= 70) keeps leading"
    own = status["health"][str(first["id"])]
    assert own["score"] == pytest.approx(80.0, abs=1e-6), own
    for _ in range(5):
        await asyncio.to_thread(send_oversized_frame, cluster.raft_addresses[first["id"]])
    others = set(cluster.ids) - {first["id"]}
    second = await cluster.wait_for_leader(timeout_s=30.0, among=others)
    assert second["term"] > first["term"]
    requested = transfers_requested(cluster, first["id"])
    assert [(r["manager_id"], r["target_id"]) for r in requested] == [(first["id"], second["id"])], requested
    await asyncio.sleep(2.0)
    rows = {r["id"]: r for r in await cluster.statuses() if r.get("reachable")}
    assert rows[second["id"]]["role"] == "leader" and rows[second["id"]]["term"] == second["term"], rows
    assert rows[first["id"]]["health"][str(first["id"])]["score"] < 70.0


@pytest.mark.parametrize("value", ["-1", "100"])
def test_a_leader_min_health_out_of_range_is_one_line_and_exit_2(value: str, tmp_path: Path,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["manager", "--id", "1", "--peers", "1=127.0.0.1:7001", "--data-dir", str(tmp_path),
                 "--leader-min-health", value])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and f"--leader-min-health {float(value)}" in err, err

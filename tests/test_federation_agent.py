"""The manager's federation agent (issue 17 item 7): the core's federation state machine behind a
second Raft runtime in the manager process, its WAN timing, and its command-line options."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from backends.manager.cli import federation_options, raft_timing, serve_together
from backends.manager.client import ManagerClient
from backends.manager.federation_agent import (
    FEDERATION_DIR,
    FederationOptions,
    FederationReplica,
    agent_config,
    federation_raft_config,
)
from backends.manager.runtime import ManagerConfig, ManagerRuntime
from backends.ports import free_ports
from novacron.federation.state import FederationStateMachine, Placement
from tests.one_line_errors import one_line_error


def place(vm: str, cluster: int, host: int, command_id: str = "") -> bytes:
    return FederationStateMachine.place(command_id or f"place-{vm}", vm, Placement(cluster, host, 1.0, 1.0, ""))


def test_the_agent_takes_the_core_wan_timing_for_its_round_trip() -> None:
    config = federation_raft_config(2, 150.0, 10.0)
    # wan_timing: heartbeat max(50, RTT) = 15 ticks; election 3 heartbeats + 2 RTT = 75 ticks, up to 150
    assert (config.node_id, config.heartbeat_ticks, config.election_ticks_min, config.election_ticks_max) == \
        (2, 15, 75, 150)
    manager = ManagerConfig(node_id=4, peers={4: ("127.0.0.1", 7004)}, data_dir=Path("/tmp/m4"))
    agent = agent_config(manager, FederationOptions(member_id=2, peers={2: ("10.0.0.2", 7300)}, client_port=7400))
    assert (agent.node_id, agent.client_host, agent.client_port, agent.data_dir) == \
        (2, "10.0.0.2", 7400, Path("/tmp/m4") / FEDERATION_DIR)
    assert agent.raft.election_ticks_min == 75 and manager.raft.election_ticks_min == 15


def test_bad_federation_and_timing_options_are_one_line_errors() -> None:
    assert federation_options(None, None, None, 150.0) is None
    assert "give both or neither" in one_line_error(ValueError, lambda: federation_options(1, None, None, 150.0))
    assert "not one of" in one_line_error(ValueError, lambda: federation_options(3, "1=h:1,2=h:2", None, 150.0))
    options = federation_options(1, "1=10.0.0.1:7300,2=127.0.0.1:7102", None, 80.0)
    assert options is not None and options.client_port == 7400 and options.rtt_ms == 80.0
    assert "rtt" in one_line_error(ValueError, lambda: federation_raft_config(1, -5.0, 10.0))
    assert "MIN-MAX" in one_line_error(ValueError, lambda: raft_timing(1, None, "30"))
    assert "heartbeat_ticks < election_ticks_min" in one_line_error(ValueError, lambda: raft_timing(1, 20, "15-30"))
    timing = raft_timing(1, 10, "40-80")
    assert (timing.heartbeat_ticks, timing.election_ticks_min, timing.election_ticks_max) == (10, 40, 80)


def test_the_manager_command_passes_commit_broadcast_to_the_raft_core() -> None:
    from novacron.app.cli import build_parser

    def parsed(*extra: str) -> bool:
        args = build_parser().parse_args(["manager", "--id", "1", "--peers", "1=127.0.0.1:7001",
                                          "--data-dir", "/nonexistent", *extra])
        return raft_timing(1, None, None, commit_broadcast=args.commit_broadcast == "on").commit_broadcast

    assert parsed() is True  # the core's default: followers hear of every commit at once
    assert parsed("--commit-broadcast", "off") is False
    assert parsed("--commit-broadcast", "on") is True


def test_a_replica_applies_batches_refuses_a_second_placement_and_restores(tmp_path: Path) -> None:
    from backends.manager.replicated import encode_batch
    from novacron.raft import Entry

    replica = FederationReplica(1, None)
    batch = [place("vm-a", 2, 5), place("vm-a", 2, 5), place("vm-a", 3, 1, "again"), place("vm-b", 1, 0)]
    replica.apply(Entry(3, 1, 0, encode_batch(batch)))
    assert (replica.get("vm-a"), replica.get("vm-b"), replica.get("vm-c")) == ("2:5", "1:0", None)
    # the retried command (same id) is applied once; a second placement of vm-a is refused
    assert replica.machine.refused == 1 and replica.applied_index == 3 and replica.commands_applied == 4
    copy = FederationReplica(2, None)
    copy.restore(replica.snapshot(), 3)
    assert (copy.get("vm-a"), copy.key_count(), copy.applied_index) == ("2:5", 2, 3)


@pytest.mark.slow
def test_a_manager_process_serves_its_cluster_and_its_federation_agent_together(tmp_path: Path) -> None:
    raft_port, client_port, agent_port, agent_client_port = free_ports(4)
    manager = ManagerConfig(node_id=1, peers={1: ("127.0.0.1", raft_port)}, data_dir=tmp_path / "m1",
                            client_port=client_port, events_jsonl=True)
    agent = agent_config(manager, FederationOptions(member_id=3, peers={3: ("127.0.0.1", agent_port)},
                                                    client_port=agent_client_port, rtt_ms=20.0))

    async def scenario() -> None:
        runtimes = [ManagerRuntime(manager), ManagerRuntime(agent, FederationReplica)]
        serving = asyncio.create_task(serve_together(runtimes))
        try:
            for _ in range(300):
                if all(r.node.role == "leader" and r.node.log.committed > 0 for r in runtimes):
                    break
                await asyncio.sleep(0.02)
            federation = await ManagerClient.connect("127.0.0.1", agent_client_port)
            try:
                assert (await federation.propose(place("vm-1", 2, 7)))["ok"]
                assert (await federation.read("vm-1"))["value"] == "2:7"
                assert (await federation.status())["manager_id"] == 3
            finally:
                await federation.close()
            assert runtimes[0].state.get("vm-1") is None  # the cluster's own state is not the federation's
        finally:
            runtimes[1].stop()  # one runtime stopping stops the process's other one too
            await asyncio.wait_for(serving, 10.0)

    asyncio.run(scenario())
    assert (tmp_path / "m1" / FEDERATION_DIR / "events.jsonl").read_text().count('"LeaderElected"') == 1

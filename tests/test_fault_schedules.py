"""Fault schedules at their edges: crashes and partitions at the start, at the end, together, many.

``tests/scenario_fuzz.py`` draws valid scenarios in general; these are the minimal scenarios a
probe of the *timing* of faults found (the Raft managers' scripted faults with the fault model's
manager crashes and partitions, host crashes, migrations in flight), each with what went wrong.
"""

from __future__ import annotations

from pathlib import Path
from random import Random

import pytest

from novacron.app.cli import main
from novacron.cluster.events import InjectedFaultStarted
from novacron.config import ConfigError
from novacron.events import Event, InMemoryEventLog, Recorder
from novacron.raft.events import (
    FailoverCompleted,
    LeaderCommitted,
    LeaderElected,
    ManagerCrashed,
    NetworkHealed,
    NetworkPartitioned,
    PartitionRecovered,
    ScriptedFaultSkipped,
)
from novacron.raft.metrics import RaftFold
from novacron.raft.scenario import RaftSection
from novacron.scenario import loads_scenario
from novacron.streaming import EventsByType, fold_events
from sim.fault_run import run_with_faults
from sim.injected_faults import InjectedFaultsConfig
from sim.network import PROFILES, NetworkModel
from sim.raft.cluster import ClusterSettings, RaftCluster
from sim.raft.reporter import RaftReporter
from sim.raft.scripted_faults import ScriptedFaults
from sim.run import simulate
from tests.test_scenario_fuzz import _run, _verdicts

ONE_HOST_NO_HOST_FAULTS = """
[cluster]
hosts = 1
[workload]
vms = 2
arrival_window_s = 1.0
[cache]
enabled = false
[migration]
migrations = 0
[faults]
enabled = true
host_mtbf_h = 10000000.0
"""
"""The smallest cluster the probes found their bugs on: one host that never fails, two VMs."""

RAFT_WITH_MANAGER_CRASHES = """
duration_s = 60.0
seed = 11
""" + ONE_HOST_NO_HOST_FAULTS + """managers = 3
manager_mtbf_h = 0.01
manager_mttr_s = 1000000.0
[raft]
managers = 3
network = "lan"
control_plane = "raft"
simulate_s = 0.0
leader_crash_at_s = 50.0
restart_after_s = 1000.0
partition_at_s = 0.0
"""


def test_a_failover_still_open_at_the_end_is_not_a_pass(tmp_path: Path) -> None:
    """A manager crash (the fault model's) took the leader, and the cluster failed over in 152 ms;
    the scripted crash at 50 s then took the new leader with one manager already down for good,
    and no leader was elected again before the end. "Failover" passed on the 152 ms, the worst of
    the failovers that completed; the one that never did is the worst, and it is unknown."""
    summary = _run(RAFT_WITH_MANAGER_CRASHES, tmp_path)
    assert _verdicts(summary)["raft.failover_ms"] == "not measured"
    assert "raft.failover_ms" not in summary["metrics"]  # type: ignore[operator]


def test_the_failover_metrics_wait_for_every_failover() -> None:
    def fold(*crash_again: bool) -> dict[str, float]:
        events = [LeaderElected(t_s=0.2, seq=1, source="manager-1", manager_id=1, term=1, leaderless_ms=200.0),
                  ManagerCrashed(t_s=10.0, seq=2, source="manager-1", manager_id=1, was_leader=True),
                  LeaderElected(t_s=10.1, seq=3, source="manager-2", manager_id=2, term=2, leaderless_ms=100.0),
                  LeaderCommitted(t_s=10.2, seq=4, source="manager-2", manager_id=2, term=2, log_index=2),
                  FailoverCompleted(t_s=10.2, seq=5, source="raft", failover_ms=200.0, elect_ms=100.0, term=2)]
        if crash_again:
            events.append(ManagerCrashed(t_s=20.0, seq=6, source="manager-2", manager_id=2, was_leader=True))
        return fold_events(RaftFold(), EventsByType(events))

    assert fold()["raft.failover_ms"] == 200.0
    assert "raft.failover_ms" not in fold(True) and "raft.election_after_crash_ms" not in fold(True)


RAFT_WITH_TWO_PARTITIONS = """
duration_s = 60.0
""" + ONE_HOST_NO_HOST_FAULTS + """partition_mtbf_h = 0.01
partition_duration_s = 5.0
[raft]
managers = 3
network = "lan"
control_plane = "raft"
simulate_s = 0.0
leader_crash_at_s = 0.0
partition_at_s = 5.0
partition_duration_s = 1000.0
"""


def test_a_partition_lasts_its_duration_when_another_heals(tmp_path: Path) -> None:
    """The scripted partition isolates the leader from 5 s for longer than the run; the fault
    model's partitions (5 s each) come and go meanwhile. Each of their heals healed the whole
    network, the scripted partition with it, so the cluster "recovered" (and the recovery passed)
    with the leader still meant to be cut off. Each heal lifts its own partition now: the isolated
    manager never follows again, and the recovery is not measured."""
    scenario = loads_scenario(RAFT_WITH_TWO_PARTITIONS, origin="test")
    log = list(simulate(scenario, scenario.seed).log)
    assert sum(isinstance(ev, NetworkHealed) for ev in log) >= 1
    assert not [ev for ev in log if isinstance(ev, PartitionRecovered)]
    assert _verdicts(_run(RAFT_WITH_TWO_PARTITIONS, tmp_path))["raft.partition_recovery_s"] == "not measured"


def test_the_recovery_metric_waits_for_every_partition() -> None:
    def fold(*later: Event) -> dict[str, float]:
        events: list[Event] = [NetworkPartitioned(t_s=10.0, seq=1, source="network", partition_groups="[[1], [2, 3]]",
                                                  symmetric=True),
                               NetworkHealed(t_s=13.0, seq=2, source="network", partition_groups="[[1], [2, 3]]"),
                               PartitionRecovered(t_s=13.1, seq=3, source="raft", recovery_s=0.1,
                                                  leader_changed=False)]
        return fold_events(RaftFold(), EventsByType([*events, *later]))

    again = NetworkPartitioned(t_s=20.0, seq=4, source="network", partition_groups="[[2], [1, 3]]", symmetric=True)
    healed = NetworkHealed(t_s=25.0, seq=5, source="network", partition_groups="[[2], [1, 3]]")
    assert fold()["raft.partition_recovery_s"] == 0.1
    assert "raft.partition_recovery_s" not in fold(again)  # still on at the end
    assert "raft.partition_recovery_s" not in fold(again, healed)  # healed, not recovered from


def test_a_heal_lifts_its_own_partition_only() -> None:
    network = NetworkModel(PROFILES["lan"], Random(1))
    first = network.partition([[1], [2, 3]])
    second = network.partition([[2], [1, 3]])
    network.heal_partition(second)
    assert network.blocked(1, 2) and network.blocked(3, 1) and not network.blocked(2, 3)
    network.heal_partition(first)
    assert not network.is_partitioned()


def _scripted_faults_on_a_formed_cluster(seed: int) -> tuple[RaftCluster, ScriptedFaults, InMemoryEventLog]:
    """Five managers on a LAN with a leader elected, and the ``[raft]`` scripted faults over them."""
    log, clock = InMemoryEventLog(), [0.0]
    reporter = RaftReporter(Recorder(log, lambda: clock[0]))
    cluster = RaftCluster(ClusterSettings(managers=5), NetworkModel(PROFILES["lan"], Random(seed)), Random(seed),
                          hooks=[reporter])
    assert cluster.run_until(20.0, lambda: cluster.leader() is not None), f"seed {seed}: no leader in 20 s"
    clock[0] = cluster.now_s
    faults = ScriptedFaults(cluster, reporter, RaftSection(partition_duration_s=3.0), at=cluster.schedule,
                            now_s=lambda: cluster.now_s)
    return cluster, faults, log


def test_a_scripted_partition_without_a_leader_isolates_the_lowest_live_manager() -> None:
    """Manager 1 and the leader are down, so nobody leads: the partition isolated manager 1 (the
    lowest-numbered, dead), which cut nobody off. It isolates the lowest-numbered live one now."""
    for seed in (1, 2, 3):
        cluster, faults, log = _scripted_faults_on_a_formed_cluster(seed)
        leader = cluster.leader()
        assert leader is not None
        for node_id in sorted({1, leader.id}):
            cluster.crash(node_id)
        assert cluster.leader() is None, f"seed {seed}"
        faults.isolate_leader()
        live = sorted(m.node_id for m in cluster.alive())
        isolated = live[0]
        (partitioned,) = log.of_type(NetworkPartitioned)
        assert partitioned.partition_groups == str([[isolated], [m for m in range(1, 6) if m != isolated]]), \
            f"seed {seed}: {partitioned.partition_groups}, live managers {live}"
        assert cluster.network.blocked(isolated, live[1]) and cluster.network.blocked(live[1], isolated), f"seed {seed}"


def test_a_scripted_partition_isolates_the_leader_when_there_is_one() -> None:
    cluster, faults, log = _scripted_faults_on_a_formed_cluster(4)
    leader = cluster.leader()
    assert leader is not None
    faults.isolate_leader()
    (partitioned,) = log.of_type(NetworkPartitioned)
    assert partitioned.partition_groups.startswith(f"[[{leader.id}], "), "seed 4"


def test_a_scripted_partition_with_every_manager_down_isolates_nobody_and_says_so() -> None:
    cluster, faults, log = _scripted_faults_on_a_formed_cluster(5)
    for node_id in sorted(cluster.managers):
        cluster.crash(node_id)
    faults.isolate_leader()
    assert not log.of_type(NetworkPartitioned) and not cluster.network.is_partitioned(), "seed 5"
    (skipped,) = log.of_type(ScriptedFaultSkipped)
    assert skipped.fault == "partition" and "every manager is down" in skipped.reason, skipped


def _crashes_by_name(log: list[Event]) -> list[tuple[str, str]]:
    """Each manager crash a fault asked for (its ``fault_target``) beside the manager that crashed."""
    asked = [(ev.t_s, ev.fault_target) for ev in log
             if isinstance(ev, InjectedFaultStarted) and ev.fault_kind == "manager_crash"]
    crashed = {ev.t_s: ev.source for ev in log if isinstance(ev, ManagerCrashed)}
    return [(target, crashed.get(t_s, "none")) for t_s, target in asked]


def test_the_fault_models_manager_crash_crashes_the_manager_it_names() -> None:
    """The fault model named its managers from 0 and the control plane took ``manager-<k>`` as the
    k-th manager mod their number: its ``manager-0`` crashed ``manager-1``."""
    scenario = loads_scenario(RAFT_WITH_MANAGER_CRASHES, origin="test")
    pairs = _crashes_by_name(list(simulate(scenario, scenario.seed).log))
    assert pairs and all(asked == crashed for asked, crashed in pairs), f"seed {scenario.seed}: {pairs}"


def test_a_flapping_manager_crashes_the_manager_it_names() -> None:
    """The injected faults name managers from 1, as the managers do, and the control plane took
    ``manager-<k>`` as the k-th manager from 0, mod their number: ``manager-3`` crashed ``manager-1``."""
    scenario = loads_scenario(RAFT_WITH_MANAGER_CRASHES.replace("manager_mtbf_h = 0.01\n", "")
                              .replace("leader_crash_at_s = 50.0", "leader_crash_at_s = 0.0")
                              .replace("duration_s = 60.0", "duration_s = 1000.0"), origin="test")
    faults = InjectedFaultsConfig(per_kind=1, first_fault_s=10.0, last_fault_s=20.0, min_duration_s=900.0,
                                  max_duration_s=900.0, flap_period_s=200.0, flap_down_s=50.0)
    pairs = _crashes_by_name(list(run_with_faults(scenario, 3, faults=faults, act=False).log))
    assert pairs and all(asked == crashed for asked, crashed in pairs), f"seed 3: {pairs}"


RAFT_WITH_MORE_FAULT_MANAGERS = RAFT_WITH_MANAGER_CRASHES.replace("managers = 3\nmanager_mtbf_h", "managers = 5\n"
                                                                  "manager_mtbf_h")


def test_more_fault_managers_than_raft_managers_is_a_config_error(tmp_path: Path,
                                                                  capsys: pytest.CaptureFixture[str]) -> None:
    """``faults.managers = 5`` over 3 Raft managers: two of the fault model's five managers used to
    land on managers 1 and 2 again (mod 3); now the scenario is refused, naming the field, the
    value and the allowed range."""
    assert "managers = 5\nmanager_mtbf_h" in RAFT_WITH_MORE_FAULT_MANAGERS
    with pytest.raises(ConfigError, match=r"faults\.managers = 5 .*allowed: 1 to 3"):
        loads_scenario(RAFT_WITH_MORE_FAULT_MANAGERS, origin="test")
    path = tmp_path / "s.toml"
    path.write_text(RAFT_WITH_MORE_FAULT_MANAGERS)
    code = main(["run", str(path), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err and "Traceback" not in err, f"exit {code}: {err}"
    assert "faults.managers = 5" in err and "1 to 3" in err, err
    assert not (tmp_path / "out").exists()


def test_a_flapping_manager_beyond_the_raft_managers_is_refused_before_the_run() -> None:
    scenario = loads_scenario(RAFT_WITH_MORE_FAULT_MANAGERS.replace("manager_mtbf_h = 0.01\n", ""), origin="test")
    with pytest.raises(ConfigError, match=r"faults\.managers = 5 .*allowed: 1 to 3"):
        run_with_faults(scenario, 3, faults=InjectedFaultsConfig(per_kind=1, first_fault_s=10.0, last_fault_s=20.0))

"""A federated run partitioned by datacenter (issue 22): the same merged event log for any layout,
in this process and on a real Dask cluster of processes, and a causality assertion that fires.

The scenario is small on purpose (8 datacenters, 40 VMs, 20 simulated seconds: about 290 windows);
the Dask tests share one LocalCluster of two worker processes.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from novacron.app.cli import main
from novacron.app.eventstore import event_log_sha256, read_events
from novacron.federation.events import (
    CrossDatacenterMigrationFinished,
    DatacenterUtilisationSampled,
    FederationLeadershipTransferred,
)
from novacron.scenario import Scenario, parse_scenario, resolve_scenario
from sim.federation.partition import CausalityError, DatacenterProcess, Envelope, lookahead_s, partition_problem
from sim.federation.windows import PartitionError, choose_layout, run_partitioned

NAMES = [f"dc{i}" for i in range(8)]
FEDERATION = {"enabled": True, "datacenters": NAMES, "wan": "uniform", "wan_uniform_rtt_ms": 150.0,
              "hosts_per_cluster": 4, "vms": 40, "start_s": 3.0, "arrival_window_s": 12.0, "ha_group_size": 2,
              "gossip_interval_s": 2.0, "sample_interval_s": 5.0}


def small(**federation: Any) -> Scenario:
    return parse_scenario({"name": "fed-small", "seed": 3, "duration_s": 20.0,
                           "federation": {**FEDERATION, **federation}}, origin="test")


@pytest.fixture(scope="module")
def one_process(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, int]:
    run = run_partitioned(small(), 3, tmp_path_factory.mktemp("one"), partitions=1)
    return run.sha256, run.events


def test_one_two_and_eight_partitions_give_the_same_log(tmp_path: Path, one_process: tuple[str, int]) -> None:
    sha, events = one_process
    runs = {p: run_partitioned(small(), 3, tmp_path / f"p{p}", partitions=p) for p in (2, 8)}
    assert {p: r.sha256 for p, r in runs.items()} == {2: sha, 8: sha}
    eight = runs[8]
    assert eight.layout == tuple((dc,) for dc in range(8))
    assert eight.messages > 1000  # the datacenters really talk: Raft, delegations, gossip
    assert eight.metrics["federation.vms_placed"] == 40
    assert eight.metrics["federation.ha_groups_sharing_datacenter"] == 0
    assert eight.metrics["federation.formation_s"] > 0
    merged = read_events(tmp_path / "p8" / "events.parquet")
    assert len(merged) == events and event_log_sha256(merged) == sha
    keys = [(ev.t_s, NAMES.index(ev.source.removeprefix("federation/"))) for ev in merged]
    assert keys == sorted(keys) and [ev.seq for ev in merged] == list(range(events))
    assert {ev.source for ev in merged} == {f"federation/{n}" for n in NAMES}


def test_the_hash_follows_the_seed(tmp_path: Path, one_process: tuple[str, int]) -> None:
    assert run_partitioned(small(), 4, tmp_path, partitions=2).sha256 != one_process[0]


def test_async_replication_with_two_clusters_per_datacenter_is_layout_independent(tmp_path: Path) -> None:
    scenario = small(datacenters=NAMES[:4], clusters_per_datacenter=2, state_replication="async",
                     async_interval_s=3.0)
    hashes = {run_partitioned(scenario, 5, tmp_path / str(p), partitions=p).sha256 for p in (1, 3, 4)}
    assert len(hashes) == 1


def test_cross_datacenter_moves_are_messages_and_layout_independent(tmp_path: Path) -> None:
    scenario = parse_scenario({"name": "fed-moves", "seed": 3, "duration_s": 40.0,
                               "federation": {**FEDERATION, "datacenters": NAMES[:4], "vms": 30,
                                              "arrival_window_s": 8.0, "migrations": 12, "migration_start_s": 14.0,
                                              "migration_window_s": 6.0, "vm_disk_gib": 0.5,
                                              "wan_bandwidth_mbit_s": 100_000.0}}, origin="test")
    runs = [run_partitioned(scenario, 3, tmp_path / str(p), partitions=p) for p in (1, 2, 4)]
    assert len({r.sha256 for r in runs}) == 1
    assert runs[0].metrics["federation.wan_migrations_completed"] == 12
    events = read_events(tmp_path / "4" / "events.parquet")
    moved = [ev for ev in events if isinstance(ev, CrossDatacenterMigrationFinished)]
    assert len(moved) == 12 and all(ev.from_datacenter != ev.datacenter for ev in moved)
    last = {ev.datacenter: ev.vms_running for ev in events if isinstance(ev, DatacenterUtilisationSampled)}
    assert sum(last.values()) == 30  # every VM runs exactly once after the moves: none lost, none doubled


@pytest.mark.parametrize(("fault", "expected"), [
    ({"outage_datacenter": "dc1", "outage_at_s": 15.0, "leader_preference": ["dc1", "dc2"]},
     {"federation.vms_evacuated": 4, "federation.vms_lost": 0}),
    ({"partition_datacenter": "dc2", "partition_at_s": 12.0, "partition_duration_s": 15.0},
     {"federation.vms_evacuated": 8, "federation.vms_fenced": 8}),
])
def test_a_datacenter_lost_or_cut_off_recovers_the_same_for_any_layout(
        tmp_path: Path, fault: dict[str, Any], expected: dict[str, float]) -> None:
    scenario = parse_scenario({"name": "fed-fault", "seed": 3, "duration_s": 60.0,
                               "federation": {**FEDERATION, "datacenters": NAMES[:4], "vms": 30,
                                              "arrival_window_s": 20.0, "failure_detection_s": 6.0,
                                              "vm_restart_s": 3.0, **fault}}, origin="test")
    runs = [run_partitioned(scenario, 3, tmp_path / str(p), partitions=p) for p in (1, 4)]
    assert runs[0].sha256 == runs[1].sha256
    assert {k: runs[1].metrics[k] for k in expected} == expected
    assert runs[1].metrics["federation.vms_placed"] == 30
    if "leader_preference" in fault:  # handed to dc1; once dc1 is lost (dc3 elected), handed to dc2
        transfers = [ev.datacenter for ev in read_events(tmp_path / "4" / "events.parquet")
                     if isinstance(ev, FederationLeadershipTransferred)]
        assert transfers == ["dc1", "dc2"]


def test_twelve_datacenters_with_five_voters_and_a_learner_lost_recover_the_same_for_any_layout(
        tmp_path: Path) -> None:
    """More clusters than a Raft group should have voters: 5 vote (one datacenter each), 7 follow
    as learners. Placements from every datacenter commit, and a lost learner datacenter (dc11:
    its representative is not in the voting majority) is detected from the leader's progress."""
    names = [f"dc{i}" for i in range(12)]
    scenario = parse_scenario({"name": "fed-learners", "seed": 3, "duration_s": 40.0,
                               "federation": {**FEDERATION, "datacenters": names, "vms": 36,
                                              "arrival_window_s": 10.0, "failure_detection_s": 5.0,
                                              "vm_restart_s": 3.0, "outage_datacenter": "dc11",
                                              "outage_at_s": 16.0}}, origin="test")
    assert scenario.federation.voter_clusters() == (0, 1, 2, 3, 4)
    runs = [run_partitioned(scenario, 3, tmp_path / str(p), partitions=p) for p in (1, 5, 12)]
    assert len({r.sha256 for r in runs}) == 1
    metrics = runs[-1].metrics
    assert metrics["federation.vms_placed"] == 36 and metrics["federation.vms_lost"] == 0
    assert 5.0 <= metrics["federation.detection_s"] < 10.0, metrics


def test_a_message_due_before_the_receivers_clock_is_a_causality_error(tmp_path: Path) -> None:
    scenario = small()
    process = DatacenterProcess(scenario, 3, 1, tmp_path / "dc1.parquet", lookahead_s=lookahead_s(scenario.federation))
    process.advance(1.0, [])
    late = Envelope(0.999, 0, 1, 1, b"")
    with pytest.raises(CausalityError, match=r"from dc0 due at t_s=0\.999000 reached dc1.*up to t_s=1\.000000"):
        process.advance(1.05, [late])
    process.abort()


def test_the_lookahead_is_the_smallest_wan_delay_floor() -> None:
    # one way 75 ms less the jitter (5 % of the 150 ms round trip): 67.5 ms
    assert lookahead_s(small().federation) == pytest.approx(0.0675, abs=1e-8)
    aws = small(datacenters=["us-west-1", "us-west-2", "eu-west-1"], wan="aws-2017", wan_uniform_rtt_ms=150.0)
    assert lookahead_s(aws.federation) == pytest.approx((19.3 / 2 - 19.3 * 0.05) / 1000, abs=1e-8)


def test_layouts_balance_expected_load_and_never_exceed_the_datacenters() -> None:
    section = small(user_share=[8, 1, 1, 1, 1, 1, 1, 1]).federation
    # dc0 carries 8/15 of the requests: 0.66 of load against 0.19 for each other datacenter
    assert choose_layout(section, 2) == ((0, 5, 7), (1, 2, 3, 4, 6))
    assert choose_layout(small().federation, 3) == ((0, 3, 6), (1, 4, 7), (2, 5))
    assert choose_layout(small().federation, 50) == tuple((dc,) for dc in range(8))
    with pytest.raises(PartitionError, match="--partitions 0 is not allowed; allowed: 1 to 8"):
        choose_layout(section, 0)


def test_unsupported_settings_are_refused_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(PartitionError, match=r"federation.enabled = false: only a federation can run partitioned"):
        run_partitioned(small(enabled=False), 3, tmp_path, partitions=2)
    with pytest.raises(PartitionError, match=r"federation.wan_jitter_pct = 50 leaves no lookahead"):
        run_partitioned(small(wan_jitter_pct=50.0), 3, tmp_path, partitions=2)
    assert main(["run", "default", "--partitions", "2", "--out", str(tmp_path / "x")]) == 2
    assert "federation.enabled = false" in capsys.readouterr().err


def test_cli_prints_the_layout_and_the_hash(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                            one_process: tuple[str, int]) -> None:
    scenario = tmp_path / "fed.toml"
    names = ", ".join(f'"{n}"' for n in NAMES)
    scenario.write_text('name = "fed-small"\nseed = 3\nduration_s = 20.0\n[federation]\n'
                        f"enabled = true\ndatacenters = [{names}]\nwan = \"uniform\"\nhosts_per_cluster = 4\n"
                        "vms = 40\nstart_s = 3.0\narrival_window_s = 12.0\ngossip_interval_s = 2.0\n"
                        "sample_interval_s = 5.0\n")
    assert main(["run", str(scenario), "--partitions", "3", "--out", str(tmp_path / "run")]) == 0
    out = capsys.readouterr().out
    assert "layout: dc0, dc3, dc6 | dc1, dc4, dc7 | dc2, dc5" in out
    assert f"event log sha256 {one_process[0]}" in out
    assert pq.read_metadata(tmp_path / "run" / "partitions" / "dc0.parquet").num_rows > 0


@pytest.fixture(scope="module")
def dask_client() -> Iterator[Any]:
    try:
        import distributed
    except ImportError:
        if os.environ.get("CI") == "true":
            pytest.fail("Dask distributed is not installed (the 'dask' extra); CI must run this test")
        pytest.skip("Dask distributed is not installed (pip install '.[dask]')")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster, distributed.Client(cluster) as client:
        yield client


@pytest.mark.dask
def test_on_a_dask_cluster_of_processes_two_and_eight_partitions_match_one_process(
        tmp_path: Path, dask_client: Any, one_process: tuple[str, int]) -> None:
    pids = set(dask_client.run(os.getpid).values())
    assert len(pids) == 2 and os.getpid() not in pids  # two worker processes, not this one
    for p in (2, 8):
        run = run_partitioned(small(), 3, tmp_path / f"d{p}", partitions=p, client=dask_client)
        assert (run.sha256, run.events) == one_process, f"{p} partitions on Dask"


@pytest.mark.dask
def test_on_dask_a_message_delivered_inside_the_lookahead_is_caught(tmp_path: Path, dask_client: Any) -> None:
    with pytest.raises(CausalityError, match="it was sent inside the lookahead"):
        run_partitioned(small(), 3, tmp_path, partitions=2, client=dask_client, plant="inside-lookahead")
    assert list((tmp_path / "partitions").iterdir()) == []  # the partial partitions are removed


def test_the_large_builtin_scenario_is_the_issues_shape() -> None:
    """20 datacenters, 50,000 hosts, 2.5 million VMs over a day: 5 voters and 35 learners."""
    scenario, _ = resolve_scenario("federation-20dc-large")
    section = scenario.federation
    assert len(section.datacenters) == 20 and section.cluster_count * section.hosts_per_cluster == 50_000
    assert section.vms == 2_500_000 and scenario.duration_s == 86_400
    assert section.voter_clusters() == (0, 2, 4, 6, 8) and partition_problem(section) is None

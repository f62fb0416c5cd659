"""The federation's pure core: the WAN matrix, scenario validation, the global and cluster
schedulers, the metrics CRDT and the replicated federation state."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from novacron.app.cli import main
from novacron.config import ConfigError
from novacron.federation.config import FederationSection, wan_timing
from novacron.federation.gossip import ClusterSummary, MetricsView
from novacron.federation.placement import ClusterScheduler, GlobalPolicy, PlacementRequest, rank_clusters
from novacron.federation.state import FederationStateMachine, Placement
from novacron.federation.wan import AWS_2017_RTT_MS, AWS_2017_SOURCE
from novacron.federation.wan_migration import plan_block_live, plan_cold, wan_link
from novacron.migration.planner import VMMigrationProfile
from novacron.migration.protocol import PowerState
from novacron.raft.messages import Entry, EntryKind
from novacron.scenario import capabilities, loads_scenario, resolve_scenario

ENABLED = "[federation]\nenabled = true\n"


def federation(text: str) -> FederationSection:
    return loads_scenario(ENABLED + text, origin="t.toml").federation


# -- the WAN -------------------------------------------------------------------------------------------


def test_builtin_matrix_is_the_published_table_symmetrised() -> None:
    wan = federation('datacenters = ["us-east-1", "eu-west-1", "ap-northeast-1"]').matrix()
    assert wan.rtt_ms[0][1] == wan.rtt_ms[1][0] == 80.5
    assert wan.rtt(1, 2) == 212.4 and wan.rtt(0, 0) < 1
    assert "Latency Between AWS Global Regions" in AWS_2017_SOURCE and wan.source == AWS_2017_SOURCE
    assert len(AWS_2017_RTT_MS) == 15


def test_user_matrix_and_uniform_profile() -> None:
    wan = federation('datacenters = ["a", "b"]\nwan = "matrix"\nwan_rtt_ms = [[0, 42.0], [42.0, 0]]').matrix()
    assert wan.rtt(0, 1) == 42.0 and wan.source == "scenario wan_rtt_ms"
    uniform = federation('datacenters = ["x", "y", "z"]\nwan = "uniform"\nwan_uniform_rtt_ms = 150.0').matrix()
    assert uniform.max_rtt_ms == uniform.min_rtt_ms == 150.0


def test_wan_timing_keeps_broadcast_well_under_the_election_timeout() -> None:
    timing = wan_timing(max_rtt_ms=236.6, tick_ms=10.0)
    assert timing.heartbeat_ticks * 10 >= 236.6
    assert timing.election_ticks_min * 10 >= 3 * timing.heartbeat_ticks * 10 + 2 * 236.6
    assert timing.election_ticks_max == 2 * timing.election_ticks_min


# -- validation: one line naming the key, the value and what is allowed --------------------------------

BAD = [
    ('datacenters = ["us-east-1", "mars-1"]', "federation.datacenters = 'mars-1'", "allowed: one of"),
    ('datacenters = ["a", "b"]\nwan = "matrix"\nwan_rtt_ms = [[0, 10], [11, 0]]', "symmetric", "allowed:"),
    ('datacenters = ["a", "b"]\nwan = "matrix"\nwan_rtt_ms = [[0, 10]]', "needs 2 rows", "allowed:"),
    ('datacenters = ["a", "b"]\nwan = "matrix"\nwan_rtt_ms = [[1, 10], [10, 0]]', "diagonal", "allowed:"),
    ('wan_rtt_ms = [[0]]', "wan_rtt_ms is set", "allowed:"),
    ('user_share = [1.0, 2.0]', "federation.user_share has 2 values", "allowed: [] or 3"),
    ('outage_datacenter = "us-west-9"', "federation.outage_datacenter = 'us-west-9'", "allowed: '' or one of"),
    ('clusters_per_datacenter = 34', "gives 102 clusters", "allowed: at most 100"),
    ('voters = 4\nclusters_per_datacenter = 1', "federation.voters = 4 is out of range", "allowed: 0 to 3"),
    ("voters = 10", "federation.voters = 10 is out of range", "from 0 to 9"),
    ('ha_group_size = 4', "federation.ha_group_size = 4", "allowed: 1 to 3"),
    ('leader_preference = ["eu-west-2"]', "federation.leader_preference = 'eu-west-2'", "allowed: names"),
    ('leader_preference = ["eu-west-1", "eu-west-1"]', "federation.leader_preference = ['eu-west-1', 'eu-west-1']",
     "allowed: distinct"),
    ('policy = "cheapest"', "federation.policy = 'cheapest'", "allowed: one of"),
    ('datacenters = ["us-east-1", "us-east-1"]', "each once", "allowed:"),
    ('datacenters = ["a", "b"]\nwan = "matrix"\nwan_rtt_ms = [[0, "x"], [1, 0]]', "wrong type", "lists of numbers"),
]


@pytest.mark.parametrize(("text", "needle", "allowed"), BAD)
def test_bad_federation_section_is_one_line(text: str, needle: str, allowed: str) -> None:
    with pytest.raises(ConfigError) as info:
        federation(text)
    message = str(info.value)
    assert "\n" not in message and needle in message and allowed in message, message


def test_bad_federation_scenario_exits_2_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(ENABLED + 'datacenters = ["us-east-1", "atlantis"]\n')
    code = main(["run", str(path), "--out", str(tmp_path / "run"), "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err and "atlantis" in err and "Traceback" not in err, err


def test_the_real_runtime_refuses_a_federation_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["run", "federation-3dc", "--runtime", "real", "--out", str(tmp_path / "run"), "--no-progress"])
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err and "federation.enabled = True is not supported" in err, err


def test_a_disabled_section_is_not_checked_and_adds_no_capability() -> None:
    scenario, _ = resolve_scenario(None)
    assert not scenario.federation.enabled
    assert not {"federation", "federation-outage"} & capabilities(scenario)
    fed, _ = resolve_scenario("federation-3dc")
    assert {"federation", "federation-outage"} <= capabilities(fed)


# -- hierarchical placement ------------------------------------------------------------------------------


def view(*free: float) -> list[ClusterSummary]:
    return [ClusterSummary(cluster=c, datacenter=c, version=1, written_s=0.0, free_cpu=f, free_memory_gib=1000,
                           total_cpu=100, total_memory_gib=1000, vms=0) for c, f in enumerate(free)]


def policy(name: str, costs: tuple[float, ...] = ()) -> GlobalPolicy:
    return GlobalPolicy(name, federation('datacenters = ["us-east-1", "eu-west-1", "ap-northeast-1"]').matrix(),
                        costs)


REQ = PlacementRequest(vm_id="v", cpu=4, memory_gib=8, user_datacenter=2, data_datacenter=1, group="g")


@pytest.mark.parametrize(("name", "costs", "expected"), [
    ("latency", (), [2, 0, 1]),      # from ap-northeast-1: itself, us-east-1 (145 ms), eu-west-1 (212 ms)
    ("capacity", (), [1, 0, 2]),     # most free CPU first
    ("cost", (0.05, 0.03, 0.04), [1, 2, 0]),
    ("locality", (), [1, 0, 2]),     # the data's datacenter, then nearest to it
])
def test_each_policy_ranks_as_it_says(name: str, costs: tuple[float, ...], expected: list[int]) -> None:
    assert rank_clusters(REQ, view(50, 80, 20), policy(name, costs), lost=(), avoid_datacenters=()) == expected


def test_lost_full_and_anti_affine_datacenters_are_left_out() -> None:
    ranked = rank_clusters(REQ, view(50, 80, 2), policy("latency"), lost={1}, avoid_datacenters=())
    assert ranked == [0]  # 1 is lost, 2 has 2 free vCPUs for a 4-vCPU VM
    assert rank_clusters(REQ, view(50, 80, 20), policy("latency"), lost=(), avoid_datacenters={2}) == [0, 1]


def test_cluster_scheduler_spreads_and_keeps_headroom() -> None:
    sched = ClusterScheduler(2, 10.0, 100.0, headroom_cpu_pct=20.0, headroom_memory_pct=10.0)
    assert [sched.place(4, 1) for _ in range(4)] == [0, 1, 0, 1]
    assert sched.place(1, 1) is None  # 8 of 10 vCPUs used on both: the 20 % headroom is kept
    assert sched.place(0, 1, exclude={0}) == 1


# -- metrics replicated eventually -----------------------------------------------------------------------

summaries = st.builds(ClusterSummary, cluster=st.integers(0, 3), datacenter=st.just(0),
                      version=st.integers(0, 20), written_s=st.floats(0, 100), free_cpu=st.just(1.0),
                      free_memory_gib=st.just(1.0), total_cpu=st.just(1.0), total_memory_gib=st.just(1.0),
                      vms=st.just(0))


def merged(*batches: list[ClusterSummary]) -> dict[int, int]:
    v = MetricsView()
    for batch in batches:
        v.merge(batch)
    return {c: s.version for c, s in v.entries.items()}


@given(st.lists(summaries), st.lists(summaries))
def test_view_merge_is_commutative_and_idempotent(a: list[ClusterSummary], b: list[ClusterSummary]) -> None:
    assert merged(a, b) == merged(b, a) == merged(a, b, a, b)


# -- the replicated federation state ---------------------------------------------------------------------

def entry(index: int, data: bytes) -> Entry:
    return Entry(index, 1, EntryKind.NORMAL, data)


def test_state_refuses_what_would_break_the_federation() -> None:
    sm = FederationStateMachine(host_cpu=8, host_memory_gib=32, clusters_per_datacenter=1)
    place = FederationStateMachine.place
    sm.apply(entry(1, place("c1", "a", Placement(0, 0, 6, 8, ""))))
    sm.apply(entry(2, place("c2", "a", Placement(1, 0, 1, 1, ""))))      # twice
    sm.apply(entry(3, place("c3", "b", Placement(0, 0, 4, 8, ""))))      # over the host's 8 vCPUs
    sm.apply(entry(4, FederationStateMachine.evacuate("c4", "a", 1, 0)))  # datacenter 0 is not lost
    sm.apply(entry(5, place("c1", "c", Placement(2, 0, 1, 1, ""))))      # a retried id: applied once
    sm.apply(entry(6, b'{"id": "c6", "op": "noop"}'))                    # unknown
    assert set(sm.vms) == {"a"} and sm.refused == 4
    sm.apply(entry(16, sm.lose(0)))
    sm.apply(entry(17, FederationStateMachine.evacuate("c7", "a", 1, 0)))
    sm.apply(entry(18, place("c8", "d", Placement(0, 1, 1, 1, ""))))      # into a lost datacenter
    assert sm.vms["a"].cluster == 1 and "d" not in sm.vms and sm.used(0, 0) == (0.0, 0.0)
    sm.apply(entry(19, sm.rejoin(0)))
    assert sm.lost == set() and sm.lose(0) != FederationStateMachine.lose(
        FederationStateMachine(8, 32, 1), 0)  # a second loss is a new command
    copy = FederationStateMachine(8, 32, 1)
    copy.restore(sm.snapshot())
    assert copy.snapshot() == sm.snapshot() and dataclasses.asdict(copy.vms["a"]) == dataclasses.asdict(sm.vms["a"])


# -- moving a VM with its disk over the WAN --------------------------------------------------------------

GIB = 1 << 30


def test_cold_move_copies_the_disk_over_the_wan_share() -> None:
    vm = VMMigrationProfile(vm_id="v", memory_bytes=8 * GIB, wws_bytes=GIB, dirty_rate_pages_s=0,
                            disk_bytes=20 * GIB, power_state=PowerState.SHUTOFF)
    link = wan_link(1000.0, 0.5, rtt_ms=100.0)
    move = plan_cold(vm, link)
    disk_s = 20 * GIB / (1000e6 / 8 * 0.5)
    assert move.total_time_ms == pytest.approx((2.0 + 0.4 + disk_s) * 1000) == move.downtime_ms
    assert move.wan_bytes == 20 * GIB


def test_block_live_move_mirrors_the_disk_then_precopies_memory() -> None:
    vm = VMMigrationProfile(vm_id="v", memory_bytes=4 * GIB, wws_bytes=GIB // 4, dirty_rate_pages_s=2000,
                            disk_bytes=10 * GIB)
    link = wan_link(1000.0, 0.5, rtt_ms=80.0)
    writes = 5 * 2**20
    move = plan_block_live(vm, link, disk_write_bytes_s=writes, downtime_limit_ms=500.0)
    assert move.converges and move.disk_phase_s == pytest.approx(10 * GIB / (link.bandwidth_bytes_s - writes))
    assert move.downtime_ms < 1000 < move.total_time_ms / 1000 * 1000
    assert move.wan_bytes > 10 * GIB + writes * move.disk_phase_s  # the disk, what was written meanwhile, memory
    stuck = plan_block_live(vm, link, disk_write_bytes_s=link.bandwidth_bytes_s, downtime_limit_ms=500.0)
    assert not stuck.converges and stuck.total_time_ms == float("inf")


# -- voters and learners of the federation group ---------------------------------------------------

def test_every_cluster_votes_while_there_are_at_most_nine() -> None:
    section = federation('datacenters = ["us-east-1", "eu-west-1", "ap-northeast-1"]\nclusters_per_datacenter = 3')
    assert section.voter_clusters() == tuple(range(9))


def test_a_large_federation_keeps_five_voters_one_per_datacenter_preferred_first() -> None:
    names = ", ".join(f'"dc{i}"' for i in range(20))
    section = federation(f'datacenters = [{names}]\nwan = "uniform"\nclusters_per_datacenter = 2\n'
                         'leader_preference = ["dc7"]')
    assert section.voter_clusters() == (0, 2, 4, 6, 14)   # dc7's first cluster, then dc0..dc3's


def test_voters_beyond_the_datacenters_take_second_clusters() -> None:
    section = federation('datacenters = ["us-east-1", "eu-west-1"]\nclusters_per_datacenter = 3\nvoters = 3')
    assert section.voter_clusters() == (0, 1, 3)


def test_a_federation_request_nobody_answers_waits_until_the_end_and_is_not_a_rejection() -> None:
    from novacron.cluster.events import RunFinished
    from novacron.federation.events import FederationVMPlaced, FederationVMRejected, FederationVMRequested
    from novacron.federation.metrics import FederationFold
    from novacron.streaming import EventsByType, fold_events

    def asked(vm: str, t_s: float) -> FederationVMRequested:
        return FederationVMRequested(t_s=t_s, seq=0, source="t", vm_id=vm, user_datacenter="a")

    placed = FederationVMPlaced(t_s=2.0, seq=0, source="t", vm_id="v1", datacenter="a", cluster_id="a/c0",
                                host_id="a/c0/h000", ha_group="", user_datacenter="a", user_rtt_ms=1.0, attempts=1,
                                placement_latency_ms=1000.0)
    rejected = FederationVMRejected(t_s=3.0, seq=0, source="t", vm_id="v2", user_datacenter="a", reason="full")
    log = [asked("v1", 1.0), asked("v2", 1.0), asked("v3", 4.0), placed, rejected]
    log = [dataclasses.replace(ev, seq=k) for k, ev in enumerate(log)]
    without_end = fold_events(FederationFold(), EventsByType(log))
    assert without_end["federation.vms_unanswered"] == 1 and without_end["federation.vms_requested"] == 3
    assert without_end["federation.vms_rejected_pct"] == 50.0  # of the two answered
    assert "federation.vm_answer_wait_max_ms" not in without_end  # still waiting, end unknown: not measured
    end = RunFinished(t_s=100.0, seq=len(log), source="t", duration_s=100.0)
    ended = fold_events(FederationFold(), EventsByType([*log, end]))
    assert ended["federation.vm_answer_wait_max_ms"] == 96_000.0

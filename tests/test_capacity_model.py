"""The capacity model: conservation under faults, topology, demand, uptime, scenarios, step API."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import simpy
from hypothesis import given, note
from hypothesis import strategies as st

from novacron.app.cli import main
from novacron.app.eventstore import event_log_sha256
from novacron.cluster.events import (
    ClusterIOSampled,
    HostFailed,
    HostLocated,
    HostRecovered,
    InjectedFaultEnded,
    InjectedFaultStarted,
    RunFinished,
    VMFailed,
    VMMoved,
    VMPlaced,
    VMStopped,
)
from novacron.cluster.state import VMStatus
from novacron.cluster.uptime import uptime_metrics
from novacron.config import ConfigError
from novacron.events import Event
from novacron.metrics import EventsByType, compute_metrics
from novacron.scenario import builtin_scenario_names, builtin_scenario_text, loads_scenario
from sim import Simulation
from sim.allocation import AllocationStore, VMRequest
from sim.cluster_model import FAILED, PENDING, RUNNING, ClusterModel
from sim.context import SimContext
from sim.control_plane import DirectControlPlane, Placer
from sim.run import simulate
from sim.workloads.synthetic import lomax_lifetimes_s
from tests.one_line_errors import one_line_error

REPO = Path(__file__).resolve().parents[1]


def _scenario_text(hosts: int, vms: int, mtbf_h: float, lifetime_mean_s: float | None, overcommit: float,
                   rack_mtbf_h: float | None = None, correlated_pct: float = 0.0, placer: str = "scheduler",
                   migrations: int = 0, kinds: tuple[str, ...] = ()) -> str:
    lifetime = "" if lifetime_mean_s is None else f"lifetime_mean_s = {lifetime_mean_s}\n"
    rack = "" if rack_mtbf_h is None else f"rack_mtbf_h = {rack_mtbf_h}\n"
    return (f'name = "prop"\nduration_s = 14400.0\n[cluster]\nhosts = {hosts}\nhost_cpu_cores = 16\n'
            f"host_memory_gib = 64.0\ncpu_overcommit = {overcommit}\nhosts_per_rack = 2\nracks_per_zone = 2\n"
            f"[workload]\nvms = {vms}\narrival_window_s = 7200.0\ndemand_update_s = 600.0\n{lifetime}"
            f"diurnal_amplitude = 0.3\nburst_probability = 0.1\nkinds = {list(kinds)}\n"
            f"[faults]\nenabled = true\nhost_mtbf_h = {mtbf_h}\nhost_mttr_h = 0.5\nrestart_delay_s = 120.0\n"
            f"correlated_failure_pct = {correlated_pct}\n{rack}"
            f"[scheduler]\nplacer = \"{placer}\"\nrebalance_interval_s = 600.0\n"
            "[cache]\nenabled = false\n"
            # Migrations run over most of the run, so VMs stop, fail and hosts crash under them.
            f"[migration]\nmigrations = {migrations}\nstart_s = 600.0\nrequest_window_s = 9000.0\n"
            "[raft]\nsimulate_s = 0.0\n")


def check_conservation(sim: Simulation, *, pending_ok: bool = False) -> None:
    model = sim.model
    assert model is not None
    inv, vms = model.store, model.vms
    n = vms.size
    tolerance = 1e-6
    assert np.all(inv.cpu_allocated <= inv.cpu_capacity + tolerance), "CPU capacity exceeded"
    assert np.all(inv.memory_allocated_gib <= inv.memory_capacity_gib + tolerance), "memory capacity exceeded"
    running = np.flatnonzero(vms.status[:n] == RUNNING)
    starting = model.starting  # placed, room held, their kind's start not over: they hold room too
    holding = np.union1d(running, np.array(sorted(starting), dtype=np.int64))
    hosts = len(inv.host_ids)
    cpu = np.bincount(vms.host[holding], weights=vms.cpu_cores[holding], minlength=hosts)
    memory = np.bincount(vms.host[holding], weights=vms.memory_gib[holding], minlength=hosts)
    np.testing.assert_allclose(inv.cpu_allocated, cpu, atol=tolerance)
    np.testing.assert_allclose(inv.memory_allocated_gib, memory, atol=tolerance)
    assert all(inv.host_up[vms.host[running]]), "a running VM is on a crashed host"
    assert set(inv.vm_host) == {vms.ids[i] for i in holding}
    # The projection of the log says the same: each VM on exactly one host, or recorded as failed.
    state = sim.state
    seen: set[str] = set()
    for host in state.hosts.values():
        assert not (host.vms & seen), "a VM is on two hosts"
        seen |= host.vms
    for i in range(n):
        vm = state.vms[vms.ids[i]]
        if vms.status[i] == RUNNING or i in starting:  # the log's fold counts a starting VM as placed
            assert vm.status is VMStatus.RUNNING and vm.host_id == inv.host_ids[vms.host[i]]
        elif vms.status[i] == FAILED:
            assert vm.status is VMStatus.FAILED and vm.host_id is None
        else:
            assert vm.host_id is None
    assert seen == {vms.ids[i] for i in holding}
    if not pending_ok:
        pending = set(np.flatnonzero(vms.status[:n] == PENDING).tolist()) - starting
        assert not pending, "a decision is still in flight with the direct plane"
    check_projections(sim)


def check_projections(sim: Simulation) -> None:
    """Every view of where VMs are agrees with the control plane's allocation store."""
    services = sim.ctx.services
    store = services.allocations
    scheduler = services.scheduler
    if scheduler is not None:
        assert {vm: p.row for vm, p in scheduler.vms.items()} == store.vm_host
        assert set(scheduler.claims) == set(store.claims)
        assert np.array_equal(scheduler.table.up, store.host_up)
    migrations = services.migrations
    for vm_id, host in store.vm_host.items():
        if vm_id not in migrations.mine:  # a copy in flight: the hypervisor's guest may be ahead
            assert migrations.hv.location[vm_id] == store.host_ids[host], vm_id


@given(hosts=st.integers(1, 8), vms=st.integers(0, 80), mtbf_h=st.sampled_from([0.5, 2.0, 50.0]),
       lifetime=st.sampled_from([None, 1800.0, 20000.0]), overcommit=st.sampled_from([1.0, 2.0]),
       rack_mtbf_h=st.sampled_from([None, 2.0]), correlated=st.sampled_from([0.0, 50.0]),
       placer=st.sampled_from(["scheduler", "first_fit"]), seed=st.integers(0, 2**32), steps=st.integers(1, 6),
       migrations=st.sampled_from([0, 5, 40]), kinds=st.sampled_from([(), ("vm", "container", "microvm")]))
def test_every_vm_is_on_one_host_or_failed_and_capacity_is_never_exceeded(
        hosts: int, vms: int, mtbf_h: float, lifetime: float | None, overcommit: float, rack_mtbf_h: float | None,
        correlated: float, placer: str, seed: int, steps: int, migrations: int, kinds: tuple[str, ...]) -> None:
    text = _scenario_text(hosts, vms, mtbf_h, lifetime, overcommit, rack_mtbf_h, correlated, placer, migrations,
                          kinds)
    note(f"seed={seed}\n{text}")
    sim = Simulation(loads_scenario(text, origin="prop.toml"), seed=seed)
    for k in range(1, steps + 1):
        sim.run(until_s=sim.scenario.duration_s * k / steps)
        check_conservation(sim)
    assert sim.finished


class LaggingControlPlane(DirectControlPlane):
    """Decides like the direct plane but ``lag_s`` later, as a replicated log would (commit latency)."""

    def __init__(self, ctx: SimContext, store: AllocationStore, placer: Placer | None, lag_s: float) -> None:
        super().__init__(ctx, store, placer)
        self._env = ctx.env
        self._lag_s = lag_s

    def _later(self, decide: Callable[[], int | None]) -> simpy.Event:
        applied = self._env.event()
        self._env.timeout(self._lag_s).callbacks.append(lambda _ev: applied.succeed(decide()))
        return applied

    def place(self, vm: VMRequest) -> simpy.Event:
        return self._later(lambda: self.decide_placement(vm))

    def restart_elsewhere(self, vm: VMRequest, failed_host: int) -> simpy.Event:
        return self._later(lambda: self.decide_restart(vm))

    def commit_move(self, vm: VMRequest, to_host: int, mover: str = "controller") -> simpy.Event:
        return self._later(lambda: self.decide_move(vm, to_host, mover))


def lagging(lag_s: float) -> Callable[[SimContext, AllocationStore, Placer | None], LaggingControlPlane]:
    """A control-plane factory for ``Simulation(..., control_plane=...)``."""
    return lambda ctx, store, placer: LaggingControlPlane(ctx, store, placer, lag_s)


@given(hosts=st.integers(1, 6), vms=st.integers(0, 60), lag_s=st.sampled_from([0.5, 30.0, 400.0]),
       seed=st.integers(0, 2**32), steps=st.integers(1, 5), migrations=st.sampled_from([0, 5, 40]),
       kinds=st.sampled_from([(), ("vm", "gpu_vm", "microvm")]))
def test_conservation_holds_when_decisions_take_time(hosts: int, vms: int, lag_s: float, seed: int,
                                                     steps: int, migrations: int, kinds: tuple[str, ...]) -> None:
    text = _scenario_text(hosts, vms, 1.0, 1500.0, 1.0, rack_mtbf_h=3.0, correlated_pct=50.0, migrations=migrations,
                          kinds=kinds)
    note(f"seed={seed} lag_s={lag_s} kinds={kinds}")
    sim = Simulation(loads_scenario(text, origin="prop.toml"), seed=seed, control_plane=lagging(lag_s))
    assert isinstance(sim.model and sim.model.control, LaggingControlPlane)
    for k in range(1, steps + 1):
        sim.run(until_s=sim.scenario.duration_s * k / steps + 0.123)  # off the decision instants
        check_conservation(sim, pending_ok=True)
    latency = sim.metrics().get("cluster.placement_latency_max_ms")
    assert latency is None or latency == pytest.approx(lag_s * 1000)


def test_crashed_hosts_vms_are_restarted_elsewhere_after_the_restart_delay() -> None:
    text = _scenario_text(6, 40, 2.0, None, 2.0)
    ctx = simulate(loads_scenario(text, origin="x"), 5)
    failed = ctx.log.of_type(VMFailed)
    recoveries = ctx.log.of_type(HostRecovered)
    assert failed, "expected some VM failures with a 2 h MTBF on 6 hosts over 4 h"
    placements: dict[str, list[VMPlaced]] = {}
    for ev in ctx.log.of_type(VMPlaced):
        placements.setdefault(ev.vm_id, []).append(ev)
    restarted = 0
    for ev in failed:
        later = [p for p in placements[ev.vm_id] if p.seq > ev.seq]
        if later:
            restarted += 1
            assert later[0].t_s - ev.t_s >= 120.0 - 1e-9
            back = [r for r in recoveries if r.host_id == ev.host_id and ev.seq < r.seq < later[0].seq]
            # Elsewhere, unless it waited for room until its own host came back.
            assert later[0].host_id != ev.host_id or back
    assert restarted > 0
    assert compute_metrics(ctx.log)["cluster.placement_latency_max_ms"] == 0.0  # the direct plane is instant


def test_hosts_sit_in_racks_zones_and_datacenters() -> None:
    text = ('[cluster]\nhosts = 12\nhosts_per_rack = 2\nracks_per_zone = 3\nzones_per_datacenter = 1\n'
            '[workload]\nvms = 0\n')
    located = simulate(loads_scenario(text, origin="x"), 1).log.of_type(HostLocated)
    assert [e.rack for e in located[:4]] == ["rack-000", "rack-000", "rack-001", "rack-001"]
    assert located[5].zone == "zone-00" and located[6].zone == "zone-01"
    assert located[6].datacenter == "dc-1"


def test_rack_failure_takes_down_every_host_of_one_rack() -> None:
    text = _scenario_text(8, 10, 1e6, None, 1.0, rack_mtbf_h=1.0)
    ctx = simulate(loads_scenario(text, origin="x"), 2)
    rack_of = {e.host_id: e.rack for e in ctx.log.of_type(HostLocated)}
    rack_failures = [e for e in ctx.log.of_type(HostFailed) if e.reason == "rack failure"]
    assert rack_failures
    first_t = rack_failures[0].t_s
    same_instant = [e for e in rack_failures if e.t_s == first_t]
    assert len(same_instant) == 2 and len({rack_of[e.host_id] for e in same_instant}) == 1


def test_correlated_crash_hits_a_host_of_the_same_rack() -> None:
    text = _scenario_text(8, 10, 1.0, None, 1.0, correlated_pct=100.0)
    ctx = simulate(loads_scenario(text, origin="x"), 4)
    rack_of = {e.host_id: e.rack for e in ctx.log.of_type(HostLocated)}
    events = ctx.log.of_type(HostFailed)
    pairs = [(a, b) for a, b in itertools.pairwise(events) if b.reason == "correlated crash"]
    assert pairs
    for crash, mate in pairs:
        assert crash.t_s == mate.t_s and rack_of[crash.host_id] == rack_of[mate.host_id]


def test_manager_crash_and_partition_are_hook_events() -> None:
    text = ('duration_s = 86400.0\n[workload]\nvms = 0\n[faults]\nenabled = true\nmanager_mtbf_h = 2.0\n'
            'partition_mtbf_h = 3.0\npartition_duration_s = 90.0\n')
    sim = Simulation(loads_scenario(text, origin="x"), seed=1)
    seen: list[Event] = []
    assert sim.model is not None
    sim.ctx.log.subscribe(InjectedFaultStarted, seen.append)
    sim.ctx.log.subscribe(InjectedFaultEnded, seen.append)
    sim.run()
    kinds = {(type(e).__name__, e.fault_kind) for e in seen}  # type: ignore[attr-defined]
    assert kinds == {("InjectedFaultStarted", "manager_crash"), ("InjectedFaultEnded", "manager_crash"),
                     ("InjectedFaultStarted", "network_partition"), ("InjectedFaultEnded", "network_partition")}
    starts = sim.ctx.log.of_type(InjectedFaultStarted)
    ends = sim.ctx.log.of_type(InjectedFaultEnded)
    partition = next(e for e in starts if e.fault_kind == "network_partition")
    healed = next(e for e in ends if e.fault_kind == "network_partition" and e.seq > partition.seq)
    assert healed.t_s - partition.t_s == pytest.approx(90.0)
    # named as the managers name themselves, from 1 (faults.managers = 3 by default)
    assert {e.fault_target for e in starts if e.fault_kind == "manager_crash"} <= {"manager-1", "manager-2",
                                                                                     "manager-3"}


def test_uptime_counts_downtime_from_failure_to_restart() -> None:
    def ev(cls: type[Event], t_s: float, seq: int, **fields: object) -> Event:
        return cls(t_s=t_s, seq=seq, source="test", **fields)

    events = [
        ev(VMPlaced, 0.0, 0, vm_id="a", host_id="h0", cpu_cores=1, memory_gib=1.0, decision_ms=0.0),
        ev(VMPlaced, 0.0, 1, vm_id="b", host_id="h0", cpu_cores=1, memory_gib=1.0, decision_ms=0.0),
        ev(VMFailed, 100.0, 2, vm_id="a", host_id="h0", reason="crash"),
        ev(VMPlaced, 160.0, 3, vm_id="a", host_id="h1", cpu_cores=1, memory_gib=1.0, decision_ms=0.0),
        ev(VMFailed, 400.0, 4, vm_id="b", host_id="h0", reason="crash"),
        ev(VMStopped, 500.0, 5, vm_id="b", host_id="h0"),
        ev(RunFinished, 1000.0, 6, duration_s=1000.0),
    ]
    metrics = uptime_metrics(EventsByType(events))
    # a: alive 1000 s, down 60 s; b: alive 500 s, down 100 s (failed, stopped while down).
    assert metrics["cluster.uptime_pct"] == pytest.approx(100 * (1 - 160 / 1500))
    assert metrics["cluster.vm_uptime_min_pct"] == pytest.approx(80.0)
    assert metrics["cluster.vm_failures"] == 2


def test_lomax_lifetimes_have_the_requested_scale() -> None:
    rng = np.random.default_rng(0)
    draws = lomax_lifetimes_s(rng, mean_s=1000.0, shape=1.5, size=200_000)
    scale = 1000.0 * 0.5
    assert np.median(draws) == pytest.approx(scale * (2 ** (1 / 1.5) - 1), rel=0.03)


def test_diurnal_demand_peaks_in_the_day_and_dips_at_night() -> None:
    text = ('[cluster]\nhosts = 4\n[workload]\nvms = 200\narrival_window_s = 0.0\ndiurnal_amplitude = 0.5\n'
            'mean_cpu_utilisation = 0.4\n')
    sim = Simulation(loads_scenario(text, origin="x"), seed=3)
    sim.run(until_s=1.0)
    model = sim.model
    assert isinstance(model, ClusterModel)
    day = model.cpu_demand_cores(6 * 3600.0)[1].sum()
    night = model.cpu_demand_cores(18 * 3600.0)[1].sum()
    assert day > 2 * night


def test_stepped_run_reproduces_the_one_shot_log() -> None:
    scenario = loads_scenario(builtin_scenario_text("scale-10"), origin="scale-10")
    sim = Simulation(scenario, seed=9)
    for until_s in (100.0, 5000.0, 40000.0):
        sim.run(until_s=until_s)
        assert sim.now_s == until_s
    sim.run()
    assert event_log_sha256(sim.ctx.log) == event_log_sha256(simulate(scenario, 9).log)
    df = sim.events_df()
    assert len(df) == len(sim.ctx.log) and set(df["type"]) >= {"VMPlaced", "HostUtilisationSampled"}
    with pytest.raises(RuntimeError, match="finished"):
        sim.run()


def test_step_api_rejects_going_back_in_time() -> None:
    sim = Simulation("default", seed=1).run(until_s=50.0)
    with pytest.raises(ValueError, match="back in time"):
        sim.run(until_s=10.0)


@pytest.mark.parametrize("name", ["scale-3", "scale-10", "scale-100", "scale-1000", "scale-10000"])
def test_scaling_table_scenarios_ship_built_in_once(name: str) -> None:
    """The built-ins are the one source; ``novacron scenario NAME > my.toml`` gives an editable copy."""
    assert name in builtin_scenario_names()
    assert not (REPO / "scenarios" / f"{name}.toml").exists(), "a second copy of a built-in scenario"
    scenario = loads_scenario(builtin_scenario_text(name), origin=name)
    assert scenario.duration_s == 86400.0 and scenario.workload.demand_update_s == 300.0
    assert scenario.faults.enabled


def test_scale_1000_is_the_analysis_top_row() -> None:
    scenario = loads_scenario(builtin_scenario_text("scale-1000"), origin="scale-1000")
    assert (scenario.cluster.hosts, scenario.workload.vms) == (1000, 50_000)


@pytest.mark.parametrize(("text", "expected"), [
    ("[faults]\nhost_mtbf_h = 0\n", "faults.host_mtbf_h = 0 is out of range"),
    ("[faults]\nrepair_distribution = \"gamma\"\n", "faults.repair_distribution = 'gamma' is not allowed; "
                                                    "allowed: one of 'exponential', 'lognormal', 'weibull'"),
    ("[faults]\nenabeld = true\n", "unknown key 'faults.enabeld'; did you mean 'faults.enabled'?"),
    ("[faults]\ncorrelated_failure_pct = 101\n", "faults.correlated_failure_pct = 101 is out of range"),
    ("[workload]\nlifetime_shape = 1.0\n", "workload.lifetime_shape = 1.0 is out of range"),
    ("[workload]\ndiurnal_amplitude = 2\n", "workload.diurnal_amplitude = 2 is out of range"),
    ("[cluster]\nracks_per_zone = 0\n", "cluster.racks_per_zone = 0 is out of range"),
])
def test_new_sections_are_validated_with_one_line_errors(text: str, expected: str) -> None:
    assert expected in one_line_error(ConfigError, lambda: loads_scenario(text, origin="bad.toml"))


def test_default_run_target_table_has_uptime_and_peaks(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", "--out", str(tmp_path), "--no-progress"]) == 0
    out = capsys.readouterr().out
    for row in ("uptime", "peak CPU utilisation", "peak memory utilisation"):
        assert any(line.startswith(row + " ") for line in out.splitlines()), row


def test_network_and_disk_demand_follow_cpu_activity() -> None:
    text = ('[cluster]\nhosts = 3\nhost_network_gbps = 1.0\nhost_disk_iops = 1000.0\n[workload]\nvms = 30\n'
            'arrival_window_s = 0.0\nnetwork_mbps_per_vcpu = 100.0\ndisk_iops_per_vcpu = 0.0\n')
    ctx = simulate(loads_scenario(text, origin="x"), 2)
    samples = ctx.log.of_type(ClusterIOSampled)
    assert len(samples) == 11  # one per 5-minute update before the hour ends
    assert all(s.network_pct > 0 and s.disk_io_pct == 0 for s in samples)
    assert all(s.network_host_max_pct >= s.network_pct for s in samples)
    metrics = compute_metrics(ctx.log)
    assert metrics["cluster.peak_network_pct"] == max(s.network_pct for s in samples)


def test_a_committed_move_changes_the_allocation_and_every_projection() -> None:
    """The control plane writes the store; the VM rows, the log's fold and the hypervisor view follow."""
    text = ('[cluster]\nhosts = 3\n[workload]\nvms = 4\narrival_window_s = 0.0\n'
            '[scheduler]\nplacer = "first_fit"\n[cache]\nenabled = false\n')
    sim = Simulation(loads_scenario(text, origin="x"), seed=1).run(until_s=1.0)
    model = sim.model
    assert model is not None
    vm = 0
    source = int(model.vms.host[vm])
    target = (source + 1) % 3
    decision = model.control.commit_move(model.vms.vm_request(vm), target)
    sim.run(until_s=2.0)  # the model applies decisions in their callbacks
    store, vm_id = model.store, model.vms.ids[vm]
    assert decision.value == target and int(model.vms.host[vm]) == target and store.host_of(vm_id) == target
    assert sim.state.vms[vm_id].host_id == store.host_ids[target]
    assert sim.ctx.services.migrations.hv.location[vm_id] == store.host_ids[target]
    moved = sim.ctx.log.of_type(VMMoved)
    assert [(e.from_host_id, e.host_id) for e in moved] == [(store.host_ids[source], store.host_ids[target])]
    assert model.control.commit_move(model.vms.vm_request(vm), target).value is None  # already there
    model.fail_host(source, "test")
    assert model.control.commit_move(model.vms.vm_request(vm), source).value is None  # a crashed host takes nothing
    model.recover_host(source)
    sim.run(until_s=3.0)
    check_conservation(sim)


def test_scheduler_moves_reach_the_model() -> None:
    text = ('duration_s = 7200.0\n[cluster]\nhosts = 6\n[workload]\nvms = 60\narrival_window_s = 60.0\n'
            'lifetime_mean_s = 3000.0\n[scheduler]\nstrategy = "pack"\nrebalance = "balance"\n'
            'rebalance_interval_s = 300.0\nimbalance_threshold_pct = 1.0\n[cache]\nenabled = false\n')
    sim = Simulation(loads_scenario(text, origin="x"), seed=4)
    model = sim.model
    assert model is not None and model.scheduler is not None
    sim.run()
    moved = [e for e in sim.ctx.log.of_type(VMMoved) if e.source == "rebalancer"]
    assert moved, "expected the rebalancer to move VMs off the packed hosts"
    check_conservation(sim)

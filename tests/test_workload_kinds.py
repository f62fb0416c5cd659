"""Workload kinds in the cluster model: a VM of a kind reserves its memory plus the kind's overhead
and runs only after the kind's start time; GPU capacity and pool reservations hold on that path."""

from __future__ import annotations

from collections import defaultdict

import pytest
from hypothesis import given, note, settings
from hypothesis import strategies as st

from novacron.cluster.events import (
    GpuAllocated,
    GpuReleased,
    HostUtilisationSampled,
    VMFailed,
    VMMoved,
    VMPlaced,
    VMRequested,
    VMStarted,
)
from novacron.cluster.kinds import KINDS, kind_of
from novacron.cluster.pools import ROOT
from novacron.cluster.state import ClusterState, apply
from novacron.config import ConfigError
from novacron.events import Event
from novacron.metrics import compute_metrics
from novacron.scenario import Scenario, loads_scenario
from novacron.scheduler.gpu import MIG_SLICES
from sim.cluster_model import FAILED
from sim.run import simulate
from sim.simulation import Simulation
from tests.one_line_errors import one_line_error

EPS = 1e-6


def _one_host(kinds: list[str], vms: int = 4, memory_gib: float = 8.0, host_memory_gib: float = 16.0) -> Scenario:
    text = (f"duration_s = 120.0\n[cluster]\nhosts = 1\nhost_cpu_cores = 64\nhost_memory_gib = {host_memory_gib}\n"
            f"[workload]\nvms = {vms}\nvm_cpu_cores = [1]\nvm_memory_gib = [{memory_gib}]\narrival_window_s = 0.0\n"
            f"demand_update_s = 10.0\nkinds = {kinds}\n[scheduler]\nplacer = \"first_fit\"\n[cache]\nenabled = false\n"
            "[migration]\nmigrations = 0\n[raft]\nsimulate_s = 0.0\ncontrol_plane = \"direct\"\n")
    return loads_scenario(text, origin="kinds.toml")


def test_a_vm_runs_only_after_its_kinds_start_time() -> None:
    events = list(simulate(_one_host(["vm"], vms=2, host_memory_gib=64.0), 1).log)
    placed = {ev.vm_id: ev.t_s for ev in events if isinstance(ev, VMPlaced)}
    started = [ev for ev in events if isinstance(ev, VMStarted)]
    assert len(placed) == 2 and {ev.vm_id for ev in started} == set(placed)
    for ev in started:
        assert ev.kind == "vm" and ev.t_s - placed[ev.vm_id] == pytest.approx(KINDS["vm"].start_s)
    running = [(ev.t_s, ev.vms_running) for ev in events if isinstance(ev, HostUtilisationSampled)]
    # Placed at 0 s, a VM boots for 30 s: the samples at 10 s and 20 s see no VM running (no CPU demand).
    assert [n for t, n in running if t < KINDS["vm"].start_s] == [0, 0]
    assert all(n == 2 for t, n in running if t > KINDS["vm"].start_s)
    metrics = compute_metrics(events)
    assert metrics["kinds.vms_started"] == 2 and metrics["kinds.vm.vms_started"] == 2
    assert metrics["kinds.start_mean_s"] == pytest.approx(30.0)


def test_a_kind_reserves_its_memory_overhead_with_the_vm() -> None:
    plain = list(simulate(_one_host([]), 1).log)
    assert sum(isinstance(ev, VMPlaced) for ev in plain) == 2  # two 8 GiB VMs fill 16 GiB exactly
    with_kind = list(simulate(_one_host(["microvm"]), 1).log)
    placed = [ev for ev in with_kind if isinstance(ev, VMPlaced)]
    assert len(placed) == 1  # 3 MiB of Firecracker overhead each: the second no longer fits
    assert placed[0].memory_gib == pytest.approx(8.0 + KINDS["microvm"].memory_overhead_gib)
    requested = [ev for ev in with_kind if isinstance(ev, VMRequested)]
    assert all(ev.memory_gib == pytest.approx(8.0 + 3.0 / 1024) for ev in requested)


def test_a_host_that_crashes_while_a_vm_starts_fails_that_vm_even_if_it_is_back() -> None:
    sim = Simulation(_one_host(["vm"], vms=1, host_memory_gib=64.0), seed=1).run(until_s=1.0)
    model = sim.model
    assert model is not None and model.starting == frozenset({0})
    model.fail_host(0, "test")
    model.recover_host(0)  # back before the VM's 30 s boot ends: the boot was still lost
    sim.run(until_s=KINDS["vm"].start_s + 5.0)
    log = sim.ctx.log
    assert [ev.reason for ev in log.of_type(VMFailed)] == ["host crash"]
    assert not log.of_type(VMStarted)
    assert int(model.vms.status[0]) == FAILED and not model.starting


def test_without_kinds_nothing_changes() -> None:
    events = list(simulate(_one_host([], host_memory_gib=64.0), 1).log)
    assert not any(isinstance(ev, VMStarted) for ev in events)
    assert not any(name.startswith("kinds.") for name in compute_metrics(events))


def test_kind_of_is_stable_and_a_gpu_request_makes_a_gpu_vm() -> None:
    names = ("vm", "container", "microvm")
    drawn = [kind_of(f"vm-{i:06d}", names) for i in range(300)]
    assert drawn == [kind_of(f"vm-{i:06d}", names) for i in range(300)]
    assert {k.name for k in drawn if k is not None} == set(names)
    assert kind_of("vm-000001", names, needs_gpu=True) == KINDS["gpu_vm"]
    assert kind_of("vm-000001", ()) is None


def test_an_unknown_kind_is_a_one_line_error() -> None:
    message = one_line_error(ConfigError, lambda: loads_scenario("[workload]\nkinds = ['unikernel']\n", origin="s"))
    assert message == "s: workload.kinds: 'unikernel' is not a workload kind; allowed: vm, container, microvm, gpu_vm"


def _gpu_pool_text(hosts: int, vms: int, window_s: float, lifetime_s: float, mtbf_h: float, gpu_hosts: int) -> str:
    return (f'name = "kinds-prop"\nduration_s = 5400.0\n[cluster]\nhosts = {hosts}\nhost_cpu_cores = 32\n'
            "host_memory_gib = 128.0\ncpu_overcommit = 2.0\n"
            f"[workload]\nvms = {vms}\nvm_cpu_cores = [2, 4, 8]\nvm_memory_gib = [8.0, 16.0, 32.0]\n"
            f"arrival_window_s = {window_s}\nlifetime_mean_s = {lifetime_s}\ndemand_update_s = 600.0\n"
            'kinds = ["vm", "container", "microvm"]\n'
            f"[faults]\nenabled = true\nhost_mtbf_h = {mtbf_h}\nhost_mttr_h = 0.3\nrestart_delay_s = 60.0\n"
            "[scheduler]\nrebalance = \"off\"\n[migration]\nmigrations = 0\n[cache]\nenabled = false\n"
            f"[gpus]\nenabled = true\ngpu_hosts = {gpu_hosts}\ngpus_per_host = 2\n"
            'vm_requests = ["", "1", "mig3", "2", ""]\n'
            '[pools]\nenabled = true\nnames = ["prod", "dev"]\nmemory_reservation_gib = [96.0, 0.0]\n'
            'memory_limit_gib = [0.0, 64.0]\ncpu_reservation_cores = [8.0, 0.0]\ncpu_limit_cores = [0.0, 0.0]\n'
            'cpu_shares = [2000.0, 1000.0]\nvm_pools = ["prod", "dev", "dev"]\n')


def _check_reservations(scenario: Scenario, events: list[Event]) -> None:
    """Replays the log: after every event, GPU slices within each host's GPUs and pool memory
    (reserved with each kind's overhead) within limits and other pools' reservations."""
    c = scenario.cluster
    cluster_memory_gib = c.hosts * c.host_memory_gib
    tree = scenario.pools.tree(cluster_cores=float(c.hosts * c.host_cpu_cores), cluster_memory_gib=cluster_memory_gib)
    slices_total = scenario.gpus.gpus_per_host * MIG_SLICES
    state = ClusterState()  # which VMs run: the cluster projection's fold, not a copy of it here
    placed_gib: dict[str, float] = {}
    slices: dict[str, int] = {}
    used: dict[str, int] = defaultdict(int)
    for ev in events:
        apply(state, ev)
        if isinstance(ev, VMPlaced):
            placed_gib[ev.vm_id] = ev.memory_gib
            gpu = scenario.gpus.request_of(ev.vm_id).needs_gpu
            kind = kind_of(ev.vm_id, scenario.workload.kinds, needs_gpu=gpu)
            assert kind is not None
            assert ev.memory_gib - kind.memory_overhead_gib in scenario.workload.vm_memory_gib
        elif isinstance(ev, GpuAllocated):
            slices[ev.vm_id] = ev.gpu_count * MIG_SLICES + ev.mig_slices
            used[ev.host_id] += slices[ev.vm_id]
            assert used[ev.host_id] == ev.host_slices_used <= slices_total, ev
        elif isinstance(ev, GpuReleased):
            used[ev.host_id] -= slices.pop(ev.vm_id)
        elif isinstance(ev, VMMoved):
            raise AssertionError("no move was asked for")
        leaf_gib: dict[str, float] = defaultdict(float)
        for vm_id in state.placements():
            leaf_gib[tree.pool_of(vm_id)] += placed_gib[vm_id]
        totals = tree.subtree_totals(leaf_gib)
        for name, pool in tree.pools.items():
            assert pool.memory_limit_gib <= 0 or totals[name] <= pool.memory_limit_gib + EPS, (name, ev)
        claimed = sum(max(tree.pools[c].memory_reservation_gib, totals[c]) for c in tree.children[ROOT])
        assert claimed <= cluster_memory_gib + EPS, ev


@given(hosts=st.integers(2, 5), vms=st.integers(10, 90), window_s=st.sampled_from([0.0, 600.0, 3600.0]),
       lifetime_s=st.sampled_from([300.0, 1800.0]), mtbf_h=st.sampled_from([0.5, 1000.0]),
       gpu_hosts=st.integers(1, 2), seed=st.integers(0, 2**32))
@settings(max_examples=30)  # each example is a 90-minute run with faults, GPUs and pools (~0.3 s)
def test_gpu_capacity_and_pool_reservations_hold_with_start_times_and_overheads(
        hosts: int, vms: int, window_s: float, lifetime_s: float, mtbf_h: float, gpu_hosts: int, seed: int) -> None:
    text = _gpu_pool_text(hosts, vms, window_s, lifetime_s, mtbf_h, gpu_hosts)
    note(f"seed={seed}\n{text}")
    scenario = loads_scenario(text, origin="kinds-prop.toml")
    events = list(simulate(scenario, seed).log)
    _check_reservations(scenario, events)
    metrics = compute_metrics(events)
    assert metrics.get("gpu.capacity_excess_max_slices", 0.0) == 0.0
    started = [ev for ev in events if isinstance(ev, VMStarted)]
    assert all(ev.kind == "gpu_vm" for ev in started if scenario.gpus.request_of(ev.vm_id).needs_gpu)

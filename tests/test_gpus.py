"""GPUs as a schedulable resource: the inventory never gives out more than a host has (Hypothesis
state machine), the filter and scorer, the workload kinds, and a run with GPU VMs."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from novacron.cluster.kinds import KINDS, kind
from novacron.config import ConfigError
from novacron.metrics import compute_metrics
from novacron.scenario import loads_scenario, resolve_scenario
from novacron.scheduler.framework import Scheduler, WeightedScorer
from novacron.scheduler.gpu import MIG_PROFILES, MIG_SLICES, GpuFit, GpuGrant, GpuInventory, GpuPack, GpuRequest
from novacron.scheduler.state import HostTable, PlacementRequest
from sim.run import simulate

requests = st.one_of(st.builds(GpuRequest, gpus=st.integers(1, 4)),
                     st.builds(GpuRequest, mig_slices=st.sampled_from(MIG_PROFILES)))


class InventoryMachine(RuleBasedStateMachine):
    """Random grants and releases; the ledger of grants must always match the inventory."""

    def __init__(self) -> None:
        super().__init__()
        self.inventory = GpuInventory(["A100"] * 3, [4, 2, 0], [40.0] * 3)
        self.grants: list[GpuGrant] = []

    @rule(request=requests, host=st.integers(0, 2))
    def allocate(self, request: GpuRequest, host: int) -> None:
        fits = bool(self.inventory.fits(request)[host])
        assert fits == self._fits_by_hand(request, host)
        if fits:
            self.grants.append(self.inventory.allocate(host, request))
        else:
            with pytest.raises(ValueError):
                self.inventory.allocate(host, request)

    @precondition(lambda self: self.grants)
    @rule(pick=st.integers(0, 1000))
    def release(self, pick: int) -> None:
        self.inventory.release(self.grants.pop(pick % len(self.grants)))

    def _fits_by_hand(self, request: GpuRequest, host: int) -> bool:
        gpus = [g for g in range(self.inventory.present.shape[1]) if self.inventory.present[host, g]]
        used = {g: sum(s for grant in self.grants if grant.host == host for gg, s in grant.parts if gg == g)
                for g in gpus}
        whole = {g for grant in self.grants if grant.host == host and not grant.mig for g, _ in grant.parts}
        if request.gpus:
            return sum(1 for g in gpus if used[g] == 0) >= request.gpus
        return any(g not in whole and MIG_SLICES - used[g] >= request.mig_slices for g in gpus)

    @invariant()
    def capacity_is_never_exceeded(self) -> None:
        inv = self.inventory
        assert np.all(inv.used >= 0) and np.all(inv.used <= MIG_SLICES)
        assert np.all(inv.used[~inv.present] == 0)  # a GPU that does not exist is never given
        ledger = np.zeros_like(inv.used)
        for grant in self.grants:
            for gpu, slices in grant.parts:
                ledger[grant.host, gpu] += slices
        assert np.array_equal(ledger, inv.used)
        for grant in self.grants:  # whole GPUs and MIG instances never share a GPU
            for gpu, _ in grant.parts:
                assert bool(inv.mig_mode[grant.host, gpu]) == grant.mig


TestInventoryMachine = InventoryMachine.TestCase
TestInventoryMachine.settings = settings(max_examples=200, stateful_step_count=40, deadline=None)


def test_filter_needs_the_model_and_memory_and_scorer_packs() -> None:
    inventory = GpuInventory(["A100", "A100", "T4"], [4, 4, 4], [40.0, 80.0, 16.0])
    inventory.allocate(1, GpuRequest(gpus=2))
    table = HostTable.uniform(3, cpu=64, memory_gib=256, network_gbps=10, iops=1000)
    vm = PlacementRequest(vm_id="g", demand=(4.0, 16.0, 0.0, 0.0))
    big = GpuRequest(gpus=1, model="A100", memory_gib=60.0)
    assert GpuFit(inventory, big).feasible(table, vm).tolist() == [False, True, False]
    one = GpuRequest(gpus=1, model="A100")
    assert GpuFit(inventory, one).feasible(table, vm).tolist() == [True, True, False]
    pack = GpuPack(inventory, one).score(table, vm)
    assert pack[1] > pack[0]  # the host already half used is the better fit
    decision = Scheduler([GpuFit(inventory, one)], [WeightedScorer(GpuPack(inventory, one), 1.0)]).place(
        table, vm, np.random.default_rng(0))
    assert decision.host_index == 1


def test_a_mig_gpu_is_not_given_whole_until_empty() -> None:
    inventory = GpuInventory(["A100"], [1], [40.0])
    grant = inventory.allocate(0, GpuRequest(mig_slices=1))
    assert not inventory.fits(GpuRequest(gpus=1))[0]
    assert inventory.fits(GpuRequest(mig_slices=4))[0] and not inventory.fits(GpuRequest(mig_slices=7))[0]
    inventory.release(grant)
    assert inventory.fits(GpuRequest(gpus=1))[0] and not inventory.mig_mode.any()


def test_kinds_have_sources_and_bad_names_are_named() -> None:
    assert set(KINDS) == {"vm", "container", "microvm", "gpu_vm"}
    assert kind("microvm").start_s < kind("container").start_s < kind("vm").start_s < kind("gpu_vm").start_s
    assert all(k.source for k in KINDS.values())
    with pytest.raises(ValueError, match="allowed vm, container, microvm, gpu_vm"):
        kind("unikernel")


def test_gpu_config_errors_are_one_line() -> None:
    for text, needle in (("vm_requests = ['mig5']", "'mig5' is not a GPU request"),
                         ("vm_requests = ['9']\ngpus_per_host = 8", "more GPUs than a host has")):
        with pytest.raises(ConfigError, match=needle):
            loads_scenario(f"[gpus]\nenabled = true\n{text}\n", origin="s.toml")


def test_gpu_run_never_exceeds_a_hosts_gpus_and_grants_follow_placements() -> None:
    scenario = resolve_scenario("gpu", duration_s=3600.0)[0]
    events = list(simulate(scenario, 5).log)
    metrics = compute_metrics(events)
    assert metrics["gpu.allocations"] > 0 and metrics["gpu.vms_rejected"] > 0  # GPUs ran out: contended
    assert metrics["gpu.capacity_excess_max_slices"] == 0
    placed = {}
    for ev in events:
        name = type(ev).__name__
        if name == "VMPlaced":
            placed[ev.vm_id] = ev.host_id  # type: ignore[attr-defined]
        elif name == "GpuAllocated":
            assert placed[ev.vm_id] == ev.host_id  # type: ignore[attr-defined]
            assert ev.host_slices_used <= ev.host_slices_total  # type: ignore[attr-defined]
    gpu_hosts = {f"host-{h:04d}" for h in range(scenario.gpus.gpu_hosts)}
    assert {ev.host_id for ev in events if type(ev).__name__ == "GpuAllocated"} <= gpu_hosts  # type: ignore[attr-defined]

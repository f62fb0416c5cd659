"""The simulated inventory: hosts, VM requests, placement and utilisation sampling.

Theory of operation
-------------------
Hosts are rows of numpy arrays (capacity and allocation per resource). VM requests arrive at
uniform random times within the workload's arrival window; each is placed by the placer (first
fit until the scheduler replaces it) and recorded as ``VMPlaced`` or ``VMRejected``. Every
``demand_update_s`` each VM draws a CPU utilisation from a Beta distribution with the
workload's mean; host and cluster utilisation are sampled as events. Memory counts as used when
allocated (VM memory is reserved, not overcommitted).
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt
import simpy

from novacron.cluster.events import (
    ClusterUtilisationSampled,
    HostAdded,
    HostUtilisationSampled,
    VMPlaced,
    VMRejected,
    VMRequested,
)
from novacron.cluster.first_fit import first_fit
from sim import scheduling
from sim.context import SimContext

FloatArray = npt.NDArray[np.float64]


@dataclass
class Inventory:
    host_ids: list[str]
    cpu_capacity: FloatArray
    memory_capacity_gib: FloatArray
    cpu_allocated: FloatArray
    memory_allocated_gib: FloatArray
    host_up: npt.NDArray[np.bool_]
    vm_host: dict[str, int] = field(default_factory=dict)
    vm_cpu: dict[str, int] = field(default_factory=dict)
    placer: Callable[[str, int, float], tuple[int | None, str, float]] | None = None
    """(vm id, vCPUs, memory GiB) -> (host index or None, rejection reason, decision ms); first fit if None."""
    can_place: Callable[[str, int, float], bool] | None = None
    """Whether the placer would find a host for (vm id, vCPUs, memory GiB) now, without placing."""

    @classmethod
    def empty(cls, hosts: int, cpu: float, memory_gib: float) -> Inventory:
        return cls(host_ids=[f"host-{i:04d}" for i in range(hosts)],
                   cpu_capacity=np.full(hosts, cpu), memory_capacity_gib=np.full(hosts, memory_gib),
                   cpu_allocated=np.zeros(hosts), memory_allocated_gib=np.zeros(hosts),
                   host_up=np.ones(hosts, dtype=bool))


def add_hosts(ctx: SimContext) -> Inventory:
    c = ctx.scenario.cluster
    inv = Inventory.empty(c.hosts, c.host_cpu_cores * c.cpu_overcommit, c.host_memory_gib)
    for i, host_id in enumerate(inv.host_ids):
        ctx.recorder.emit(HostAdded, source="inventory", host_id=host_id, rack=f"rack-{i // c.hosts_per_rack:03d}",
                          cpu_cores=c.host_cpu_cores, memory_gib=c.host_memory_gib,
                          network_gbps=c.host_network_gbps, disk_iops=c.host_disk_iops)
    return inv


def request_vms(ctx: SimContext, inv: Inventory) -> Generator[simpy.Event, None, None]:
    w = ctx.scenario.workload
    rng = ctx.seeds.numpy("workload.arrivals")
    arrivals = np.sort(rng.uniform(0.0, w.arrival_window_s, size=w.vms))
    flavours = rng.integers(0, len(w.vm_cpu_cores), size=w.vms)
    for n, (at_s, flavour) in enumerate(zip(arrivals, flavours, strict=True)):
        yield ctx.env.timeout(float(at_s) - ctx.env.now)
        vm_id = f"vm-{n:06d}"
        cpu, mem = w.vm_cpu_cores[flavour], w.vm_memory_gib[flavour]
        ctx.recorder.emit(VMRequested, source="inventory", vm_id=vm_id, cpu_cores=cpu, memory_gib=mem)
        place_vm(ctx, inv, vm_id, cpu, mem)


def place_vm(ctx: SimContext, inv: Inventory, vm_id: str, cpu: int, mem: float) -> None:
    if inv.placer is not None:
        index, reason, decision_ms = inv.placer(vm_id, cpu, mem)  # the placer accounts the allocation
    else:
        free_memory_gib = inv.memory_capacity_gib - inv.memory_allocated_gib
        index = first_fit(inv.cpu_capacity - inv.cpu_allocated, free_memory_gib, inv.host_up, cpu, mem)
        reason, decision_ms = "no host has room", 0.0
        if index is not None:
            inv.cpu_allocated[index] += cpu
            inv.memory_allocated_gib[index] += mem
    if index is None:
        ctx.recorder.emit(VMRejected, source="placer", vm_id=vm_id, reason=reason)
        return
    inv.vm_host[vm_id] = index
    inv.vm_cpu[vm_id] = cpu
    ctx.recorder.emit(VMPlaced, source="placer", vm_id=vm_id, host_id=inv.host_ids[index],
                      cpu_cores=cpu, memory_gib=mem, decision_ms=decision_ms)


def sample_utilisation(ctx: SimContext, inv: Inventory) -> Generator[simpy.Event, None, None]:
    w = ctx.scenario.workload
    rng = ctx.seeds.numpy("workload.demand")
    mean = min(max(w.mean_cpu_utilisation, 1e-3), 1 - 1e-3)
    concentration = 8.0
    while True:
        yield ctx.env.timeout(w.demand_update_s)
        vm_ids = list(inv.vm_host)
        hosts = np.fromiter((inv.vm_host[v] for v in vm_ids), dtype=np.int64, count=len(vm_ids))
        cores = np.fromiter((inv.vm_cpu[v] for v in vm_ids), dtype=np.float64, count=len(vm_ids))
        used = rng.beta(mean * concentration, (1 - mean) * concentration, size=len(vm_ids)) * cores
        physical = inv.cpu_capacity / ctx.scenario.cluster.cpu_overcommit
        # Overcommitted demand beyond the physical cores is contention, not extra utilisation.
        cpu_used = np.minimum(np.bincount(hosts, weights=used, minlength=len(inv.host_ids)), physical)
        vms_per_host = np.bincount(hosts, minlength=len(inv.host_ids))
        for i, host_id in enumerate(inv.host_ids):
            ctx.recorder.emit(HostUtilisationSampled, source=host_id, host_id=host_id,
                              cpu_pct=float(100 * cpu_used[i] / physical[i]),
                              memory_pct=float(100 * inv.memory_allocated_gib[i] / inv.memory_capacity_gib[i]),
                              vms_running=int(vms_per_host[i]))
        ctx.recorder.emit(ClusterUtilisationSampled, source="inventory",
                          cpu_pct=float(100 * cpu_used.sum() / physical.sum()),
                          memory_pct=float(100 * inv.memory_allocated_gib.sum() / inv.memory_capacity_gib.sum()),
                          hosts_up=int(inv.host_up.sum()), vms_running=len(vm_ids))


def start(ctx: SimContext) -> Inventory:
    inv = add_hosts(ctx)
    scheduling.attach(ctx, inv)
    ctx.env.process(request_vms(ctx, inv))
    ctx.env.process(sample_utilisation(ctx, inv))
    return inv

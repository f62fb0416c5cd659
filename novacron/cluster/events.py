"""Events about the cluster inventory and its utilisation."""

from __future__ import annotations

from novacron.events import Event, event


@event
class RunStarted(Event):
    scenario: str
    seed: int
    runtime: str
    version: str


@event
class RunFinished(Event):
    duration_s: float


@event
class HostAdded(Event):
    host_id: str
    rack: str
    cpu_cores: int
    memory_gib: float
    network_gbps: float
    disk_iops: float


@event
class HostFailed(Event):
    host_id: str
    reason: str


@event
class HostRecovered(Event):
    host_id: str


@event
class VMRequested(Event):
    vm_id: str
    cpu_cores: int
    memory_gib: float


@event
class VMPlaced(Event):
    vm_id: str
    host_id: str
    cpu_cores: int
    memory_gib: float
    decision_ms: float


@event
class VMStarted(Event):
    """A VM of a workload kind runs: ``start_s`` after its placement (``novacron.cluster.kinds``);
    its reservation (``VMPlaced.memory_gib``) includes the kind's ``memory_overhead_gib``."""

    vm_id: str
    host_id: str
    kind: str
    start_s: float
    memory_overhead_gib: float


@event
class VMRejected(Event):
    vm_id: str
    reason: str


@event
class VMStopped(Event):
    vm_id: str
    host_id: str


@event
class VMFailed(Event):
    vm_id: str
    host_id: str
    reason: str


@event
class VMMoved(Event):
    """A VM now runs on another host (the end of any migration, or a restart elsewhere)."""

    vm_id: str
    from_host_id: str
    host_id: str


@event
class MoveClaimed(Event):
    """The control plane held room on ``host_id`` for a move of ``vm_id`` (a Nova move claim)."""

    claim_id: int
    vm_id: str
    host_id: str
    cpu_cores: int
    memory_gib: float


@event
class MoveClaimReleased(Event):
    """A move's claim ended: the move committed (the room is now the VM's) or was abandoned."""

    claim_id: int
    vm_id: str
    host_id: str


@event
class HostUtilisationSampled(Event):
    """One host at one demand update. ``cpu_pct`` is the CPU served (at most 100 %);
    ``cpu_demand_pct`` what its VMs asked (may exceed 100 %); ``cpu_ready_pct`` the share of
    that demand left waiting (CPU ready), ``cpu_ready_max_pct`` that of its most-waiting VM (the
    same under proportional sharing, more under shares); ``powered_on`` is false while the host is down
    or switched off by consolidation (it then draws no power)."""

    host_id: str
    cpu_pct: float
    memory_pct: float
    vms_running: int
    cpu_demand_pct: float
    cpu_ready_pct: float
    cpu_ready_max_pct: float
    powered_on: bool


@event
class ClusterUtilisationSampled(Event):
    """The up hosts at one demand update: ``cpu_pct`` served, ``cpu_demand_pct`` asked (of capacity)."""

    cpu_pct: float
    memory_pct: float
    hosts_up: int
    vms_running: int
    cpu_demand_pct: float
    cpu_demand_cores: float
    cpu_unserved_cores: float


@event
class PowerModelSet(Event):
    """Every host's power curve: watts at 0, 10, ..., 100 % served CPU; facility power = IT x ``pue``."""

    watts_at_pct: tuple[float, ...]
    pue: float


@event
class HostLocated(Event):
    """Where a host sits in the failure-domain tree (rack within zone within datacenter)."""

    host_id: str
    rack: str
    zone: str
    datacenter: str


@event
class ClusterIOSampled(Event):
    """Network and disk use at one demand update: cluster-wide and on the busiest host."""

    network_pct: float
    disk_io_pct: float
    network_host_max_pct: float
    disk_io_host_max_pct: float


@event
class InjectedFaultStarted(Event):
    """A fault the model injected: a hook for components that react to it (Raft, the network).

    ``fault_kind`` is ``manager_crash`` or ``network_partition`` (host and rack failures are
    ``HostFailed`` events); ``fault_target`` names the manager or the zone cut off.
    """

    fault_kind: str
    fault_target: str
    planned_duration_s: float


@event
class InjectedFaultEnded(Event):
    fault_kind: str
    fault_target: str


@event
class PoolCpuSampled(Event):
    """One resource pool's CPU at a demand sample, summed over hosts (``novacron.cluster.pools``)."""

    pool: str
    demand_cores: float
    served_cores: float
    guaranteed_cores: float
    """sum over hosts of min(the pool's demand there, its reservation's share there): what it must get"""
    limit_cores: float
    """0 = no limit"""


@event
class GpuAllocated(Event):
    """A VM was given GPUs (whole, or one MIG instance) on its host."""

    vm_id: str
    host_id: str
    gpu_count: int
    mig_slices: int
    host_slices_used: int
    """slices in use on the host after this (a whole GPU counts all of its slices)"""
    host_slices_total: int


@event
class GpuReleased(Event):
    vm_id: str
    host_id: str
    host_slices_used: int
    host_slices_total: int


@event
class MemoryPoolAllocated(Event):
    """A VM's memory was laid out over its host's NUMA nodes and its group's pool
    (``novacron.cluster.memory_pool``); shares are of the VM's memory accesses."""

    vm_id: str
    host_id: str
    home_node: int
    local_gib: float
    """on the home NUMA node"""
    numa_gib: float
    """on the host's other NUMA nodes"""
    pool_gib: float
    locality_index: float
    cross_node_share: float
    latency_ns: float
    bandwidth_gb_s: float
    allocation_ms: float
    """host mapping + wait for the pool manager + its service"""
    wait_ms: float
    """of which queued behind other requests at the pool manager"""
    pool_used_gib: float
    """the VM's pool group after this allocation"""
    pool_capacity_gib: float


@event
class MemoryPoolReleased(Event):
    vm_id: str
    host_id: str
    pool_gib: float


@event
class MemoryPoolRefused(Event):
    """A placement landed where the pool could not hold the VM's remote memory (a decision taken on an
    older view); the VM runs on its host's DRAM and window without pool memory in this model."""

    vm_id: str
    host_id: str
    memory_gib: float


@event
class MemoryPoolSampled(Event):
    """The live allocations at one sample, each VM weighted by its memory."""

    vms: int
    locality_index: float
    cross_node_share: float
    bandwidth_gb_s: float
    latency_ns: float
    local_used_gib: float
    pool_used_gib: float
    pool_capacity_gib: float
    group_excess_max_gib: float


@event
class NodeHealthScored(Event):
    """A node's health score (0-100, ``novacron.health``) and its three parts, as its runtime's
    health monitor computed it; ``node_id`` is a host id or ``manager-<k>``."""

    node_id: str
    health_score: float
    connectivity: float
    pressure: float
    reliability: float

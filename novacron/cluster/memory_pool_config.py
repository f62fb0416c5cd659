"""The ``[memory_pool]`` scenario section: a disaggregated memory pool (``novacron.cluster.memory_pool``).

Off by default. ``cluster.host_memory_gib`` is then the most a host can address (its DRAM plus its
window onto its group's pool): what placement reserves on it. ``local_gib_per_host`` is the DRAM
physically on the host, split evenly over its NUMA nodes (one per socket); every
``hosts_per_pool`` consecutive hosts share ``pool_gib_per_group`` of CXL memory. The fabric's
figures default to published ones (sources in ``novacron.cluster.memory_pool``).
"""

from __future__ import annotations

from dataclasses import dataclass

from novacron.cluster.memory_pool import (
    DDR5_4800_CHANNEL_GB_S,
    POLICIES,
    AccessModel,
    MemoryFabric,
    MemoryPool,
    pcie_link_gb_s,
)
from novacron.config import ConfigError, spec


@dataclass(frozen=True, slots=True, kw_only=True)
class MemoryPoolConfig:
    enabled: bool = spec(False, doc="give each group of hosts a shared CXL memory pool beside their DRAM")
    numa_nodes_per_host: int = spec(2, min=1, max=16, doc="NUMA nodes (sockets) per host")
    local_gib_per_host: float = spec(256.0, min=1.0, max=65536, doc="DRAM on each host (<= cluster.host_memory_gib)")
    hosts_per_pool: int = spec(8, min=1, max=20_000, doc="consecutive hosts sharing one pool")
    pool_gib_per_group: float = spec(1024.0, min=0.0, max=1e9, doc="CXL memory of each group's pool")
    slice_gib: float = spec(1.0, min=0.125, max=1024, doc="pool allocation unit (Pond: 1 GiB slices)")
    policy: str = spec("pool_aware", choices=POLICIES,
                       doc="pool_aware: a VM's hot memory goes local first, its coldest to the pool; "
                           "uniform: capacity only, accesses spread evenly over where its memory landed")
    affinity: bool = spec(True, doc="the scheduler places a VM where its memory is most local (or its pool "
                                    "share smallest)")
    hot_fraction: float = spec(0.5, min=0.01, max=1.0, doc="share of a VM's memory it touches (Pond: ~half)")
    hot_access_share: float = spec(0.95, min=0.0, max=1.0, doc="share of its accesses that go to that hot part")
    local_latency_ns: float = spec(100.0, min=1.0, max=1e5, doc="NUMA-local DRAM latency")
    numa_extra_ns: float = spec(60.0, min=0.0, max=1e5, doc="latency added by a hop to another socket")
    pool_direct_extra_ns: float = spec(80.0, min=0.0, max=1e5,
                                       doc="pool latency over local, direct-attached pool (Pond: 70-90 ns)")
    pool_switched_extra_ns: float = spec(180.0, min=0.0, max=1e5,
                                         doc="pool latency over local behind a CXL switch (Pond: 180+ ns)")
    direct_pool_max_sockets: int = spec(16, min=1, max=1024,
                                        doc="largest pool (in sockets) a multi-headed device serves without a switch")
    dram_channels_per_node: int = spec(8, min=1, max=64, doc="DDR5 channels per NUMA node")
    dram_channel_gb_s: float = spec(DDR5_4800_CHANNEL_GB_S, min=0.1, max=1e4, doc="one channel (DDR5-4800: 38.4)")
    numa_link_gb_s: float = spec(96.0, min=0.1, max=1e5, doc="socket interconnect each way (3 UPI 2.0 links)")
    cxl_gt_s: float = spec(32.0, min=1.0, max=256, doc="CXL link rate per lane (PCIe 5.0: 32 GT/s)")
    cxl_lanes: int = spec(16, min=1, max=64, doc="CXL link width")
    local_map_ms_per_gib: float = spec(0.05, min=0.0, max=1e4,
                                       doc="host time to map 1 GiB of local memory (assumption)")
    manager_rtt_ms: float = spec(0.1, min=0.0, max=1e4, doc="round trip to the pool manager (assumption)")
    slice_map_ms: float = spec(0.2, min=0.0, max=1e4, doc="pool manager time per slice handed out (assumption)")
    sample_interval_s: float = spec(300.0, min=1.0, max=86400, doc="interval between pool samples")

    def pool_extra_ns(self) -> float:
        sockets = self.hosts_per_pool * self.numa_nodes_per_host
        return self.pool_direct_extra_ns if sockets <= self.direct_pool_max_sockets else self.pool_switched_extra_ns

    def fabric(self) -> MemoryFabric:
        return MemoryFabric(local_latency_ns=self.local_latency_ns, numa_extra_ns=self.numa_extra_ns,
                            pool_extra_ns=self.pool_extra_ns(),
                            local_bandwidth_gb_s=self.dram_channels_per_node * self.dram_channel_gb_s,
                            numa_bandwidth_gb_s=self.numa_link_gb_s,
                            pool_bandwidth_gb_s=pcie_link_gb_s(self.cxl_gt_s, self.cxl_lanes),
                            local_map_ms_per_gib=self.local_map_ms_per_gib, manager_rtt_ms=self.manager_rtt_ms,
                            slice_map_ms=self.slice_map_ms, slice_gib=self.slice_gib)

    def pool(self, hosts: int) -> MemoryPool:
        return MemoryPool(hosts=hosts, numa_nodes=self.numa_nodes_per_host, local_gib_per_host=self.local_gib_per_host,
                          hosts_per_pool=self.hosts_per_pool, pool_gib_per_group=self.pool_gib_per_group,
                          fabric=self.fabric(), access=AccessModel(policy=self.policy, hot_fraction=self.hot_fraction,
                                                                   hot_access_share=self.hot_access_share))

    def check(self, host_memory_gib: float) -> None:
        """The pool against the cluster: a host's DRAM fits in what it may address."""
        if self.enabled and self.local_gib_per_host > host_memory_gib:
            raise ConfigError(f"memory_pool.local_gib_per_host = {self.local_gib_per_host:g} exceeds "
                              f"cluster.host_memory_gib = {host_memory_gib:g}; allowed: at most the memory a host "
                              "addresses (its DRAM plus its pool window)")

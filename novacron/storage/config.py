"""The ``[storage]`` scenario section: a storage pool whose durability a run assesses.

A pool of ``nodes`` nodes, each one disk of ``disk_tb``, stores objects under ``scheme``
(n-way replication or RS(k, m)) with shards on distinct ``rule_level`` domains. The run
assesses it in closed form (``novacron.storage.durability.estimate_pool``: a birth-death chain
with copyset coverage, at the disk AFR given, by default Backblaze's published 1.70 %) and
emits one ``StoragePoolAssessed`` event; the catalogue checks its durability in nines.
Independent failures only: ``python -m sim.storage_durability`` shows how correlated failures
and shared repair bandwidth make such numbers optimistic.

With ``xdc_replication`` set (and a ``[federation]`` for its WAN matrix and datacenter outage),
the run also replicates the pool's writes to a second datacenter (``sim.storage_xdc``) in both
modes and reports write latency and the data at risk when the primary datacenter is lost.
"""

from __future__ import annotations

from dataclasses import dataclass

from novacron.config import ConfigError, spec
from novacron.storage.durability import DISK_AFR, scheme_shape

XDC_MODES = ("", "sync", "async")
SCHEMES = ("replication2", "replication3", "replication4", "rs4+2", "rs6+3", "rs8+3", "rs10+4", "rs12+4")


@dataclass(frozen=True, slots=True, kw_only=True)
class StorageConfig:
    enabled: bool = spec(False, doc="assess a storage pool in this run (closed-form durability)")
    nodes: int = spec(10, min=1, max=100_000, doc="storage nodes in the pool (one disk each)")
    disk_tb: float = spec(1.0, min=0.001, max=1000.0, doc="raw capacity of one node's disk, TB")
    scheme: str = spec("replication3", choices=SCHEMES, doc="redundancy: n-way replication or RS(k+m)")
    rule_level: str = spec("rack", choices=("host", "rack", "zone", "datacenter"),
                           doc="failure domain that holds at most one shard of an object (recorded: the "
                               "closed form assumes independent failures, where it changes nothing; "
                               "python -m sim.storage_durability shows what it does under rack failures)")
    disk_afr: float = spec(DISK_AFR, min=1e-6, max=0.999,
                           doc="annualised disk failure rate (default: Backblaze Drive Stats 2023, 1.70 %)")
    shard_mib: float = spec(64.0, min=0.001, max=1e6, doc="shard size, MiB (sets the number of stripes)")
    rebuild_write_mib_s: float = spec(100.0, min=0.1, max=1e5, doc="a spare disk's rebuild write speed, MiB/s")
    repair_share_of_nic: float = spec(0.1, min=0.001, max=1.0,
                                      doc="fraction of each node's NIC that repair may use (the rest: client "
                                          "I/O and migrations)")
    nic_mib_s: float = spec(1192.0, min=1.0, max=1e6, doc="one node's NIC, MiB/s (10 GbE = 1192)")
    detect_min: float = spec(15.0, min=0.0, max=1e5, doc="minutes from a failure to the start of its rebuild")
    xdc_replication: str = spec("", choices=XDC_MODES,
                                doc="cross-datacenter replication whose targets the run checks: '' (none), 'sync' "
                                    "or 'async' (both modes are simulated and reported); needs [federation]")
    xdc_primary_datacenter: str = spec("", doc="where the pool is written ('' = federation.outage_datacenter, "
                                               "else the first datacenter)")
    xdc_replica_datacenter: str = spec("", doc="where its copy is kept ('' = the nearest other datacenter)")
    xdc_write_mib_s: float = spec(20.0, min=0.0, max=1e5, doc="mean client write rate into the pool, MiB/s (Poisson)")
    xdc_object_kib: float = spec(1024.0, min=0.001, max=1e7, doc="size of one written object, KiB")
    xdc_wan_share: float = spec(0.2, min=0.001, max=1.0, doc="share of the WAN link replication may use")
    xdc_local_write_ms: float = spec(1.0, min=0.0, max=1e4, doc="a write's local commit in the primary, ms")
    xdc_start_s: float = spec(0.0, min=0.0, max=1e7, doc="when the writes start")

    def __post_init__(self) -> None:
        # A scheme puts each shard of an object on its own node: fewer nodes cannot hold one stripe.
        shards = scheme_shape(self.scheme)[0]
        if self.enabled and self.nodes < shards:
            raise ConfigError(f"storage.nodes = {self.nodes} is too few for storage.scheme = {self.scheme!r}; "
                              f"allowed: at least {shards} (one node per shard)")

"""The ``[cache]`` scenario section: the hierarchy's configuration and the simulated workload."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from novacron.config import ConfigError, spec


@dataclass(frozen=True, slots=True, kw_only=True)
class CacheConfig:
    enabled: bool = spec(True, doc="simulate the three-tier cache")
    policy: Literal["lru", "tlru", "s3fifo"] = spec("lru", doc="eviction policy of every tier")
    write_mode: Literal["through", "back"] = spec("through", doc="write-through or write-back")
    l1_capacity_items: int = spec(10_000, min=1, max=10**8, doc="L1 (memory) capacity")
    l1_ttl_s: float = spec(300.0, min=0.001, max=10**7, doc="L1 time to live")
    cleanup_interval_s: float = spec(30.0, min=0.001, max=86400, doc="expired-entry cleanup cycle")
    adaptive_l1: bool = spec(False, doc="resize L1 between half and twice its capacity towards 85 % hits")
    l2_capacity_items: int = spec(30_000, min=1, max=10**9, doc="L2 (Redis) capacity")
    l2_ttl_s: float = spec(3600.0, min=0.001, max=10**8, doc="L2 time to live")
    l3_capacity_gib: float = spec(64.0, min=0.001, max=10**6, doc="L3 (disk) capacity")
    l3_ttl_s: float = spec(86400.0, min=0.001, max=10**9, doc="L3 time to live")
    ssd_capacity_gib: float = spec(0.0, min=0.0, max=10**6,
                                   doc="an SSD/NVMe tier between L2 and L3 of this capacity (0: no such tier)")
    ssd_ttl_s: float = spec(86400.0, min=0.001, max=10**9, doc="SSD tier time to live")
    ssd_latency_ms: float = spec(0.1, min=0.0, max=10**4, doc="median SSD tier latency (an NVMe random read)")
    ssd_ops_per_s_max: float = spec(200_000.0, min=1, max=10**9, doc="SSD tier throughput cap (NVMe IOPS)")
    warm_start: bool = spec(True, doc="start in steady state: L3 holds every key, L2 and L1 the most popular; "
                                      "false: every tier starts empty")
    object_bytes: int = spec(65536, min=1, max=1 << 30, doc="size of each cached object")
    # Both runtimes hold a name, a popularity rank and a CDF entry per key: 10^9 keys ran out of
    # memory before the first request; a run with 10^7 peaked at 1.5 GB RSS (measured 2026-12-02).
    keys: int = spec(50_000, min=1, max=10**7, doc="distinct keys of the workload")
    zipf_alpha: float = spec(1.0, min=0.0, max=5.0, doc="popularity skew of the keys")
    new_key_fraction: float = spec(0.002, min=0.0, max=1.0, doc="requests for keys never seen before")
    requests_per_s: float = spec(100.0, min=0.0, max=10**7, doc="mean request rate (Poisson)")
    active_s: float | None = spec(600.0, min=0.0, max=10**9,
                                  doc="requests arrive during this long from the start (none: the whole run)")
    tick_s: float = spec(1.0, min=0.001, max=3600, doc="requests are simulated in batches of this much time")
    stats_interval_s: float = spec(60.0, min=0.001, max=86400, doc="interval of CacheStatsSampled events")
    l1_latency_ms: float = spec(0.02, min=0.0, max=10**4, doc="median L1 access latency")
    l2_latency_ms: float = spec(0.5, min=0.0, max=10**4, doc="median L2 latency (a network round trip)")
    l3_latency_ms: float = spec(2.0, min=0.0, max=10**4, doc="median L3 latency (a disk read)")
    origin_latency_ms: float = spec(20.0, min=0.0, max=10**5, doc="median latency of a full miss")
    latency_sigma: float = spec(0.5, min=0.0, max=3.0, doc="log-normal shape of every latency")
    l2_ops_per_s_max: float = spec(80_000.0, min=1, max=10**9, doc="L2 throughput cap")
    l3_ops_per_s_max: float = spec(20_000.0, min=1, max=10**9, doc="L3 throughput cap (disk IOPS)")
    l2_outage_start_s: float | None = spec(None, min=0.0, max=10**9, doc="L2 goes down at this time (none: never)")
    l2_outage_s: float = spec(60.0, min=0.0, max=10**9, doc="how long the L2 outage lasts")
    daily_period_s: float = spec(86400.0, min=1.0, max=10**8, doc="length of the workload's daily cycle")
    quiet_rate_fraction: float = spec(1.0, min=0.0, max=1.0,
                                      doc="request rate in the second half of each daily_period_s, as a fraction "
                                          "of requests_per_s (1: a constant rate)")
    tier_migration: bool = spec(False, doc="background tier migration while the request rate is low: hot keys up, "
                                           "cold keys down between adjacent tiers (write_mode 'through' only)")
    tier_migration_below_per_s: float = spec(10.0, min=0.0, max=10**9,
                                             doc="migrate only while the measured request rate is below this")
    tier_migration_interval_s: float = spec(60.0, min=0.001, max=86400, doc="one migration round this often")
    tier_migration_budget_mib: float = spec(256.0, min=0.0, max=10**7, doc="bytes copied per migration round, MiB")
    tier_migration_half_life_s: float = spec(86400.0, min=1.0, max=10**9,
                                             doc="a key's request count halves over this long (its heat)")
    l2_mode: Literal["single", "sentinel", "cluster"] = spec(
        "single", doc="the real L2: one Redis server, a Sentinel group (primary, replicas, sentinels) or a Cluster")
    l2_addresses: tuple[str, ...] = spec(["127.0.0.1:6379"], doc="host:port of the server (single), of the sentinels "
                                                                 "(sentinel) or of some cluster nodes (cluster)")
    l2_sentinel_service: str = spec("novacron", doc="the primary's name in the sentinels' configuration")
    l2_wait_replicas: int = spec(0, min=0, max=16, doc="a real L2 write is acknowledged once this many replicas "
                                                       "confirm it (WAIT); 0: once the primary applied it")
    l2_wait_timeout_ms: int = spec(100, min=1, max=60_000, doc="how long a write waits for those replicas")

    def __post_init__(self) -> None:
        self._check_l2_addresses()
        if self.tier_migration and self.write_mode == "back":
            raise ConfigError("cache.tier_migration = true with cache.write_mode = 'back' is not allowed "
                              "(moving a dirty entry down would drop its write); allowed: write_mode = 'through'")
        if 0 < self.ssd_capacity_gib * 2**30 < self.object_bytes:
            raise ConfigError(f"cache.ssd_capacity_gib = {self.ssd_capacity_gib} cannot hold one object of "
                              f"cache.object_bytes = {self.object_bytes}; allowed: 0 (no SSD tier) or a larger one")
        if self.l3_capacity_gib * 2**30 < self.object_bytes:
            raise ConfigError(f"cache.l3_capacity_gib = {self.l3_capacity_gib} cannot hold one object of "
                              f"cache.object_bytes = {self.object_bytes}; allowed: a larger L3")

    def _check_l2_addresses(self) -> None:
        if not self.l2_addresses:
            raise ConfigError("cache.l2_addresses = [] is empty; allowed: one or more 'host:port'")
        if self.l2_mode == "single" and len(self.l2_addresses) != 1:
            raise ConfigError(f"cache.l2_addresses = {list(self.l2_addresses)} has {len(self.l2_addresses)} "
                              f"addresses; allowed with l2_mode = 'single': exactly one 'host:port'")
        for address in self.l2_addresses:
            if parse_address(address) is None:
                raise ConfigError(f"cache.l2_addresses: {address!r} is not an address; "
                                  f"allowed: 'host:port' with a port in 1..65535")


def parse_address(address: str) -> tuple[str, int] | None:
    """``"host:port"`` -> ``(host, port)``, or None when it is not one (port 1..65535)."""
    host, sep, port = address.rpartition(":")
    if not (sep and host and port.isdigit() and 0 < int(port) < 65536):
        return None
    return host, int(port)

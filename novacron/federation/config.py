"""The ``[federation]`` scenario section: datacenters, their clusters, the WAN, policies, faults.

A federation is opt-in (``enabled = false`` by default): a scenario without it runs exactly as
before. Every problem is one line naming the key, the value and what is allowed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from novacron.config import ConfigError, spec
from novacron.federation.wan import AWS_2017_REGIONS, WAN_PROFILES, WanMatrix, build_matrix, matrix_problem

POLICIES = ("capacity", "latency", "cost", "locality")
REPLICATION = ("sync", "async")
MAX_CLUSTERS = 100
"""Every cluster has one representative in the federation Raft group, a voter or a learner."""
MAX_VOTING_CLUSTERS = 9
"""Voters of the federation Raft group at most; the other representatives follow as learners.
An odd number buys the most: 3 survive one lost voter, 5 two; 4 survive no more than 3."""
VOTERS_WHEN_LARGE = 5
"""``voters = 0`` with more than ``MAX_VOTING_CLUSTERS`` clusters: this many vote (3 is a majority)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class FederationSection:
    enabled: bool = spec(False, doc="model a federation of datacenters (the rest of the scenario runs as before)")
    datacenters: tuple[str, ...] = spec(["us-east-1", "eu-west-1", "ap-northeast-1"],
                                        doc="datacenter names (with wan = 'aws-2017': AWS regions of the table)")
    clusters_per_datacenter: int = spec(1, min=1, max=MAX_CLUSTERS, doc="clusters in each datacenter")
    voters: int = spec(0, min=0, max=MAX_VOTING_CLUSTERS,
                       doc="representatives that vote in the federation Raft group, one per datacenter in turn "
                           "(leader_preference first); the others are learners. 0: every cluster while there "
                           f"are at most {MAX_VOTING_CLUSTERS}, else {VOTERS_WHEN_LARGE}")
    hosts_per_cluster: int = spec(8, min=1, max=2000, doc="hosts in each cluster (shaped as [cluster] hosts)")
    wan: str = spec("aws-2017", choices=WAN_PROFILES,
                    doc="round-trip times: 'aws-2017' (published inter-region RTTs), 'uniform', or 'matrix'")
    wan_uniform_rtt_ms: float = spec(150.0, min=0.1, max=10_000, doc="every pair's RTT with wan = 'uniform'")
    wan_rtt_ms: tuple[tuple[float, ...], ...] = spec([], doc="with wan = 'matrix': one row per datacenter (ms)")
    wan_jitter_pct: float = spec(5.0, min=0.0, max=50.0, doc="one-way delay spread, in % of the RTT")
    wan_bandwidth_mbit_s: float = spec(1000.0, min=1.0, max=1e6, doc="bandwidth of every WAN link")
    vms: int = spec(90, min=0, max=2_500_000, doc="VMs requested from the federation over the run")
    start_s: float = spec(60.0, min=0, max=1e7, doc="first federation request")
    arrival_window_s: float = spec(300.0, min=0, max=1e7, doc="requests arrive uniformly within this window")
    user_share: tuple[float, ...] = spec([], min=0.0, max=1e6,
                                         doc="relative share of requests from each datacenter's users (empty = equal)")
    policy: str = spec("latency", choices=POLICIES,
                       doc="global placement: most free capacity, nearest to the user, cheapest, or near the data")
    cost_per_vcpu_h: tuple[float, ...] = spec([], min=0.0, max=1e6, doc="price per vCPU-hour in each datacenter")
    ha_group_size: int = spec(2, min=1, max=MAX_CLUSTERS,
                              doc="VMs per HA group, spread over distinct datacenters (1 = no groups)")
    state_replication: str = spec("sync", choices=REPLICATION,
                                  doc="cluster state to the federation group: 'sync' (before a VM runs) or "
                                      "'async' (shipped every async_interval_s)")
    async_interval_s: float = spec(30.0, min=0.1, max=86400, doc="with async replication: shipping interval")
    gossip_interval_s: float = spec(5.0, min=0.1, max=3600, doc="metrics anti-entropy round per cluster")
    failure_detection_s: float = spec(30.0, min=1.0, max=3600,
                                      doc="the federation leader declares a datacenter lost after this long "
                                          "without hearing from it")
    vm_restart_s: float = spec(45.0, min=0.0, max=3600, doc="boot of a VM restarted in another datacenter")
    sample_interval_s: float = spec(60.0, min=1.0, max=86400, doc="per-datacenter utilisation sample interval")
    outage_datacenter: str = spec("", doc="a datacenter lost at outage_at_s ('' = none)")
    outage_at_s: float = spec(0.0, min=0.0, max=1e7, doc="when the whole datacenter is lost (0 = never)")
    partition_datacenter: str = spec("", doc="a datacenter cut off from the others ('' = none)")
    partition_at_s: float = spec(0.0, min=0.0, max=1e7, doc="when the cut starts (0 = never)")
    partition_duration_s: float = spec(60.0, min=0.0, max=1e7, doc="how long the cut lasts")
    leader_preference: tuple[str, ...] = spec([], doc="datacenters preferred for the federation leader, best first; "
                                                      "leadership moves back there after a failover")
    tick_ms: float = spec(10.0, min=1.0, max=1000, doc="federation Raft tick")
    migrations: int = spec(0, min=0, max=100_000, doc="VMs moved to another datacenter over the WAN, with their disks")
    migration_start_s: float = spec(600.0, min=0, max=1e7, doc="first cross-datacenter move")
    migration_window_s: float = spec(300.0, min=0, max=1e7, doc="moves start uniformly within this window")
    migration_kind: str = spec("block-live", choices=("block-live", "cold"),
                               doc="'block-live' (disk mirrored beside memory pre-copy) or 'cold' (VM stopped)")
    vm_disk_gib: float = spec(20.0, min=0.0, max=65536, doc="local disk of a federation VM (moves with it)")
    disk_write_mib_s: float = spec(2.0, min=0.0, max=1e5, doc="a VM's disk write rate while it is mirrored")
    migration_wan_share: float = spec(0.5, min=0.01, max=1.0, doc="share of a WAN link migration streams may use")

    def __post_init__(self) -> None:
        if not self.enabled:
            return
        self._check_datacenters()
        n = len(self.datacenters)
        for key, values in (("user_share", self.user_share), ("cost_per_vcpu_h", self.cost_per_vcpu_h)):
            if values and len(values) != n:
                raise ConfigError(f"federation.{key} has {len(values)} values; allowed: [] or {n} "
                                  "(one per datacenter)")
        for key in ("outage_datacenter", "partition_datacenter"):
            if error := self.datacenter_choice_error(f"federation.{key}", getattr(self, key)):
                raise ConfigError(error)
        if len(set(self.leader_preference)) != len(self.leader_preference):
            raise ConfigError(f"federation.leader_preference = {list(self.leader_preference)!r} is not allowed; "
                              "allowed: distinct datacenter names")
        for name in self.leader_preference:
            if name not in self.datacenters:
                raise ConfigError(f"federation.leader_preference = {name!r} is not allowed; allowed: names from "
                                  f"{', '.join(map(repr, self.datacenters))}")
        if self.ha_group_size > n:
            raise ConfigError(f"federation.ha_group_size = {self.ha_group_size} is out of range; allowed: 1 to {n} "
                              "(one member per datacenter)")

    def datacenter_choice_error(self, key: str, name: str) -> str | None:
        """The one-line problem with setting ``key`` to ``name``, where '' (none) or one of the
        federation's datacenters is allowed; None when there is none."""
        if not name or name in self.datacenters:
            return None
        return f"{key} = {name!r} is not allowed; allowed: '' or one of {', '.join(map(repr, self.datacenters))}"

    def _check_datacenters(self) -> None:
        n = len(self.datacenters)
        if n < 1 or len(set(self.datacenters)) != n:
            raise ConfigError(f"federation.datacenters = {list(self.datacenters)!r} is not allowed; "
                              "allowed: at least one name, each once")
        if n * self.clusters_per_datacenter > MAX_CLUSTERS:
            raise ConfigError(f"federation.clusters_per_datacenter = {self.clusters_per_datacenter} gives "
                              f"{n * self.clusters_per_datacenter} clusters; allowed: at most {MAX_CLUSTERS} "
                              "(one federation Raft member each)")
        if self.voters > n * self.clusters_per_datacenter:
            raise ConfigError(f"federation.voters = {self.voters} is out of range; allowed: 0 to "
                              f"{min(MAX_VOTING_CLUSTERS, n * self.clusters_per_datacenter)} (at most one per cluster)")
        if self.wan == "aws-2017":
            for name in self.datacenters:
                if name not in AWS_2017_REGIONS:
                    raise ConfigError(f"federation.datacenters = {name!r} is not allowed with wan = 'aws-2017'; "
                                      f"allowed: one of {', '.join(map(repr, AWS_2017_REGIONS))}")
        if self.wan == "matrix":
            problem = matrix_problem(self.wan_rtt_ms, n)
            if problem is not None:
                raise ConfigError(f"federation.wan_rtt_ms: {problem}; allowed: a symmetric {n} x {n} matrix "
                                  "of round trips in ms with a zero diagonal")
        elif self.wan_rtt_ms:
            raise ConfigError(f"federation.wan_rtt_ms is set but federation.wan = {self.wan!r}; "
                              "allowed: wan_rtt_ms only with wan = 'matrix'")

    @property
    def cluster_count(self) -> int:
        return len(self.datacenters) * self.clusters_per_datacenter

    def voter_clusters(self) -> tuple[int, ...]:
        """The clusters whose representatives vote (the rest are learners): the first cluster of
        each datacenter in turn -- ``leader_preference``'s first, then the scenario's order -- then
        the second clusters, so a lost datacenter takes as few votes with it as possible."""
        count, per_dc = self.cluster_count, self.clusters_per_datacenter
        wanted = self.voters or (count if count <= MAX_VOTING_CLUSTERS else VOTERS_WHEN_LARGE)
        preferred = [self.datacenters.index(name) for name in self.leader_preference]
        order = preferred + [dc for dc in range(len(self.datacenters)) if dc not in preferred]
        turns = [dc * per_dc + k for k in range(per_dc) for dc in order]
        return tuple(sorted(turns[:wanted]))

    def matrix(self) -> WanMatrix:
        return build_matrix(self.wan, self.datacenters, uniform_rtt_ms=self.wan_uniform_rtt_ms,
                            user_rtt_ms=self.wan_rtt_ms, bandwidth_mbit_s=self.wan_bandwidth_mbit_s)


@dataclass(frozen=True, slots=True)
class FederationTiming:
    """Raft timeouts for the federation group, tuned to the WAN (section 5.6 of the Raft paper:
    broadcastTime << electionTimeout). A heartbeat every max(50 ms, largest RTT); the shortest
    election timeout three heartbeats plus two of the largest round trips, the longest twice that."""

    heartbeat_ticks: int
    election_ticks_min: int
    election_ticks_max: int


def wan_timing(max_rtt_ms: float, tick_ms: float) -> FederationTiming:
    heartbeat = max(1, math.ceil(max(50.0, max_rtt_ms) / tick_ms))
    election_min = 3 * heartbeat + math.ceil(2 * max_rtt_ms / tick_ms)
    return FederationTiming(heartbeat, election_min, 2 * election_min)

"""The ``[scheduler]`` scenario section and the scheduler it builds.

Weights are relative (a weighted mean); a weight of 0 switches a scorer off. Filters are always
on: headroom, anti-affinity, affinity and NUMA locality are constraints, not preferences.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from novacron.config import ConfigError, spec
from novacron.scheduler.framework import Scheduler, WeightedScorer
from novacron.scheduler.health import HealthPreference, HealthyHost, HostHealth
from novacron.scheduler.policies import (
    Affinity,
    Allocation,
    AntiAffinity,
    EnergyScore,
    Filter,
    HostUp,
    NetworkScore,
    NumaLocality,
    NumaScore,
    ResourceFit,
)
from novacron.scheduler.rebalance import RebalanceConfig

REBALANCE = RebalanceConfig()
"""The rebalancer's defaults, owned by ``RebalanceConfig``; the scenario starts from them."""


@dataclass(frozen=True, slots=True, kw_only=True)
class SchedulerConfig:
    placer: Literal["scheduler", "first_fit"] = spec(
        "scheduler", choices=("scheduler", "first_fit"), doc="the filter/score scheduler, or the first-fit baseline")
    strategy: Literal["spread", "pack"] = spec("spread", choices=("spread", "pack"),
                                               doc="least allocated (spread) or most allocated (pack)")
    weight_allocation: float = spec(1.0, min=0, max=100, doc="weight of the spread/pack score")
    weight_numa: float = spec(0.5, min=0, max=100, doc="weight of NUMA locality")
    weight_energy: float = spec(0.0, min=0, max=100, doc="weight of energy-aware consolidation")
    weight_network: float = spec(0.5, min=0, max=100, doc="weight of nearness to the VM's peers")
    headroom_cpu_pct: float = spec(20.0, min=0, max=99, doc="CPU kept free on every host")
    headroom_memory_pct: float = spec(10.0, min=0, max=99, doc="memory kept free on every host")
    headroom_network_pct: float = spec(30.0, min=0, max=99, doc="network kept free on every host")
    headroom_io_pct: float = spec(20.0, min=0, max=99, doc="disk I/O kept free on every host")
    max_cross_node_ratio: float = spec(0.2, min=0, max=1, doc="NUMA: max share of a VM off its home node")
    numa_nodes: int = spec(2, min=1, max=16, doc="NUMA nodes per host")
    decision_cache_ttl_s: float = spec(120.0, min=0, max=86400, doc="decision cache TTL (0 = off)")
    cache_tolerance_pct: float = spec(5.0, min=0, max=100,
                                      doc="host change (% of capacity) that invalidates a cached decision")
    rebalance: Literal["off", "balance", "consolidate"] = spec(
        "balance", choices=("off", "balance", "consolidate"),
        doc="rebalancer mode (balance pairs with spread, consolidate with pack or energy)")
    admission: Literal["migration", "caps"] = spec(
        "migration", choices=("migration", "caps"),
        doc="admit moves with the migration AdmissionController (cost, headroom, rate) or plain caps")
    rebalance_interval_s: float = spec(300.0, min=1, max=86400, doc="interval between rebalancing rounds")
    imbalance_threshold_pct: float = spec(REBALANCE.imbalance_threshold_pct, min=0, max=100,
                                          doc="rebalance when the std-dev of host load exceeds this")
    max_moves_per_host: int = spec(REBALANCE.max_moves_per_host, min=1, max=100,
                                   doc="concurrent migrations per host")
    max_moves_total: int = spec(REBALANCE.max_moves_total, min=1, max=1000,
                                doc="concurrent migrations in the cluster")
    ping_pong_window_s: float = spec(REBALANCE.ping_pong_window_s, min=0, max=86400,
                                      doc="a moved VM is not moved again for this long")
    vm_network_gbps_per_vcpu: float = spec(0.05, min=0, max=100, doc="network demand per vCPU")
    vm_iops_per_vcpu: float = spec(100.0, min=0, max=1e6, doc="disk I/O demand per vCPU")
    anti_affinity_group_size: int = spec(3, min=0, max=1000,
                                         doc="VMs per anti-affinity group (replica set); 0 = none")
    peers_per_vm: int = spec(2, min=0, max=100, doc="earlier VMs of the same app a VM talks to")
    hosts_to_score: int = spec(0, min=0, max=100_000,
                               doc="score a random window of this many hosts (0 = all), as k8s "
                                   "percentageOfNodesToScore")
    quality_sample_s: float = spec(300.0, min=1, max=86400, doc="interval between placement quality samples")
    health_min_score: float = spec(0.0, min=0, max=99, doc="hosts whose health condition (the 0-100 score less its "
                                   "load) is below this take no VM while a healthier host can, and are evacuated "
                                   "(0 = off)")
    weight_health: float = spec(0.0, min=0, max=100, doc="weight of the health score between health_min_score "
                                "and 100 (0 = off)")
    health_evacuate_interval_s: float = spec(300.0, min=1, max=86400,
                                             doc="interval between evacuation rounds of unhealthy hosts")

    def __post_init__(self) -> None:
        if self.uses_health() and self.placer == "first_fit":
            raise ConfigError(f"scheduler: health_min_score = {self.health_min_score:g} and weight_health = "
                              f"{self.weight_health:g} need placer = 'scheduler' (first fit reads no health); "
                              "allowed: placer = 'scheduler', or both 0")

    def uses_health(self) -> bool:
        return self.health_min_score > 0 or self.weight_health > 0

    def headroom(self) -> tuple[float, float, float, float]:
        return (self.headroom_cpu_pct / 100, self.headroom_memory_pct / 100,
                self.headroom_network_pct / 100, self.headroom_io_pct / 100)


def hard_filters(config: SchedulerConfig) -> list[Filter]:
    """The constraints every configured scheduler applies, in order: up, resources with headroom,
    anti-affinity, affinity, NUMA locality."""
    return [HostUp(), ResourceFit(config.headroom()), AntiAffinity(), Affinity(),
            NumaLocality(config.max_cross_node_ratio)]


def build_scheduler(config: SchedulerConfig, health: HostHealth | None = None) -> Scheduler:
    """The configured scheduler; ``health`` (the runtime's host health scores) is required when
    the configuration uses health, and read by the health filter and scorer as it changes."""
    if config.uses_health() and health is None:
        raise ValueError("scheduler: health_min_score or weight_health is set but the runtime gave no host "
                         "health scores")
    filters = hard_filters(config)
    scorers = [WeightedScorer(Allocation(config.strategy), config.weight_allocation),
               WeightedScorer(NumaScore(), config.weight_numa),
               WeightedScorer(EnergyScore(), config.weight_energy),
               WeightedScorer(NetworkScore(), config.weight_network)]
    if health is not None and config.health_min_score > 0:
        filters.append(HealthyHost(health, config.health_min_score))  # soft: last, after the hard filters
    if health is not None and config.weight_health > 0:
        scorers.append(WeightedScorer(HealthPreference(health, config.health_min_score), config.weight_health))
    return Scheduler(filters, scorers, hosts_to_score=config.hosts_to_score)

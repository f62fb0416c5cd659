"""Random *valid* small scenarios, and the checks every run of one must pass.

``random_scenario(seed)`` draws a scenario TOML from the schema's own ranges (``novacron run
--help``), leaning on the bounds: tiny and huge guests, vCPUs at 1 and 256, dirty rates 0 and the
maximum, host crashes every few minutes or never, a leader crash or partition at the very start or
the very end, optional sections switched on in combinations. Sizes stay small (1-40 hosts, at most
300 VMs, 1-30 simulated minutes) so a run takes about a second.

``check_run`` states what must hold for any valid scenario: the run does not raise, every number
in ``summary.json`` is finite or null ("not measured"), each verdict is what its measured value
and threshold say, a cluster that placed no VM passes no utilisation target and one that rejected
every request does not pass "VMs rejected".

``python -m tests.scenario_fuzz FIRST LAST [N]`` runs seeds FIRST..LAST-1 (each Nth twice, for
the event-log hash) and prints each failure with its seed; ``random_scenario(seed)`` gives the
scenario back to reduce it. ``tests/scenario_bounds.py`` runs every bound one at a time.
"""

from __future__ import annotations

import json
import math
import random
import signal
import sys
import tempfile
import time
import traceback
from pathlib import Path
from typing import Any

from novacron.capacity_config import FaultsConfig
from novacron.config import ConfigError
from novacron.raft.scenario import RaftSection
from novacron.scenario import Scenario, loads_scenario

AWS = ["us-east-1", "us-west-1", "us-west-2", "eu-west-1", "eu-central-1", "ap-northeast-1"]
KINDS = ["vm", "container", "microvm", "gpu_vm"]
KIND_PATHS = ["container_to_container", "container_to_microvm", "container_to_vm", "vm_to_container",
              "microvm_to_microvm", "gpu_vm_to_gpu_vm"]


def _toml(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return json.dumps(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml(v) for v in value) + "]"
    return str(value)


def _render(top: dict[str, Any], sections: dict[str, dict[str, Any]]) -> str:
    lines = [f"{k} = {_toml(v)}" for k, v in top.items()]
    for name, table in sections.items():
        if table:
            lines.append(f"[{name}]")
            lines.extend(f"{k} = {_toml(v)}" for k, v in table.items())
    return "\n".join(lines) + "\n"


class _Draw:
    """Draws biased to the bounds: the bounds are where a model divides by zero or overflows."""

    def __init__(self, rng: random.Random) -> None:
        self.rng = rng

    def chance(self, p: float) -> bool:
        return self.rng.random() < p

    def num(self, low: float, high: float, *, log: bool = False, edge: float = 0.25) -> float:
        if self.chance(edge):
            return float(self.rng.choice([low, high]))
        if log and low > 0:
            return float(math.exp(self.rng.uniform(math.log(low), math.log(high))))
        return self.rng.uniform(low, high)

    def int(self, low: int, high: int, *, edge: float = 0.25) -> int:
        if self.chance(edge):
            return self.rng.choice([low, high])
        return self.rng.randint(low, high)

    def pick(self, options: list[Any]) -> Any:
        return self.rng.choice(options)


def random_scenario(seed: int, *, max_duration_s: float = 1800.0) -> str:
    """A valid scenario TOML, a function of ``seed`` (and ``max_duration_s``, which bounds a run's
    cost: CI runs its set at 120 s)."""
    d = _Draw(random.Random(seed))
    duration_s = min(d.pick([1.0, 60.0, 300.0, 900.0, 1800.0, d.num(1, 1800)]), max_duration_s)
    hosts = d.pick([1, 2, d.int(1, 40), d.int(1, 40)])
    host_memory = d.pick([256.0, 256.0, 256.0, 1.0, 4.0, 64.0, 512.0, 65536.0, d.num(1, 2048, log=True)])
    sections: dict[str, dict[str, Any]] = {
        "cluster": _cluster(d, hosts, host_memory),
        "workload": _workload(d, duration_s),
        "cache": _cache(d),
        "scheduler": _scheduler(d),
        "faults": _faults(d),
        "migration": _migration(d, duration_s),
        "raft": _raft(d, duration_s),
    }
    if d.chance(0.15):
        sections["control"] = {"critical_ops": "bft", "bft_replicas": d.int(4, 7),
                               "bft_network": d.pick(["lan", "wan30", "wan80", "wan150"])}
    federation = _federation(d, duration_s) if d.chance(0.2) else {}
    scheduled = sections["scheduler"]["placer"] == "scheduler"
    optional = {
        "federation": federation,
        "storage": _storage(d, federation) if d.chance(0.2) else {},
        "autoscale": _autoscale(d, hosts) if scheduled and d.chance(0.25) else {},
        "prediction": _prediction(d) if scheduled and d.chance(0.2) else {},
        "edge": _edge(d) if d.chance(0.15) else {},
        "pools": _pools(d, hosts, sections["cluster"], host_memory) if d.chance(0.15) else {},
        "gpus": _gpus(d, hosts) if d.chance(0.15) else {},
        "kind_migration": _kind_migration(d, duration_s) if d.chance(0.15) else {},
        "memory_pool": _memory_pool(d, host_memory) if d.chance(0.15) else {},
    }
    sections.update({k: v for k, v in optional.items() if v})
    top = {"name": f"fuzz-{seed}", "seed": seed, "duration_s": duration_s}
    # Most settings at their defaults, a few drawn (how many: the scenario's wildness), so a run
    # still places VMs and migrates them; all drawn at once mostly rejects every VM.
    wildness = d.pick([0.1, 0.3, 0.6, 1.0])
    sparse = {name: {k: v for k, v in table.items() if k in STRUCTURAL or d.chance(wildness)}
              for name, table in sections.items()}
    for candidate in (sparse, sections):
        text = _render(top, _fault_managers_fitted(candidate))
        try:
            loads_scenario(text, origin=f"fuzz seed {seed}")  # the generator's own check: only valid scenarios
        except ConfigError:
            if candidate is sections:
                raise
            continue
        return text
    raise AssertionError("unreachable")


def _fault_managers_fitted(sections: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The sections with ``faults.managers`` cut to the Raft control plane's managers where the
    fault model's crashes name managers (``novacron.scenario.fault_managers_error``)."""
    faults, raft = sections["faults"], sections["raft"]
    raft_managers = raft.get("managers", RaftSection().managers)
    if (raft.get("control_plane") == "raft" and faults.get("enabled") and "manager_mtbf_h" in faults
            and faults.get("managers", FaultsConfig().managers) > raft_managers):
        return {**sections, "faults": {**faults, "managers": raft_managers}}
    return sections


STRUCTURAL = frozenset({
    "enabled", "hosts", "host_memory_gib", "vm_cpu_cores", "vm_memory_gib", "vms", "placer", "migrations",
    "power_idle_w", "power_peak_w", "power_table_w", "heartbeat_ticks", "election_ticks_min",
    "election_ticks_max", "control_plane", "dirty_rate_pages_s", "wws_fraction", "names", "parents",
    "cpu_reservation_cores", "cpu_limit_cores", "cpu_shares", "memory_reservation_gib", "memory_limit_gib",
    "datacenters", "wan", "outage_datacenter", "outage_at_s", "partition_datacenter", "partition_at_s",
    "ha_group_size", "cost_per_vcpu_h", "xdc_replication", "sites", "iot", "analytics", "inference", "scheme",
    "nodes", "local_gib_per_host", "gpus_per_host", "vm_requests", "write_mode", "tier_migration", "paths",
    "policy", "initial_hosts", "min_hosts", "low_pct", "high_pct", "critical_ops", "bft_replicas",
    "migration",
})
"""Keys kept whenever their section is drawn: the ones other keys' validity depends on."""


def _cluster(d: _Draw, hosts: int, host_memory: float) -> dict[str, Any]:
    idle = d.num(0, 500)
    table = {"hosts": hosts, "host_cpu_cores": d.pick([32, 32, 32, 1, 2, 8, 64, 1024, d.int(1, 128)]),
             "host_memory_gib": host_memory, "host_network_gbps": d.num(0.1, 800, log=True),
             "host_disk_iops": d.num(1, 1e7, log=True), "cpu_overcommit": d.pick([0.1, 1.0, 2.0, 16.0]),
             "hosts_per_rack": d.int(1, 20), "racks_per_zone": d.int(1, 10),
             "zones_per_datacenter": d.int(1, 5), "contention": d.pick(["proportional", "shares"]),
             "power_idle_w": idle, "power_peak_w": idle + d.num(0, 500), "pue": d.num(1.0, 10.0)}
    if d.chance(0.15):
        table["power_table_w"] = sorted(d.num(0, 1e5) for _ in range(11))
    return table


def _workload(d: _Draw, duration_s: float) -> dict[str, Any]:
    flavours = d.int(1, 4, edge=0.1)
    flavour_list = [d.pick([(1, 2.0), (2, 4.0), (4, 8.0), (8, 16.0)]) if d.chance(0.75) else
                    (d.pick([1, 2, 4, 256, d.int(1, 256)]),
                     d.pick([0.125, 2.0, 16.0, 4096.0, d.num(0.125, 4096, log=True)]))
                    for _ in range(flavours)]
    table: dict[str, Any] = {
        "vms": d.pick([0, 1, 300, d.int(1, 300), d.int(1, 300), d.int(1, 300)]),
        "vm_cpu_cores": [vcpus for vcpus, _ in flavour_list],
        "vm_memory_gib": [memory for _, memory in flavour_list],
        "arrival_window_s": d.pick([0.0, duration_s / 2, duration_s * 2, d.num(0, 1e7, log=False)]),
        "arrival_diurnal_amplitude": d.num(0, 1), "mean_cpu_utilisation": d.num(0, 1),
        "demand_update_s": d.pick([1.0, 30.0, 300.0, 86400.0]), "lifetime_shape": d.num(1.05, 100),
        "diurnal_amplitude": d.num(0, 1), "burst_probability": d.num(0, 1), "burst_factor": d.num(1, 100),
        "network_mbps_per_vcpu": d.num(0, 1e6, log=False), "disk_iops_per_vcpu": d.num(0, 1e7, log=False),
    }
    if d.chance(0.4):
        table["lifetime_mean_s"] = d.pick([1.0, 60.0, d.num(1, 1e9, log=True)])
    if d.chance(0.2):
        table["kinds"] = d.rng.sample(KINDS, d.int(1, len(KINDS)))
    return table


def _cache(d: _Draw) -> dict[str, Any]:
    if d.chance(0.5):
        return {"enabled": False}
    write_mode = d.pick(["through", "back"])
    object_bytes = d.pick([1, 65536, 2**20])
    table: dict[str, Any] = {
        "policy": d.pick(["lru", "tlru", "s3fifo"]), "write_mode": write_mode,
        "l1_capacity_items": d.pick([1, 100, 10000]), "l1_ttl_s": d.pick([0.001, 300.0, 1e7]),
        "cleanup_interval_s": d.pick([0.5, 30.0, 86400.0]), "adaptive_l1": d.chance(0.3),
        "l2_capacity_items": d.pick([1, 30000]), "l2_ttl_s": d.pick([0.001, 3600.0]),
        "l3_capacity_gib": d.pick([1.0, 64.0]), "keys": d.pick([1, 2, 50000]),
        "object_bytes": object_bytes, "zipf_alpha": d.num(0, 5), "new_key_fraction": d.num(0, 1),
        "requests_per_s": d.pick([0.0, 1.0, 100.0, 2000.0]), "active_s": d.pick([0.0, 60.0, 600.0]),
        "tick_s": d.pick([0.1, 1.0, 3600.0]), "stats_interval_s": d.pick([1.0, 60.0, 86400.0]),
        "latency_sigma": d.num(0, 3), "warm_start": d.chance(0.5),
        "quiet_rate_fraction": d.num(0, 1), "daily_period_s": d.pick([1.0, 600.0, 86400.0]),
    }
    if d.chance(0.3):
        table["ssd_capacity_gib"] = d.pick([1.0, 10.0])
    if d.chance(0.3):
        table["l2_outage_start_s"] = d.pick([0.0, 30.0, 1e9])
        table["l2_outage_s"] = d.pick([0.0, 60.0, 1e9])
    if write_mode == "through" and d.chance(0.3):
        table.update(tier_migration=True, tier_migration_below_per_s=d.pick([0.0, 10.0, 1e9]),
                     tier_migration_interval_s=d.pick([1.0, 60.0]), tier_migration_budget_mib=d.pick([0.0, 256.0]))
    return table


def _scheduler(d: _Draw) -> dict[str, Any]:
    placer = d.pick(["scheduler", "scheduler", "first_fit"])
    table: dict[str, Any] = {
        "placer": placer, "strategy": d.pick(["spread", "pack"]),
        "weight_allocation": d.num(0, 100), "weight_numa": d.num(0, 100), "weight_energy": d.num(0, 100),
        "weight_network": d.num(0, 100), "headroom_cpu_pct": d.num(0, 99), "headroom_memory_pct": d.num(0, 99),
        "headroom_network_pct": d.num(0, 99), "headroom_io_pct": d.num(0, 99),
        "max_cross_node_ratio": d.num(0, 1), "numa_nodes": d.int(1, 16),
        "decision_cache_ttl_s": d.pick([0.0, 120.0, 86400.0]), "cache_tolerance_pct": d.num(0, 100),
        "rebalance": d.pick(["off", "balance", "consolidate"]), "admission": d.pick(["migration", "caps"]),
        "rebalance_interval_s": d.pick([1.0, 60.0, 300.0]), "imbalance_threshold_pct": d.num(0, 100),
        "max_moves_per_host": d.int(1, 100), "max_moves_total": d.int(1, 1000),
        "ping_pong_window_s": d.num(0, 86400), "vm_network_gbps_per_vcpu": d.num(0, 100),
        "vm_iops_per_vcpu": d.num(0, 1e6), "anti_affinity_group_size": d.pick([0, 1, 3, 1000]),
        "peers_per_vm": d.pick([0, 2, 100]), "hosts_to_score": d.pick([0, 1, 3, 100000]),
        "quality_sample_s": d.pick([1.0, 300.0]),
    }
    if placer == "scheduler" and d.chance(0.3):
        table.update(health_min_score=d.num(0, 99), weight_health=d.num(0, 100),
                     health_evacuate_interval_s=d.pick([1.0, 300.0]))
    return table


def _faults(d: _Draw) -> dict[str, Any]:
    if d.chance(0.4):
        return {"enabled": False}
    table: dict[str, Any] = {
        "enabled": True, "host_mtbf_h": d.pick([0.01, 0.1, 1.0, 100.0, 1e7]),
        "host_mttr_h": d.pick([0.001, 0.1, 1.0, 1e5]),
        "repair_distribution": d.pick(["exponential", "lognormal", "weibull"]),
        "repair_shape": d.num(0.05, 20, log=True), "restart_delay_s": d.pick([0.0, 60.0, 86400.0]),
        "correlated_failure_pct": d.num(0, 100), "managers": d.int(1, 7),
        "manager_mttr_s": d.pick([0.0, 30.0, 1e6]), "partition_duration_s": d.pick([0.0, 60.0, 1e6]),
    }
    for key in ("rack_mtbf_h", "manager_mtbf_h", "partition_mtbf_h"):
        if d.chance(0.4):
            table[key] = d.pick([0.01, 0.1, 10.0])
    return table


def _migration(d: _Draw, duration_s: float) -> dict[str, Any]:
    if d.chance(0.3):
        return {"migrations": 0}
    low_rate = d.pick([0.0, 500.0, 1e8])
    low_wws = d.num(0, 1)
    return {
        "migrations": d.pick([1, 10, d.int(1, 60)]),
        "start_s": d.pick([0.0, duration_s / 3, duration_s, duration_s * 2]),
        "request_window_s": d.pick([0.0, 60.0, duration_s]),
        "downtime_ms": d.num(1, 60000, log=True), "downtime_steps": d.int(1, 100),
        "downtime_delay_s_per_gib": d.num(0, 10000), "completion_timeout_s_per_gib": d.pick([0.0, 1.0, 800.0]),
        "timeout_action": d.pick(["abort", "force_complete"]), "permit_postcopy": d.chance(0.5),
        "permit_auto_converge": d.chance(0.5), "xbzrle": d.chance(0.3),
        "bandwidth_mib_s": d.pick([0.0, 1.0, 1e6]), "poll_interval_s": d.pick([0.1, 0.5, 60.0]),
        "max_concurrent_per_host": d.int(1, 100), "max_concurrent_global": d.int(1, 10000),
        "rate_per_s": d.num(0.001, 1e6, log=True), "burst": d.int(1, 100000),
        "dirty_rate_pages_s": [low_rate, d.pick([low_rate, 1e8])],
        "wws_fraction": [low_wws, d.num(low_wws, 1)], "nonzero_fraction": d.num(0, 1),
        "shutoff_fraction": d.num(0, 1), "warm_fraction": d.num(0, 1),
        "destination_crash_probability": d.num(0, 1),
        "stream_cap_mib_s": d.num(1, 1e6, log=True), "stop_copy_mib_s": d.num(1, 1e6, log=True),
    }


def _raft(d: _Draw, duration_s: float) -> dict[str, Any]:
    heartbeat = d.int(1, 10)
    low = d.int(heartbeat + 1, heartbeat + 30)
    table: dict[str, Any] = {
        "managers": d.int(1, 7), "network": d.pick(["lan", "wan30", "wan80", "wan150", "fig16"]),
        # 1 ms ticks cost ~10^6 node steps per simulated 3 minutes: only in short runs
        "tick_ms": d.pick([1.0, 10.0, 100.0] if duration_s <= 60 else [10.0, 100.0]),
        "heartbeat_ticks": heartbeat, "election_ticks_min": low,
        "election_ticks_max": d.int(low, low * 3), "pre_vote": d.chance(0.7), "check_quorum": d.chance(0.7),
        "commit_broadcast": d.chance(0.5), "formation_timeout_s": d.pick([1.0, 120.0]),
        "control_plane": d.pick(["direct", "direct", "raft"]),
        "simulate_s": d.pick([0.0, min(duration_s, 30.0)]),
        "leader_crash_at_s": d.pick([0.0, 0.001, 10.0, duration_s]),
        "restart_after_s": d.pick([0.0, 5.0, 86400.0]),
        "partition_at_s": d.pick([0.0, 0.001, 20.0, duration_s]),
        "partition_duration_s": d.pick([0.0, 3.0, 86400.0]), "snapshot_every": d.pick([0, 1, 50]),
    }
    if table["control_plane"] == "raft" and d.chance(0.3):
        table.update(leader_min_health=d.num(0, 99), leader_health_margin=d.num(0, 100))
    return table


def _federation(d: _Draw, duration_s: float) -> dict[str, Any]:
    n = d.int(1, 4)
    dcs = d.rng.sample(AWS, n)
    table: dict[str, Any] = {
        "enabled": True, "datacenters": dcs, "clusters_per_datacenter": d.int(1, 2),
        "hosts_per_cluster": d.int(1, 8), "wan": d.pick(["aws-2017", "uniform"]),
        "wan_uniform_rtt_ms": d.num(0.1, 10000, log=True), "wan_jitter_pct": d.num(0, 50),
        "vms": d.pick([0, 1, d.int(0, 100)]), "start_s": d.pick([0.0, 60.0, duration_s]),
        "arrival_window_s": d.pick([0.0, 300.0]), "policy": d.pick(["capacity", "latency", "cost", "locality"]),
        "ha_group_size": d.int(1, n), "state_replication": d.pick(["sync", "async"]),
        "failure_detection_s": d.pick([1.0, 30.0, 3600.0]), "vm_restart_s": d.pick([0.0, 45.0]),
        "migrations": d.pick([0, 0, d.int(1, 10)]), "migration_start_s": d.pick([0.0, 600.0]),
        "migration_kind": d.pick(["block-live", "cold"]), "vm_disk_gib": d.pick([0.0, 20.0, 65536.0]),
    }
    if d.chance(0.3):
        table["cost_per_vcpu_h"] = [d.num(0, 10) for _ in dcs]
    if d.chance(0.4):
        table["outage_datacenter"] = d.pick(dcs)
        table["outage_at_s"] = d.pick([0.001, 60.0, duration_s])
    if d.chance(0.4):
        table["partition_datacenter"] = d.pick(dcs)
        table["partition_at_s"] = d.pick([0.001, 60.0, duration_s])
        table["partition_duration_s"] = d.pick([0.0, 60.0, 1e7])
    return table


def _storage(d: _Draw, federation: dict[str, Any]) -> dict[str, Any]:
    scheme, shards = d.pick([("replication2", 2), ("replication3", 3), ("replication4", 4), ("rs4+2", 6),
                             ("rs6+3", 9), ("rs8+3", 11), ("rs10+4", 14), ("rs12+4", 16)])
    table: dict[str, Any] = {
        "enabled": True, "nodes": d.pick([shards, 10 + shards, 100000]), "disk_tb": d.num(0.001, 1000, log=True),
        "scheme": scheme,
        "rule_level": d.pick(["host", "rack", "zone", "datacenter"]), "disk_afr": d.num(1e-6, 0.999, log=True),
        "shard_mib": d.num(0.001, 1e6, log=True), "rebuild_write_mib_s": d.num(0.1, 1e5, log=True),
        "repair_share_of_nic": d.num(0.001, 1), "detect_min": d.num(0, 1e5),
    }
    if federation and len(federation["datacenters"]) >= 2 and d.chance(0.5):
        table.update(xdc_replication=d.pick(["sync", "async"]), xdc_write_mib_s=d.pick([0.0, 20.0, 1000.0]),
                     xdc_object_kib=d.pick([1.0, 1024.0]), xdc_start_s=d.pick([0.0, 60.0]))
    return table


def _autoscale(d: _Draw, hosts: int) -> dict[str, Any]:
    low = d.num(0, 100)
    return {"policy": d.pick(["off", "static", "threshold", "target", "predictive", "oracle"]),
            "interval_s": d.pick([1.0, 60.0, 300.0]), "provisioning_delay_s": d.pick([0.0, 600.0]),
            "initial_hosts": d.int(1, hosts), "min_hosts": d.int(1, hosts), "target_pct": d.num(5, 100),
            "high_pct": d.num(max(low, 1), 100), "low_pct": low, "step_pct": d.num(1, 100),
            "cooldown_s": d.pick([0.0, 600.0]), "stabilisation_s": d.pick([0.0, 300.0])}


def _prediction(d: _Draw) -> dict[str, Any]:
    return {"migration": True, "ceiling_pct": d.num(1, 200), "horizon_s": d.num(0, 86400),
            "level_smoothing": d.num(0.01, 1), "trend_smoothing": d.num(0, 1), "max_moves": d.int(1, 1000),
            "cooldown_s": d.pick([0.0, 3600.0])}


def _edge(d: _Draw) -> dict[str, Any]:
    sites = d.int(1, 4)
    table: dict[str, Any] = {"enabled": True, "sites": sites, "site_cores": d.pick([1, 64, 1000]),
                             "site_memory_gib": d.pick([1.0, 256.0]), "interval_s": d.pick([1.0, 10.0, 600.0]),
                             "site_mtbf_h": d.pick([0.001, 1.0, 2000.0]), "site_mttr_h": d.pick([0.0, 1.0]),
                             "failover_s": d.pick([0.0, 60.0, 1e6]), "edge_cloud_mbps": d.pick([0.001, 10000.0])}
    for name in ("iot", "analytics", "inference"):
        arrival = d.pick(["poisson", "mmpp", "trace"])
        service = {"enabled": d.chance(0.8), "arrival": arrival, "rate_ops_s": d.pick([0.0, 100.0, 1e5]),
                   "service_ms": d.num(0.0001, 1e3, log=True), "service_cv": d.num(0, 10),
                   "service_distribution": d.pick(["lognormal", "exponential"]), "cores": d.int(1, 100),
                   "memory_gib": d.pick([0.0, 8.0, 1e6]), "home_site": d.int(0, sites - 1),
                   "placement": d.pick(["auto", "edge", "cloud"])}
        if arrival == "trace":
            service["rate_trace_ops_s"] = [d.pick([0.0, 10.0, 1e4]) for _ in range(d.int(1, 4))]
        table[name] = _InlineTable(service)  # [edge] iot = { ... }
    return table


class _InlineTable(dict[str, Any]):
    def __str__(self) -> str:
        return "{ " + ", ".join(f"{k} = {_toml(v)}" for k, v in self.items()) + " }"


def _pools(d: _Draw, hosts: int, cluster: dict[str, Any], host_memory: float) -> dict[str, Any]:
    n = d.int(1, 3)
    cores = hosts * cluster["host_cpu_cores"]
    names = [f"p{i}" for i in range(n)]
    return {"enabled": True, "names": names, "parents": [""] * n,
            "cpu_reservation_cores": [d.pick([0.0, cores / (2 * n)]) for _ in names],
            "cpu_limit_cores": [d.pick([0.0, float(cores)]) for _ in names],
            "cpu_shares": [d.num(1, 1e9, log=True) for _ in names],
            "memory_reservation_gib": [d.pick([0.0, hosts * host_memory / (2 * n)]) for _ in names],
            "memory_limit_gib": [d.pick([0.0, hosts * host_memory]) for _ in names]}


def _gpus(d: _Draw, hosts: int) -> dict[str, Any]:
    per_host = d.pick([1, 8, 64])
    requests = ["", "1", "mig1", "mig7", str(per_host)]
    return {"enabled": True, "gpu_hosts": d.pick([0, 1, hosts, hosts + 5]), "gpus_per_host": per_host,
            "memory_gib": d.pick([1.0, 40.0]),
            "vm_requests": [d.pick(requests) for _ in range(d.int(1, 5))]}


def _kind_migration(d: _Draw, duration_s: float) -> dict[str, Any]:
    return {"migrations": d.int(1, 10), "paths": d.rng.sample(KIND_PATHS, d.int(1, len(KIND_PATHS))),
            "start_s": d.pick([0.0, 60.0, duration_s]), "interval_s": d.pick([0.0, 30.0]),
            "memory_gib": [d.pick([0.01, 1.0, 4096.0])], "wws_fraction": d.num(0, 1),
            "dirty_rate_mib_s": d.pick([0.0, 50.0, 1e5]), "dirty_rate_cv": d.num(0, 10),
            "bandwidth_mib_s": d.pick([1.0, 1100.0, 1e6]), "max_pre_dumps": d.int(0, 100),
            "gpu_memory_gib": d.pick([0.0, 8.0, 1024.0]), "image_gib": d.pick([0.0, 2.0, 1e4])}


def _memory_pool(d: _Draw, host_memory: float) -> dict[str, Any]:
    return {"enabled": True, "numa_nodes_per_host": d.int(1, 16),
            "local_gib_per_host": d.pick([1.0, host_memory]), "hosts_per_pool": d.pick([1, 8, 20000]),
            "pool_gib_per_group": d.pick([0.0, 1024.0, 1e9]), "slice_gib": d.pick([0.125, 1.0, 1024.0]),
            "policy": d.pick(["pool_aware", "uniform"]), "affinity": d.chance(0.5),
            "hot_fraction": d.num(0.01, 1), "hot_access_share": d.num(0, 1),
            "sample_interval_s": d.pick([1.0, 300.0])}


# --- what every run must satisfy -------------------------------------------------------------------

UTILISATION = ("cluster.peak_cpu_pct", "cluster.peak_memory_pct", "cluster.cpu_ready_p99_pct")
SHARES = ("rejected_pct", "hit_rate_pct", "uptime_pct", "uptime_min_pct", "uptime_p1_pct", "success_pct",
          "shed_pct", "cloud_pct", "peak_cpu_pct", "mean_cpu_pct", "host_cpu_p99_pct", "cpu_ready_p99_pct",
          "cpu_ready_max_pct", "unserved_cpu_pct", "slatah_pct", "pdm_pct", "cross_node_pct", "peak_used_pct")
"""Percentages of a whole: never below 0 or above 100."""
NON_NEGATIVE_UNITS = ("ms", "s", "", "MiB", "1/s", "kWh", "TB", "GiB", "h", "ns", "items", "GB/s")


def _range_problems(metrics: dict[str, Any]) -> list[str]:
    from novacron.metrics import METRICS

    problems = []
    for name, value in metrics.items():
        if value is None:
            continue
        unit = METRICS[name].unit if name in METRICS else None
        if name.endswith(SHARES) and not -1e-9 <= value <= 100 + 1e-9:
            problems.append(f"metric {name} = {value} is not a share in [0, 100]")
        elif unit in NON_NEGATIVE_UNITS and value < 0 and "error" not in name:
            problems.append(f"metric {name} = {value} is negative")
    return problems


def _model_problems(metrics: dict[str, Any], scenario: Scenario) -> list[str]:
    """Limits the scenario sets that the model itself must keep."""
    problems = []
    m = scenario.migration
    for metric, limit in (("migration.peak_running_per_host", m.max_concurrent_per_host),
                          ("migration.peak_running_global", m.max_concurrent_global)):
        value = metrics.get(metric)
        if value is not None and value > limit:
            problems.append(f"{metric} = {value:g} above the configured limit {limit}")
    excess = metrics.get("gpu.capacity_excess_max_slices")
    if excess is not None and excess > 0:
        problems.append(f"gpu.capacity_excess_max_slices = {excess:g}: GPUs given beyond a host's")
    return problems


def _finite_json(text: str) -> Any:
    def refuse(token: str) -> None:
        raise ValueError(f"summary.json holds {token}")

    return json.loads(text, parse_constant=refuse)


def check_summary(summary_text: str, scenario: Scenario | None = None) -> list[str]:
    """What is wrong with one run's ``summary.json`` (empty: nothing); with its scenario, also
    the limits it sets that the run broke."""
    problems: list[str] = []
    try:
        summary = _finite_json(summary_text)
    except ValueError as exc:
        return [str(exc)]
    metrics = summary["metrics"]
    for name, value in metrics.items():
        if value is not None and not (isinstance(value, (int, float)) and math.isfinite(value)):
            problems.append(f"metric {name} = {value!r}")
    problems.extend(_range_problems(metrics))
    if scenario is not None:
        problems.extend(_model_problems(metrics, scenario))
    rows = {row["metric"]: row for row in summary["targets"]}
    for row in summary["targets"]:
        problems.extend(_row_problems(row, metrics))
    placed = metrics.get("cluster.vms_placed") or 0.0
    requested = metrics.get("cluster.vms_requested") or 0.0
    if placed == 0:
        for metric in UTILISATION:
            if metric in rows and rows[metric]["verdict"] == "pass":
                problems.append(f"{metric} passes with no VM placed")
    rejected = rows.get("cluster.vms_rejected_pct")
    if requested > 0 and placed == 0 and rejected is not None and rejected["verdict"] == "pass" \
            and rejected["threshold"] < 100:
        problems.append("cluster.vms_rejected_pct passes with every request rejected")
    blocking = [r for r in summary["targets"] if r["role"] == "required" and r["verdict"] != "pass"]
    if summary["passed"] != (not blocking):
        problems.append(f"passed = {summary['passed']} but {len(blocking)} required targets do not pass")
    return problems


def _row_problems(row: dict[str, Any], metrics: dict[str, Any]) -> list[str]:
    measured, verdict, threshold = row["measured"], row["verdict"], row["threshold"]
    if measured is None:
        return [] if verdict == "not measured" else [f"{row['metric']}: {verdict} without a measured value"]
    if verdict == "not measured":
        return [f"{row['metric']}: not measured but measured = {measured}"]
    if metrics.get(row["metric"]) is None:
        return [f"{row['metric']}: verdict {verdict} on {measured} but summary metric is null"]
    ops = {"<": lambda a, b: a < b, "<=": lambda a, b: a <= b, ">": lambda a, b: a > b,
           ">=": lambda a, b: a >= b}
    if isinstance(threshold, list):
        holds = threshold[0] <= measured <= threshold[1]
    elif row["comparator"] in ops:
        holds = ops[row["comparator"]](measured, threshold)
    else:
        return []
    if holds != (verdict == "pass"):
        return [f"{row['metric']}: {measured} {row['comparator']} {threshold} gave {verdict}"]
    return []


def _where(exc: BaseException) -> str:
    """The exception and the innermost frame of the project that raised it (the cause if chained)."""
    while exc.__cause__ is not None:
        exc = exc.__cause__
    frames = [f for f in traceback.extract_tb(exc.__traceback__) if "site-packages" not in f.filename]
    at = f" at {Path(frames[-1].filename).name}:{frames[-1].lineno}" if frames else ""
    return f"{type(exc).__name__}: {exc}{at}"


def run_one(text: str, seed: int, out_dir: Path, *, report: bool = False) -> tuple[list[str], str | None]:
    """Run a scenario text (the report only if asked); returns (problems, events_sha256)."""
    from sim.run import run_scenario  # the runtime: imported here so the generator stays cheap

    scenario = loads_scenario(text, origin=f"fuzz seed {seed}")
    try:
        result = run_scenario(scenario, scenario.seed, out_dir, text, report=report)
    except Exception as exc:  # any exception is the finding
        return [f"raised {_where(exc)}"], None
    problems = check_summary((out_dir / "summary.json").read_text(), scenario)
    return problems + _replay_problems(out_dir, result.summary["metrics"]), result.summary["events_sha256"]


def _replay_problems(out_dir: Path, summary_metrics: dict[str, Any]) -> list[str]:
    """The metrics folded while the run streamed must equal those folded from its log read back."""
    from novacron.app.eventstore import read_events
    from novacron.metrics import compute_metrics

    replayed = compute_metrics(read_events(out_dir / "events.parquet"))
    problems = []
    for name, value in replayed.items():
        streamed = summary_metrics.get(name)
        finite = isinstance(value, float) and math.isfinite(value)
        if streamed is None and not finite:
            continue
        if streamed is None or not math.isclose(streamed, value, rel_tol=1e-9, abs_tol=1e-9):
            problems.append(f"metric {name}: {streamed} streamed, {value} replayed from the log")
    return problems


SLOW_S = 40


class _Slow(BaseException):
    pass


def _alarm(signum: int, frame: object) -> None:
    raise _Slow


MEMORY_LIMIT_BYTES = 4 * 2**30
"""A campaign's address-space cap: a scenario the model cannot hold raises MemoryError (a finding)
instead of taking the machine's memory."""


def _limit_memory() -> None:
    import resource

    resource.setrlimit(resource.RLIMIT_AS, (MEMORY_LIMIT_BYTES, MEMORY_LIMIT_BYTES))


def main(argv: list[str]) -> int:
    signal.signal(signal.SIGALRM, _alarm)
    _limit_memory()
    first, last = int(argv[0]), int(argv[1])
    twice_every = int(argv[2]) if len(argv) > 2 else 0
    failures = 0
    with tempfile.TemporaryDirectory(prefix="novacron-fuzz-") as tmp:
        for seed in range(first, last):
            text = random_scenario(seed)
            signal.alarm(SLOW_S)
            started = time.perf_counter()
            try:
                problems, sha = run_one(text, seed, Path(tmp) / f"r{seed}", report=seed % 10 == 0)
            except _Slow:
                problems, sha = [f"slow: more than {SLOW_S} s"], None
            finally:
                signal.alarm(0)
            if sha is not None and twice_every and seed % twice_every == 0:
                _, again = run_one(text, seed, Path(tmp) / f"r{seed}b")
                if again != sha:
                    problems.append(f"events_sha256 differs between two runs: {sha} {again}")
            for problem in problems:
                print(f"FAIL seed {seed}: {problem}", flush=True)
            failures += bool(problems)
            print(f"done seed {seed} {time.perf_counter() - started:.1f} s", flush=True)
    print(f"{last - first} scenarios, {failures} failing", flush=True)
    return 1 if failures else 0




if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

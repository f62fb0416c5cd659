"""What the real runtime can run, and the settings it echoes (as a simulated run does).

``check_supported`` refuses, in one line naming the key, every scenario feature the real runtime
does not implement yet, rather than silently running a different scenario than the simulation
would: host and rack crashes, VM lifetimes,
traces, shut-off/warm moves, destination crashes, the rebalancer, Raft timings other than the
ones the ``novacron manager`` processes use, and a partition without root and ``nft``.

``config_metrics`` is the real runtime's copy of the settings block a simulated run echoes
(``sim.raft.component``, ``sim.cache``, ``sim.migration.service``, ``sim.scheduling``); a test
checks that both agree for ``lab-small``.
"""

from __future__ import annotations

from backends.realrun.firewall import require_nft
from novacron.config import ConfigError
from novacron.raft.metrics import raft_config_metrics
from novacron.raft.scenario import RAFT
from novacron.runtime_config import check_libvirt_uris
from novacron.scenario import Scenario

MANAGER_TICK_MS = 10.0
"""The tick of a ``novacron manager`` process (``ManagerConfig.tick_ms``)."""


def _unsupported(scenario: Scenario) -> list[tuple[str, object, str]]:
    f, w, m, r, s = scenario.faults, scenario.workload, scenario.migration, scenario.raft, scenario.scheduler
    moves = m.migrations > 0 and w.vms > 0
    checks: list[tuple[bool, str, object, str]] = [
        (scenario.federation.enabled, "federation.enabled", True, "false (the federation is simulation-only)"),
        (f.enabled, "faults.enabled", f.enabled, "false (host, rack and manager MTBF faults are simulation-only)"),
        (r.partition_at_s > 0 and r.control_plane != "raft", "raft.partition_at_s", r.partition_at_s,
         "0 unless raft.control_plane = 'raft' (real managers to partition)"),
        (w.trace_format is not None, "workload.trace_format", w.trace_format, "nothing (synthetic VMs only)"),
        (w.lifetime_mean_s is not None, "workload.lifetime_mean_s", w.lifetime_mean_s, "nothing (guests never leave)"),
        (moves and m.shutoff_fraction > 0, "migration.shutoff_fraction", m.shutoff_fraction, "0 (every guest runs)"),
        (moves and m.warm_fraction > 0, "migration.warm_fraction", m.warm_fraction, "0 (live moves only)"),
        (moves and m.destination_crash_probability > 0, "migration.destination_crash_probability",
         m.destination_crash_probability, "0 (no host crashes)"),
        (s.rebalance != "off", "scheduler.rebalance", s.rebalance, "'off'"),
        (r.tick_ms != MANAGER_TICK_MS, "raft.tick_ms", r.tick_ms, f"{MANAGER_TICK_MS:g} (the managers' tick)"),
        ((r.heartbeat_ticks, r.election_ticks_min, r.election_ticks_max)
         != (RAFT.heartbeat_ticks, RAFT.election_ticks_min, RAFT.election_ticks_max),
         "raft.heartbeat_ticks/election_ticks_min/election_ticks_max",
         (r.heartbeat_ticks, r.election_ticks_min, r.election_ticks_max),
         f"{(RAFT.heartbeat_ticks, RAFT.election_ticks_min, RAFT.election_ticks_max)} (the managers' timing)"),
        (w.vms > scenario.runtime.max_guests, "workload.vms", w.vms,
         f"at most runtime.max_guests = {scenario.runtime.max_guests} real guests"),
    ]
    return [(key, value, allowed) for bad, key, value, allowed in checks if bad]


def check_supported(scenario: Scenario, hosts: tuple[str, ...] = ()) -> None:
    """One-line ``ConfigError`` for the first setting the real runtime cannot honour."""
    problems = _unsupported(scenario)
    if problems:
        key, value, allowed = problems[0]
        raise ConfigError(f"{scenario.name}: {key} = {value!r} is not supported by --runtime real; allowed: {allowed}")
    if scenario.raft.partition_at_s > 0:
        require_nft("raft.partition_at_s")
    check_libvirt_uris("--hosts", hosts)
    uris = hosts or scenario.runtime.hosts
    if uris and len(uris) != scenario.cluster.hosts:
        raise ConfigError(f"{scenario.name}: {len(uris)} host URI(s) for cluster.hosts = {scenario.cluster.hosts}; "
                          "allowed: one libvirt URI per host")
    if not uris and scenario.cluster.hosts != 2:
        raise ConfigError(f"{scenario.name}: cluster.hosts = {scenario.cluster.hosts} with no host URIs; "
                          "allowed: 2 (the lab's hosts) or --hosts URI ... / [runtime] hosts")


def config_metrics(scenario: Scenario) -> dict[str, float]:
    """The settings a run echoes (never targets' evidence), as the simulation's components add them."""
    r, c, m = scenario.raft, scenario.cache, scenario.migration
    metrics = raft_config_metrics(managers=r.managers, tick_ms=r.tick_ms, heartbeat_ticks=r.heartbeat_ticks,
                                  election_ticks_min=r.election_ticks_min, election_ticks_max=r.election_ticks_max,
                                  formation_timeout_s=r.formation_timeout_s)
    metrics["migration.max_concurrent_per_host"] = float(m.max_concurrent_per_host)
    metrics["migration.max_concurrent_global"] = float(m.max_concurrent_global)
    if scenario.scheduler.placer == "scheduler":
        metrics["scheduler.decision_cache_ttl_s"] = scenario.scheduler.decision_cache_ttl_s
    if c.enabled:
        metrics.update({"cache.l1.capacity_items": float(c.l1_capacity_items), "cache.l1.ttl_s": c.l1_ttl_s,
                        "cache.l1.cleanup_interval_s": c.cleanup_interval_s})
    return metrics

"""CPU contention on a host, the power model, and the consolidation literature's SLA metrics.

Theory of operation
-------------------
*Contention.* Each demand sample gives every running VM a CPU demand in cores. A host serves at
most its physical cores (100 % CPU). When the demand of its VMs exceeds that, each VM gets a
share and the rest of its demand waits (the hypervisor's "CPU ready" / steal time):

- ``proportional`` (default): every VM on the host gets the same fraction
  ``capacity / demand``, so the served demand sums to the capacity exactly;
- ``shares``: weighted max-min fairness (water-filling) with weights = the VM's vCPUs, as
  vSphere's default "normal" shares (1,000 per vCPU) and KVM/cgroup ``cpu.shares`` per vCPU do: a
  VM never gets more than it asks, and what a satisfied VM leaves over is shared again among the
  others by weight. Each round is a few ``bincount`` calls over all VMs; a round satisfies at least
  one VM per contended host or gives out all the host's capacity, so it ends in few rounds.

Both are vectorised over all VMs of all hosts (no per-VM Python loop). Served + unserved = demand
and served <= capacity per host, by construction.

*Energy.* A host's power is a function of its served CPU utilisation ``u``: either linear,
``P(u) = P_idle + (P_peak - P_idle) u`` (Fan, Weber and Barroso, ISCA 2007), by default 175 W idle /
250 W peak: the linear model of Beloglazov, Abawajy and Buyya, FGCS 28(5), 2012 (P_max = 250 W,
an idle server drawing about 70 % of it). The CCPE 2012 paper itself uses SPECpower tables of an
HP ProLiant ML110 G4 (86 W idle, 117 W at 100 %) and G5 (93.7 W, 135 W), which
``cluster.power_table_w`` can reproduce. Or an 11-point table at
0, 10, ..., 100 % (the SPECpower_ssj2008 load levels) interpolated linearly. Both are given to the
fold as the 11-point table (a linear model is exact under linear interpolation). Facility energy
is IT energy x PUE. A host that is down draws 0.

*SLA metrics* (Beloglazov and Buyya, "Optimal online deterministic algorithms and adaptive
heuristics for energy and performance efficient dynamic consolidation of virtual machines in
cloud data centers", CCPE 24(13), 2012, section 6.2):

- SLATAH = (1/N) sum_i T_s,i / T_a,i over hosts that were active (up with at least one VM):
  the share of its active time a host spent at 100 % CPU;
- PDM = (1/M) sum_j C_d,j / C_r,j over VMs that ran: the performance degradation due to
  migrations, C_d = 10 % of the VM's CPU during each of its migrations (the paper's estimate),
  over C_r, the CPU the VM requested over its life. We take the VM's vCPUs for both (the log has
  no per-VM CPU series), so the vCPUs cancel: C_d / C_r = 0.1 x migration time / alive time;
- SLAV = SLATAH x PDM.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

CONTENTION_POLICIES: tuple[str, ...] = ("proportional", "shares")
POWER_TABLE_POINTS = 11
"""SPECpower-style load levels 0, 10, ..., 100 %."""
MIGRATION_DEGRADATION = 0.1
"""Beloglazov and Buyya's estimate: a VM loses 10 % of its CPU while it migrates."""
FULL_CPU_PCT = 100.0 - 1e-9
"""A host sample at or above this served utilisation counts as "at 100 % CPU" (SLATAH)."""
_MAX_SHARE_ROUNDS = 64
_EPS = 1e-12


def share_cpu(demand_cores: FloatArray, host: IntArray, capacity_cores: FloatArray, *,
              policy: str = "proportional", weights: FloatArray | None = None) -> FloatArray:
    """Each VM's served CPU (cores) given its demand, its host index and the hosts' capacity."""
    hosts = capacity_cores.size
    host_demand = np.bincount(host, weights=demand_cores, minlength=hosts)
    if policy == "proportional" or not np.any(host_demand > capacity_cores):
        scale = np.minimum(1.0, capacity_cores / np.maximum(host_demand, _EPS))
        return demand_cores * scale[host]
    if policy != "shares":
        raise ValueError(f"contention policy {policy!r}: allowed {', '.join(CONTENTION_POLICIES)}")
    w = np.ones_like(demand_cores) if weights is None else weights
    served = np.zeros_like(demand_cores)
    for _ in range(_MAX_SHARE_ROUNDS):
        wanting = (demand_cores - served) > _EPS
        remaining = capacity_cores - np.bincount(host, weights=served, minlength=hosts)
        active_w = np.where(wanting, w, 0.0)
        host_w = np.bincount(host, weights=active_w, minlength=hosts)
        per_weight = np.where((host_w > 0) & (remaining > _EPS), remaining / np.maximum(host_w, _EPS), 0.0)
        give = np.minimum(per_weight[host] * active_w, demand_cores - served)
        if not np.any(give > _EPS):
            break
        served += give
    return served


def linear_power_table_w(idle_w: float, peak_w: float) -> tuple[float, ...]:
    """The linear model as the 11-point table (exact: interpolation of a line is the line)."""
    levels = np.linspace(0.0, 1.0, POWER_TABLE_POINTS)
    return tuple(float(w) for w in idle_w + (peak_w - idle_w) * levels)


def power_w(cpu_pct: FloatArray, table_w: tuple[float, ...]) -> FloatArray:
    """Watts drawn at each served CPU utilisation (linear interpolation between table points)."""
    levels = np.linspace(0.0, 100.0, len(table_w))
    return np.interp(np.clip(cpu_pct, 0.0, 100.0), levels, np.asarray(table_w, dtype=np.float64))


def pdm(migration_s_per_vm: FloatArray, alive_s_per_vm: FloatArray) -> float | None:
    """Mean over VMs that ran of 10 % x time migrating / time alive; ``None`` if no VM ran."""
    ran = alive_s_per_vm > 0
    if not ran.any():
        return None
    return float(np.mean(MIGRATION_DEGRADATION * migration_s_per_vm[ran] / alive_s_per_vm[ran]))

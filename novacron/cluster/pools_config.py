"""The ``[pools]`` scenario section: hierarchical resource pools (``novacron.cluster.pools``).

Off by default. Pools are given as parallel lists, one entry per pool (a TOML array of tables
would be nicer to write; the scenario reader takes scalar lists):

    [pools]
    enabled = true
    names = ["prod", "gold", "silver", "dev"]
    parents = ["", "prod", "prod", ""]          # '' = the cluster
    cpu_reservation_cores = [200, 120, 40, 0]
    cpu_shares = [4000, 2000, 1000, 1000]
    vm_pools = ["gold", "silver", "dev", "dev"]  # leaf pools VMs join, by a stable hash of their id

A list left empty takes its default for every pool (no reservation, no limit, 1,000 shares).
"""

from __future__ import annotations

from dataclasses import dataclass

from novacron.cluster.pools import Pool, PoolError, PoolTree
from novacron.config import ConfigError, spec

PER_POOL = ("parents", "cpu_reservation_cores", "cpu_limit_cores", "cpu_shares", "memory_reservation_gib",
            "memory_limit_gib")


@dataclass(frozen=True, slots=True, kw_only=True)
class PoolsConfig:
    enabled: bool = spec(False, doc="put VMs in hierarchical resource pools (reservations, limits, shares)")
    names: tuple[str, ...] = spec([], doc="pool names")
    parents: tuple[str, ...] = spec([], doc="each pool's parent ('' = the cluster); empty = all top level")
    cpu_reservation_cores: tuple[float, ...] = spec([], min=0.0, max=1e9, doc="CPU guaranteed to each pool, cores")
    cpu_limit_cores: tuple[float, ...] = spec([], min=0.0, max=1e9, doc="CPU cap of each pool, cores (0 = none)")
    cpu_shares: tuple[float, ...] = spec([], min=1.0, max=1e9,
                                         doc="each pool's weight against its siblings (vSphere: 500/1000/2000 per "
                                             "vCPU for low/normal/high)")
    memory_reservation_gib: tuple[float, ...] = spec([], min=0.0, max=1e12, doc="memory kept for each pool, GiB")
    memory_limit_gib: tuple[float, ...] = spec([], min=0.0, max=1e12, doc="memory cap of each pool, GiB (0 = none)")
    vm_pools: tuple[str, ...] = spec([], doc="leaf pools VMs join, picked by a stable hash of the VM id "
                                             "(repeat a name to weight it); empty = every leaf")

    def __post_init__(self) -> None:
        if self.enabled and not self.names:
            raise ConfigError("pools.names is empty; allowed: at least one pool with pools.enabled = true")
        for key in PER_POOL:
            values = getattr(self, key)
            if values and len(values) != len(self.names):
                raise ConfigError(f"pools.{key} has {len(values)} values for {len(self.names)} pools; "
                                  "allowed: one per pool, or [] for the default")

    def pools(self) -> tuple[Pool, ...]:
        def at(key: str, k: int, default: object) -> object:
            values = getattr(self, key)
            return values[k] if values else default

        return tuple(Pool(name=name, parent=str(at("parents", k, "")),
                          cpu_reservation_cores=float(at("cpu_reservation_cores", k, 0.0)),  # type: ignore[arg-type]
                          cpu_limit_cores=float(at("cpu_limit_cores", k, 0.0)),  # type: ignore[arg-type]
                          cpu_shares=float(at("cpu_shares", k, 1000.0)),  # type: ignore[arg-type]
                          memory_reservation_gib=float(at("memory_reservation_gib", k, 0.0)),  # type: ignore[arg-type]
                          memory_limit_gib=float(at("memory_limit_gib", k, 0.0)))  # type: ignore[arg-type]
                     for k, name in enumerate(self.names))

    def tree(self, *, cluster_cores: float, cluster_memory_gib: float) -> PoolTree:
        """The checked tree; a ``ConfigError`` naming the pool when it cannot hold its promises."""
        try:
            return PoolTree(self.pools(), self.vm_pools, cluster_cores=cluster_cores,
                            cluster_memory_gib=cluster_memory_gib)
        except PoolError as exc:
            raise ConfigError(f"pools: {exc}") from None

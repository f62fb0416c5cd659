"""The ``[kind_migration]`` scenario section: a batch of migrations between workload kinds.

Off by default (``migrations = 0``). Each migration takes the next path of ``paths`` (repeated),
a memory size drawn from ``memory_gib``, a dirty rate around ``dirty_rate_mib_s`` (lognormal,
``dirty_rate_cv``) within a writable working set of ``wws_fraction`` of its memory, and the link
``bandwidth_mib_s``; ``novacron.migration.kinds`` gives its phases and ``sim.migration.kinds`` runs
the batch. Every figure of the model (``KindMigrationParams``) can be set here too.
"""

from __future__ import annotations

from dataclasses import dataclass

from novacron.config import ConfigError, spec
from novacron.migration.kinds import PATHS, KindMigrationParams

_DEFAULTS = KindMigrationParams()


@dataclass(frozen=True, slots=True, kw_only=True)
class KindMigrationConfig:
    migrations: int = spec(0, min=0, max=100_000, doc="migrations between kinds in the batch (0 = none)")
    paths: tuple[str, ...] = spec(list(PATHS), choices=tuple(PATHS), doc="paths the batch cycles through")
    start_s: float = spec(60.0, min=0.0, max=1e7, doc="when the batch starts")
    interval_s: float = spec(30.0, min=0.0, max=1e7, doc="time between the starts of two migrations")
    memory_gib: tuple[float, ...] = spec([1.0, 2.0, 4.0], min=0.01, max=4096,
                                         doc="workload memory sizes, drawn uniformly")
    wws_fraction: float = spec(0.125, min=0.0, max=1.0, doc="writable working set over memory")
    dirty_rate_mib_s: float = spec(50.0, min=0.0, max=1e5, doc="mean dirty rate")
    dirty_rate_cv: float = spec(0.5, min=0.0, max=10.0, doc="spread of the dirty rate (lognormal)")
    bandwidth_mib_s: float = spec(1100.0, min=1.0, max=1e6, doc="link between the hosts (10 GbE ~ 1,100 MiB/s used)")
    dump_rate_mib_s: float = spec(_DEFAULTS.dump_rate_mib_s, min=1.0, max=1e6, doc="CRIU dump rate")
    restore_rate_mib_s: float = spec(_DEFAULTS.restore_rate_mib_s, min=1.0, max=1e6, doc="CRIU restore rate")
    restore_fixed_s: float = spec(_DEFAULTS.restore_fixed_s, min=0.0, max=1e4, doc="CRIU restore fixed cost")
    max_pre_dumps: int = spec(_DEFAULTS.max_pre_dumps, min=0, max=100, doc="CRIU pre-dump rounds at most")
    gpu_memory_gib: float = spec(_DEFAULTS.gpu_memory_gib, min=0.0, max=1024, doc="GPU memory moved while stopped")
    image_gib: float = spec(_DEFAULTS.image_gib, min=0.0, max=1e4, doc="image layer converted (vm -> container)")

    def __post_init__(self) -> None:
        if self.migrations and not self.paths:
            raise ConfigError("kind_migration.paths is empty; allowed: at least one of " + ", ".join(PATHS))

    def params(self) -> KindMigrationParams:
        return KindMigrationParams(dump_rate_mib_s=self.dump_rate_mib_s, restore_rate_mib_s=self.restore_rate_mib_s,
                                   restore_fixed_s=self.restore_fixed_s, max_pre_dumps=self.max_pre_dumps,
                                   gpu_memory_gib=self.gpu_memory_gib, image_gib=self.image_gib)

"""The ``[migration]`` scenario section: the batch to migrate, Nova's knobs, admission limits."""

from __future__ import annotations

from dataclasses import dataclass

from novacron.config import ConfigError, spec


@dataclass(frozen=True, slots=True, kw_only=True)
class MigrationConfig:
    migrations: int = spec(40, min=0, max=100_000, doc="migrations requested in the batch")
    start_s: float = spec(900.0, min=0, max=1e7, doc="when the batch starts (after VMs are placed)")
    request_window_s: float = spec(300.0, min=0, max=1e7, doc="requests arrive uniformly within this window")
    downtime_ms: float = spec(500.0, min=1, max=60_000, doc="Nova live_migration_downtime (final limit)")
    downtime_steps: int = spec(10, min=1, max=100, doc="Nova live_migration_downtime_steps")
    downtime_delay_s_per_gib: float = spec(75.0, min=0, max=10_000, doc="Nova live_migration_downtime_delay")
    completion_timeout_s_per_gib: float = spec(800.0, min=0, max=100_000,
                                               doc="Nova live_migration_completion_timeout (0: none)")
    timeout_action: str = spec("abort", choices=("abort", "force_complete"),
                               doc="Nova live_migration_timeout_action")
    permit_postcopy: bool = spec(True, doc="Nova live_migration_permit_post_copy")
    permit_auto_converge: bool = spec(True, doc="Nova live_migration_permit_auto_converge")
    xbzrle: bool = spec(False, doc="XBZRLE compression of re-sent pages")
    bandwidth_mib_s: float = spec(0.0, min=0, max=1e6, doc="Nova live_migration_bandwidth (0: unlimited)")
    poll_interval_s: float = spec(0.5, min=0.01, max=60, doc="how often the controller polls a job")
    max_concurrent_per_host: int = spec(2, min=1, max=100, doc="admission: migrations per host")
    max_concurrent_global: int = spec(10, min=1, max=10_000, doc="admission: migrations in all")
    rate_per_s: float = spec(2.0, min=0.001, max=1e6, doc="admission token bucket refill (migrations/s)")
    burst: int = spec(10, min=1, max=100_000, doc="admission token bucket capacity")
    dirty_rate_pages_s: tuple[float, ...] = spec([500.0, 150_000.0], min=0, max=1e8,
                                                 doc="dirty rates drawn log-uniformly in [low, high]")
    wws_fraction: tuple[float, ...] = spec([0.02, 0.25], min=0.0, max=1.0,
                                           doc="writable working set / memory, uniform in [low, high]")
    nonzero_fraction: float = spec(0.6, min=0.0, max=1.0, doc="share of memory that is not zero pages")
    shutoff_fraction: float = spec(0.1, min=0.0, max=1.0, doc="VMs that are shut off (moved cold)")
    warm_fraction: float = spec(0.1, min=0.0, max=1.0, doc="migrations where warm is requested")
    destination_crash_probability: float = spec(0.05, min=0.0, max=1.0,
                                                doc="chance the destination crashes mid-migration")
    calibration: str | None = spec(None, doc="calibration profile: a built-in name (lab-tcg, lab-md) or a TOML "
                                             "file, relative to the scenario's folder; it replaces "
                                             "stream_cap_mib_s and stop_copy_mib_s")
    stream_cap_mib_s: float = spec(1100.0, min=1, max=1e6, doc="one migration stream's ceiling while the guest runs")
    stop_copy_mib_s: float = spec(1100.0, min=1, max=1e6, doc="copy rate while the guest is paused")

    def __post_init__(self) -> None:
        for name in ("dirty_rate_pages_s", "wws_fraction"):
            value = getattr(self, name)
            if len(value) != 2 or value[0] > value[1]:
                raise ConfigError(f"migration.{name} = {list(value)} must be [low, high] with low <= high")

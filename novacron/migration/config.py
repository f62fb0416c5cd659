"""The ``[migration]`` scenario section: the batch to migrate, Nova's knobs, admission limits."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from novacron.config import ConfigError, spec
from novacron.migration.admission import AdmissionController, AdmissionPolicy, HostLoad
from novacron.migration.controller import ControllerPolicy
from novacron.migration.protocol import MIB
from novacron.scheduler.config import SchedulerConfig

NOVA = ControllerPolicy()
"""Nova's own defaults, owned by ``ControllerPolicy``; the scenario starts from them."""
ADMISSION = AdmissionPolicy()


@dataclass(frozen=True, slots=True, kw_only=True)
class MigrationConfig:
    migrations: int = spec(40, min=0, max=100_000, doc="migrations requested in the batch")
    start_s: float = spec(900.0, min=0, max=1e7, doc="when the batch starts (after VMs are placed)")
    request_window_s: float = spec(300.0, min=0, max=1e7, doc="requests arrive uniformly within this window")
    downtime_ms: float = spec(NOVA.downtime_ms, min=1, max=60_000, doc="Nova live_migration_downtime (final limit)")
    downtime_steps: int = spec(NOVA.downtime_steps, min=1, max=100, doc="Nova live_migration_downtime_steps")
    downtime_delay_s_per_gib: float = spec(NOVA.downtime_delay_s_per_gib, min=0, max=10_000,
                                           doc="Nova live_migration_downtime_delay")
    completion_timeout_s_per_gib: float = spec(NOVA.completion_timeout_s_per_gib, min=0, max=100_000,
                                               doc="Nova live_migration_completion_timeout (0: none)")
    timeout_action: str = spec(NOVA.timeout_action, choices=("abort", "force_complete"),
                               doc="Nova live_migration_timeout_action")
    permit_postcopy: bool = spec(True, doc="Nova live_migration_permit_post_copy")
    permit_auto_converge: bool = spec(True, doc="Nova live_migration_permit_auto_converge")
    xbzrle: bool = spec(False, doc="XBZRLE compression of re-sent pages")
    bandwidth_mib_s: float = spec(0.0, min=0, max=1e6, doc="Nova live_migration_bandwidth (0: unlimited)")
    poll_interval_s: float = spec(NOVA.poll_interval_s, min=0.01, max=60,
                                   doc="how often the controller polls a job")
    max_concurrent_per_host: int = spec(ADMISSION.max_per_host, min=1, max=100,
                                       doc="admission: migrations per host")
    max_concurrent_global: int = spec(ADMISSION.max_global, min=1, max=10_000,
                                       doc="admission: migrations in all")
    rate_per_s: float = spec(ADMISSION.rate_per_s, min=0.001, max=1e6,
                            doc="admission token bucket refill (migrations/s)")
    burst: int = spec(ADMISSION.burst, min=1, max=100_000, doc="admission token bucket capacity")
    dirty_rate_pages_s: tuple[float, ...] = spec([500.0, 150_000.0], min=0, max=1e8,
                                                 doc="dirty rates drawn log-uniformly in [low, high]")
    wws_fraction: tuple[float, ...] = spec([0.02, 0.25], min=0.0, max=1.0,
                                           doc="writable working set / memory, uniform in [low, high]")
    nonzero_fraction: float = spec(0.6, min=0.0, max=1.0, doc="share of memory that is not zero pages")
    shutoff_fraction: float = spec(0.1, min=0.0, max=1.0, doc="VMs that are shut off (moved cold)")
    warm_fraction: float = spec(0.1, min=0.0, max=1.0, doc="migrations where warm is requested")
    destination_crash_probability: float = spec(0.05, min=0.0, max=1.0,
                                                doc="chance a batch migration's destination crashes before the "
                                                    "guest resumes there, whatever the type (at 5-95 % of the "
                                                    "planned time, or at the switch-over if the copy is done "
                                                    "sooner): 1 ends every batch migration that starts a copy "
                                                    "rolled back, or with the VM lost after a post-copy switch; "
                                                    "the rebalancer's moves draw none")
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


def policies(cfg: MigrationConfig) -> tuple[ControllerPolicy, AdmissionPolicy]:
    """The controller's and the admission's policies the ``[migration]`` section asks for."""
    controller = ControllerPolicy(
        downtime_ms=cfg.downtime_ms, downtime_steps=cfg.downtime_steps,
        downtime_delay_s_per_gib=cfg.downtime_delay_s_per_gib,
        completion_timeout_s_per_gib=cfg.completion_timeout_s_per_gib, timeout_action=cfg.timeout_action,
        permit_postcopy=cfg.permit_postcopy, permit_auto_converge=cfg.permit_auto_converge, xbzrle=cfg.xbzrle,
        bandwidth_mib_s=cfg.bandwidth_mib_s or None, poll_interval_s=cfg.poll_interval_s)
    admission = AdmissionPolicy(max_per_host=cfg.max_concurrent_per_host, max_global=cfg.max_concurrent_global,
                                rate_per_s=cfg.rate_per_s, burst=cfg.burst)
    return controller, admission


def build_admission(cfg: MigrationConfig, scheduler: SchedulerConfig) -> AdmissionController:
    """The run's one admission controller, shared by every mover. It keeps the headroom the
    scenario's ``[scheduler]`` asks of every host: placement and moves answer to the same limits."""
    headroom = HostLoad(cpu_pct=scheduler.headroom_cpu_pct, memory_pct=scheduler.headroom_memory_pct,
                        network_pct=scheduler.headroom_network_pct, io_pct=scheduler.headroom_io_pct)
    return AdmissionController(dataclasses.replace(policies(cfg)[1], headroom=headroom))


def bandwidth_budget_bytes_s(cfg: MigrationConfig, admission: AdmissionPolicy, nic_gbps: float) -> float:
    """A NIC's share for one migration that keeps the network headroom with ``max_per_host``
    migrations running (capped by ``bandwidth_mib_s``); the controller sets it as the limit."""
    usable = nic_gbps * 1e9 / 8 * admission.ceiling_pct("network") / 100.0 / admission.max_per_host
    return min(usable, cfg.bandwidth_mib_s * MIB) if cfg.bandwidth_mib_s else usable

"""Scenarios: what a run simulates, read from TOML and validated before anything runs.

A scenario is a tree of frozen dataclass sections (see ``config.py`` for the rules). Each
capability owns its section (``[cluster]``, ``[workload]``, ...); ``Scenario`` composes them.
``novacron run`` with no argument runs the built-in ``default`` scenario shipped in
``novacron/scenarios/default.toml``.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from novacron.cache.config import CacheConfig
from novacron.capacity_config import TRACE_FORMATS, FaultsConfig
from novacron.config import ConfigError, parse_section, section, spec
from novacron.migration.config import MigrationConfig
from novacron.raft.scenario import RaftSection
from novacron.scheduler.config import SchedulerConfig


@dataclass(frozen=True, slots=True, kw_only=True)
class ClusterConfig:
    hosts: int = spec(10, min=1, max=5000, doc="number of hypervisor hosts")
    host_cpu_cores: int = spec(32, min=1, max=1024, doc="physical cores per host")
    host_memory_gib: float = spec(256.0, min=1, max=65536, doc="memory per host")
    host_network_gbps: float = spec(10.0, min=0.1, max=800, doc="NIC bandwidth per host")
    host_disk_iops: float = spec(20000.0, min=1, max=1e7, doc="disk I/O capacity per host")
    cpu_overcommit: float = spec(1.0, min=0.1, max=16, doc="vCPUs allowed per physical core")
    hosts_per_rack: int = spec(20, min=1, max=1000, doc="hosts in one rack")
    racks_per_zone: int = spec(10, min=1, max=10000, doc="racks in one availability zone (failure domain)")
    zones_per_datacenter: int = spec(3, min=1, max=100, doc="availability zones in one datacenter")


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkloadConfig:
    vms: int = spec(150, min=0, max=200_000,
                    doc="VMs requested over the run (with a trace: the most taken from it, 0 = all)")
    vm_cpu_cores: tuple[int, ...] = spec([1, 2, 4, 8], min=1, max=256, doc="vCPU sizes, drawn uniformly")
    vm_memory_gib: tuple[float, ...] = spec([2.0, 4.0, 8.0, 16.0], min=0.125, max=4096,
                                            doc="memory sizes, paired with vm_cpu_cores by index")
    arrival_window_s: float = spec(600.0, min=0, max=1e7, doc="VM requests arrive uniformly within this window")
    mean_cpu_utilisation: float = spec(0.5, min=0.0, max=1.0, doc="mean fraction of its vCPUs a VM uses")
    demand_update_s: float = spec(300.0, min=1, max=86400, doc="interval between demand samples")
    lifetime_mean_s: float | None = spec(None, min=1, max=1e9,
                                         doc="mean VM lifetime (heavy-tailed, Lomax); nothing = VMs never leave")
    lifetime_shape: float = spec(1.5, min=1.05, max=100,
                                 doc="Lomax (Pareto II) shape of lifetimes; lower = heavier tail")
    diurnal_amplitude: float = spec(0.0, min=0.0, max=1.0, doc="relative day/night swing of each VM's CPU demand")
    burst_probability: float = spec(0.0, min=0.0, max=1.0, doc="chance per demand update that a VM bursts")
    burst_factor: float = spec(2.0, min=1.0, max=100, doc="CPU demand multiplier during a burst")
    network_mbps_per_vcpu: float = spec(40.0, min=0.0, max=1e6,
                                        doc="network traffic of one fully busy vCPU of an average VM")
    disk_iops_per_vcpu: float = spec(150.0, min=0.0, max=1e7, doc="disk I/O of one fully busy vCPU of an average VM")
    trace_format: str | None = spec(None, choices=TRACE_FORMATS,
                                    doc="use a public trace as the workload instead of the synthetic generator")
    trace_path: str | None = spec(None, doc="the trace file or directory (relative to the working directory)")
    trace_readings_path: str | None = spec(
        None, doc="Azure vm_cpu_readings file(s) (a file or a directory): each VM's measured CPU every 5 minutes "
                  "replaces its synthetic demand")

    def __post_init__(self) -> None:
        if len(self.vm_cpu_cores) != len(self.vm_memory_gib):
            raise ConfigError(
                f"workload.vm_cpu_cores has {len(self.vm_cpu_cores)} sizes but workload.vm_memory_gib "
                f"has {len(self.vm_memory_gib)}; allowed: lists of equal length (one VM flavour per index)"
            )
        if (self.trace_format is None) != (self.trace_path is None):
            raise ConfigError("workload.trace_format and workload.trace_path go together; "
                              "allowed: both set (trace workload) or neither (synthetic workload)")


@dataclass(frozen=True, slots=True, kw_only=True)
class Scenario:
    name: str = spec("default", doc="name used for the run directory and the report")
    seed: int = spec(7, min=0, max=2**63 - 1, doc="run seed when --seed is not given")
    duration_s: float = spec(3600.0, min=1, max=366 * 86400, doc="simulated time")
    cluster: ClusterConfig = section(ClusterConfig)
    workload: WorkloadConfig = section(WorkloadConfig)
    cache: CacheConfig = section(CacheConfig)
    scheduler: SchedulerConfig = section(SchedulerConfig)
    faults: FaultsConfig = section(FaultsConfig)
    migration: MigrationConfig = section(MigrationConfig)
    raft: RaftSection = section(RaftSection)


def parse_scenario(data: dict[str, Any], *, origin: str) -> Scenario:
    return parse_section(Scenario, data, origin=origin)


def load_scenario(path: str | Path) -> Scenario:
    path = Path(path)
    try:
        text = path.read_text()
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the scenario ({exc.strerror})") from None
    return with_calibration_resolved(loads_scenario(text, origin=str(path)), path.parent)


def with_calibration_resolved(scenario: Scenario, folder: Path | None) -> Scenario:
    """Resolve ``[migration] calibration`` against the scenario's folder and check the profile
    loads, so a bad profile is a one-line error before anything runs."""
    if not scenario.migration.calibration:
        return scenario
    from novacron.app.profiles import load_profile, resolve_profile_path  # file I/O: the application layer

    resolved = resolve_profile_path(scenario.migration.calibration, folder)
    load_profile(resolved)
    return dataclasses.replace(scenario, migration=dataclasses.replace(scenario.migration, calibration=resolved))


def loads_scenario(text: str, *, origin: str) -> Scenario:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{origin}: not valid TOML: {exc}") from None
    return parse_scenario(data, origin=origin)


def builtin_scenario_names() -> list[str]:
    return sorted(p.name.removesuffix(".toml") for p in resources.files("novacron.scenarios").iterdir()
                  if p.name.endswith(".toml"))


def builtin_scenario_text(name: str) -> str:
    return resources.files("novacron.scenarios").joinpath(f"{name}.toml").read_text()


def resolve_scenario(name_or_path: str | None) -> tuple[Scenario, str]:
    """A path to a TOML file, or the name of a built-in scenario; ``None`` means ``default``."""
    if name_or_path is None:
        name_or_path = "default"
    candidate = Path(name_or_path)
    if candidate.suffix == ".toml" or candidate.exists():
        return load_scenario(candidate), candidate.read_text()
    if name_or_path in builtin_scenario_names():
        text = builtin_scenario_text(name_or_path)
        return with_calibration_resolved(loads_scenario(text, origin=f"<built-in {name_or_path}>"), None), text
    raise ConfigError(f"{name_or_path}: no such scenario file or built-in scenario; built-in: "
                      f"{', '.join(builtin_scenario_names())}")

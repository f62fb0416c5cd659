"""Scenarios: what a run simulates, read from TOML and validated before anything runs.

A scenario is a tree of frozen dataclass sections (see ``config.py`` for the rules). Each
capability owns its section (``[cluster]``, ``[workload]``, ...); ``Scenario`` composes them.
``novacron run`` with no argument runs the built-in ``default`` scenario shipped in
``novacron/scenarios/default.toml``.

``[targets]`` is the user's part of the target catalogue (``novacron.slo``): each key is a metric
name (``novacron targets`` lists them), each value a threshold or a table of ``comparator``,
``threshold``, ``unit``, ``role`` (``required`` / ``reference``) and ``name``. Paths in a scenario
file (``workload.trace_path``, ``workload.trace_readings_path``) are relative to the file's folder;
a scenario file without ``name`` is named after the file.
"""

from __future__ import annotations

import dataclasses
import re
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from novacron.bft.scenario import ControlSection
from novacron.cache.config import CacheConfig
from novacron.capacity_config import TRACE_FORMATS, FaultsConfig
from novacron.cluster.autoscaling import AutoscaleConfig
from novacron.cluster.contention import CONTENTION_POLICIES, POWER_TABLE_POINTS, linear_power_table_w
from novacron.cluster.kinds import KINDS
from novacron.cluster.memory_pool_config import MemoryPoolConfig
from novacron.cluster.pools_config import PoolsConfig
from novacron.cluster.predictive_migration import PredictionConfig
from novacron.config import ConfigError, parse_section, section, spec
from novacron.edge.config import EdgeConfig
from novacron.federation.config import FederationSection
from novacron.metrics import METRICS, nearest_metric
from novacron.migration.config import MigrationConfig
from novacron.migration.kinds_config import KindMigrationConfig
from novacron.raft.scenario import RaftSection
from novacron.runtime_config import RuntimeSection
from novacron.scheduler.config import SchedulerConfig
from novacron.scheduler.gpu_config import GpuConfig
from novacron.seeding import MAX_SEED
from novacron.slo import CATALOGUE, Comparator, Role, Target, TargetOverride, apply_overrides
from novacron.storage.config import StorageConfig


@dataclass(frozen=True, slots=True, kw_only=True)
class ClusterConfig:
    hosts: int = spec(10, min=1, max=20_000, doc="number of hypervisor hosts")
    host_cpu_cores: int = spec(32, min=1, max=1024, doc="physical cores per host")
    host_memory_gib: float = spec(256.0, min=1, max=65536, doc="memory per host")
    host_network_gbps: float = spec(10.0, min=0.1, max=800, doc="NIC bandwidth per host")
    host_disk_iops: float = spec(20000.0, min=1, max=1e7, doc="disk I/O capacity per host")
    cpu_overcommit: float = spec(1.0, min=0.1, max=16, doc="vCPUs allowed per physical core")
    hosts_per_rack: int = spec(20, min=1, max=1000, doc="hosts in one rack")
    racks_per_zone: int = spec(10, min=1, max=10000, doc="racks in one availability zone (failure domain)")
    zones_per_datacenter: int = spec(3, min=1, max=100, doc="availability zones in one datacenter")
    contention: str = spec("proportional", choices=CONTENTION_POLICIES,
                           doc="how an overloaded host shares its CPU: proportional to demand, or by "
                               "shares (weighted by vCPUs, max-min fair)")
    power_idle_w: float = spec(175.0, min=0.0, max=1e5, doc="host power at 0 % CPU (linear power model)")
    power_peak_w: float = spec(250.0, min=0.0, max=1e5, doc="host power at 100 % CPU (linear power model)")
    power_table_w: tuple[float, ...] = spec([], min=0.0, max=1e5,
                                            doc="SPECpower-style watts at 0, 10, ..., 100 % CPU (11 values); "
                                                "empty = the linear model")
    pue: float = spec(1.5, min=1.0, max=10.0, doc="power usage effectiveness: facility energy / IT energy")

    def __post_init__(self) -> None:
        if self.power_table_w and len(self.power_table_w) != POWER_TABLE_POINTS:
            raise ConfigError(f"cluster.power_table_w has {len(self.power_table_w)} values; allowed: "
                              f"{POWER_TABLE_POINTS} watts (at 0, 10, ..., 100 % CPU) or [] for the linear model")
        if self.power_peak_w < self.power_idle_w:
            raise ConfigError(f"cluster.power_peak_w = {self.power_peak_w:g} is below cluster.power_idle_w = "
                              f"{self.power_idle_w:g}; allowed: peak >= idle")

    def power_table(self) -> tuple[float, ...]:
        """Watts at 0, 10, ..., 100 % CPU: the table if given, else the linear model."""
        return self.power_table_w or linear_power_table_w(self.power_idle_w, self.power_peak_w)


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkloadConfig:
    vms: int = spec(150, min=0, max=1_000_000,
                    doc="VMs requested over the run (with a trace: the most taken from it, 0 = all)")
    vm_cpu_cores: tuple[int, ...] = spec([1, 2, 4, 8], min=1, max=256, doc="vCPU sizes, drawn uniformly")
    vm_memory_gib: tuple[float, ...] = spec([2.0, 4.0, 8.0, 16.0], min=0.125, max=4096,
                                            doc="memory sizes, paired with vm_cpu_cores by index")
    arrival_window_s: float = spec(600.0, min=0, max=1e7, doc="VM requests arrive uniformly within this window")
    arrival_diurnal_amplitude: float = spec(0.0, min=0.0, max=1.0,
                                            doc="day/night swing of the arrival rate (0: uniform arrivals)")
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
    trace_path: str | None = spec(None, doc="the trace file or directory (relative to the scenario file's folder)")
    trace_readings_path: str | None = spec(
        None, doc="Azure vm_cpu_readings file(s) (a file or a directory): each VM's measured CPU every 5 minutes "
                  "replaces its synthetic demand")
    kinds: tuple[str, ...] = spec([], doc="workload kinds drawn per VM by a stable hash of its id (vm, container, "
                                          "microvm, gpu_vm; a GPU VM is gpu_vm): each reserves its memory plus "
                                          "the kind's overhead and runs after its start time; [] = no kinds")

    def __post_init__(self) -> None:
        if not self.vm_cpu_cores or not self.vm_memory_gib:
            raise ConfigError("workload.vm_cpu_cores and workload.vm_memory_gib must not be empty; "
                              "allowed: lists of equal length with at least one VM flavour")
        if len(self.vm_cpu_cores) != len(self.vm_memory_gib):
            raise ConfigError(
                f"workload.vm_cpu_cores has {len(self.vm_cpu_cores)} sizes but workload.vm_memory_gib "
                f"has {len(self.vm_memory_gib)}; allowed: lists of equal length (one VM flavour per index)"
            )
        unknown = [k for k in self.kinds if k not in KINDS]
        if unknown:
            raise ConfigError(f"workload.kinds: {unknown[0]!r} is not a workload kind; allowed: {', '.join(KINDS)}")
        if (self.trace_format is None) != (self.trace_path is None):
            raise ConfigError("workload.trace_format and workload.trace_path go together; "
                              "allowed: both set (trace workload) or neither (synthetic workload)")


@dataclass(frozen=True, slots=True, kw_only=True)
class Scenario:
    name: str = spec("default", doc="name used for the run directory and the report")
    seed: int = spec(7, min=0, max=MAX_SEED, doc="run seed when --seed is not given")
    duration_s: float = spec(3600.0, min=1, max=366 * 86400, doc="simulated time")
    cluster: ClusterConfig = section(ClusterConfig)
    workload: WorkloadConfig = section(WorkloadConfig)
    cache: CacheConfig = section(CacheConfig)
    scheduler: SchedulerConfig = section(SchedulerConfig)
    faults: FaultsConfig = section(FaultsConfig)
    migration: MigrationConfig = section(MigrationConfig)
    raft: RaftSection = section(RaftSection)
    control: ControlSection = section(ControlSection)
    runtime: RuntimeSection = section(RuntimeSection)
    storage: StorageConfig = section(StorageConfig)
    federation: FederationSection = section(FederationSection)
    autoscale: AutoscaleConfig = section(AutoscaleConfig)
    prediction: PredictionConfig = section(PredictionConfig)
    edge: EdgeConfig = section(EdgeConfig)
    pools: PoolsConfig = section(PoolsConfig)
    gpus: GpuConfig = section(GpuConfig)
    kind_migration: KindMigrationConfig = section(KindMigrationConfig)
    memory_pool: MemoryPoolConfig = section(MemoryPoolConfig)
    targets: tuple[TargetOverride, ...] = dataclasses.field(
        default=(), metadata={"doc": "your targets: metric = threshold or { comparator, threshold, unit, role, name } "
                                     "(see 'novacron targets')", "table": True})

    def __post_init__(self) -> None:
        # The name becomes a folder (runs/<name>-seed<N>, sweeps/<name>): it must stay one folder there.
        if not self.name.strip() or self.name in (".", "..") or any(c in self.name for c in '/\\') \
                or not self.name.isprintable():
            raise ConfigError(f"name = {self.name!r} is not allowed; allowed: a non-empty name without '/', '\\' "
                              "or control characters, not '.' or '..' (it names the run directory)")


PATH_KEYS = ("trace_path", "trace_readings_path")
"""``[workload]`` keys holding paths, resolved against the scenario file's folder."""


def parse_scenario(data: dict[str, Any], *, origin: str, base_dir: str | Path | None = None) -> Scenario:
    """Validate TOML data; relative paths resolve against ``base_dir`` (the scenario file's folder)."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{origin}: a scenario must be a TOML table, got {data!r}")
    data = dict(data)
    overrides = parse_targets(data.pop("targets", {}), origin=origin)
    if base_dir is not None:
        data = _resolved_paths(data, Path(base_dir))
    scenario = parse_section(Scenario, data, origin=origin)
    _check_storage_xdc(scenario, origin)
    _check_pools(scenario, origin)
    _check_needs_scheduler(scenario, origin)
    if error := fault_managers_error(scenario, injected=False):
        raise ConfigError(f"{origin}: {error}")
    try:
        scenario.memory_pool.check(scenario.cluster.host_memory_gib)
    except ConfigError as exc:
        raise ConfigError(f"{origin}: {exc}") from None
    return dataclasses.replace(scenario, targets=overrides) if overrides else scenario


def _check_pools(scenario: Scenario, origin: str) -> None:
    """Pools must be a tree whose reservations the cluster can hold (cores and memory of all hosts)."""
    if not scenario.pools.enabled:
        return
    c = scenario.cluster
    try:
        scenario.pools.tree(cluster_cores=float(c.hosts * c.host_cpu_cores),
                            cluster_memory_gib=c.hosts * c.host_memory_gib)
    except ConfigError as exc:
        raise ConfigError(f"{origin}: {exc}") from None


def _check_needs_scheduler(scenario: Scenario, origin: str) -> None:
    """Autoscaling and predictive migration act through the scheduler: first fit has none."""
    if scenario.scheduler.placer == "scheduler":
        return
    if scenario.autoscale.policy != "off":
        raise ConfigError(f"{origin}: autoscale.policy = {scenario.autoscale.policy!r} needs scheduler.placer = "
                          "'scheduler'; allowed with placer 'first_fit': autoscale.policy = 'off'")
    if scenario.prediction.migration:
        raise ConfigError(f"{origin}: prediction.migration = true needs scheduler.placer = 'scheduler'; "
                          "allowed with placer 'first_fit': prediction.migration = false")


def fault_managers_error(scenario: Scenario, *, injected: bool) -> str | None:
    """Why the faults that name managers (``manager-1`` .. ``manager-<faults.managers>``) cannot hit
    the Raft managers of the control plane, or None: each names the manager of that number, never
    one wrapped around. Only the Raft control plane follows them, and only the fault model's
    manager crashes name managers in a run -- or, with ``injected`` (``sim.fault_run``), the
    flapping managers and their heartbeats."""
    faults, raft = scenario.faults, scenario.raft
    named = injected or (faults.enabled and faults.manager_mtbf_h is not None)
    if raft.control_plane != "raft" or not named or faults.managers <= raft.managers:
        return None
    return (f"faults.managers = {faults.managers} is out of range: manager faults name managers 1 to "
            f"{faults.managers} and the Raft control plane has raft.managers = {raft.managers}; "
            f"allowed: 1 to {raft.managers}")


def _check_storage_xdc(scenario: Scenario, origin: str) -> None:
    """Cross-datacenter replication needs a federation of at least two datacenters to span."""
    storage, federation = scenario.storage, scenario.federation
    if not storage.xdc_replication:
        return
    if not federation.enabled or len(federation.datacenters) < 2:
        raise ConfigError(f"{origin}: storage.xdc_replication = {storage.xdc_replication!r} needs [federation] "
                          "enabled with at least two datacenters; allowed: '' without one")
    for key in ("xdc_primary_datacenter", "xdc_replica_datacenter"):
        if error := federation.datacenter_choice_error(f"storage.{key}", getattr(storage, key)):
            raise ConfigError(f"{origin}: {error}")
    primary = storage.xdc_primary_datacenter or federation.outage_datacenter or federation.datacenters[0]
    if storage.xdc_replica_datacenter == primary:
        raise ConfigError(f"{origin}: storage.xdc_replica_datacenter = {primary!r} is the primary datacenter; "
                          "allowed: another datacenter or ''")


def _resolved_paths(data: dict[str, Any], base_dir: Path) -> dict[str, Any]:
    workload = data.get("workload")
    if not isinstance(workload, dict):
        return data
    workload = dict(workload)
    for key in PATH_KEYS:
        value = workload.get(key)
        if isinstance(value, str) and value and not Path(value).is_absolute():
            workload[key] = str(base_dir / value)
    return {**data, "workload": workload}


def load_scenario(path: str | Path) -> Scenario:
    path = Path(path)
    scenario = loads_scenario(read_scenario_text(path), origin=str(path), base_dir=path.resolve().parent,
                              default_name=path.stem)
    return with_calibration_resolved(scenario, path.parent)


def read_scenario_text(path: Path) -> str:
    from novacron.app.textfiles import read_utf8_text  # file I/O: the application layer

    try:
        return read_utf8_text(path, what="a scenario")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read the scenario ({exc.strerror or exc})") from None


def with_calibration_resolved(scenario: Scenario, folder: Path | None) -> Scenario:
    """Resolve ``[migration] calibration`` against the scenario's folder and check the profile
    loads, so a bad profile is a one-line error before anything runs."""
    if not scenario.migration.calibration:
        return scenario
    from novacron.app.profiles import load_profile, resolve_profile_path  # file I/O: the application layer

    resolved = resolve_profile_path(scenario.migration.calibration, folder)
    load_profile(resolved)
    return dataclasses.replace(scenario, migration=dataclasses.replace(scenario.migration, calibration=resolved))


def loads_scenario(text: str, *, origin: str, base_dir: str | Path | None = None,
                   default_name: str | None = None) -> Scenario:
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{origin}: not valid TOML: {exc}") from None
    if default_name is not None and "name" not in data:
        data["name"] = default_name
    return parse_scenario(data, origin=origin, base_dir=base_dir)


# --- [targets] -----------------------------------------------------------------------------------

_TARGET_KEYS = ("comparator", "threshold", "unit", "role", "name")


def parse_targets(data: Any, *, origin: str) -> tuple[TargetOverride, ...]:
    """A scenario's ``[targets]`` table as overrides, each checked (one-line ``ConfigError``)."""
    if not isinstance(data, Mapping):
        raise ConfigError(f"{origin}: targets must be a table of metric = threshold, got {data!r}")
    return tuple(_parse_target(origin, metric, raw) for metric, raw in _flatten(data, ""))


def _flatten(data: Mapping[str, Any], prefix: str) -> list[tuple[str, Any]]:
    """Unquoted dotted keys (``cluster.peak_cpu_pct = 70``) arrive nested; a target is a leaf."""
    leaves: list[tuple[str, Any]] = []
    for key, value in data.items():
        name = f"{prefix}{key}"
        is_table = isinstance(value, Mapping) and bool(value)
        if is_table and name not in METRICS and not any(k in value for k in _TARGET_KEYS):
            leaves.extend(_flatten(value, f"{name}."))
        else:
            leaves.append((name, value))
    return leaves


def _parse_target(origin: str, metric: str, raw: Any) -> TargetOverride:
    where = f"{origin}: targets.{metric}"
    if metric not in METRICS:
        near = nearest_metric(metric)
        hint = f"did you mean '{near}'? " if near else ""
        raise ConfigError(f"{where}: unknown metric; {hint}'novacron targets' lists every metric name")
    spec_ = raw if isinstance(raw, Mapping) else {"threshold": raw}
    unknown = [k for k in spec_ if k not in _TARGET_KEYS]
    if unknown:
        raise ConfigError(f"{where}: unknown key '{unknown[0]}'; allowed: {', '.join(_TARGET_KEYS)}")
    override = TargetOverride(metric=metric, threshold=_threshold(where, spec_.get("threshold")),
                              comparator=_choice(where, "comparator", spec_.get("comparator"),
                                                 [c.value for c in Comparator]),
                              role=_choice(where, "role", spec_.get("role"), [r.value for r in Role]),
                              unit=_text(where, "unit", spec_.get("unit")),
                              name=_text(where, "name", spec_.get("name")))
    try:
        apply_overrides(CATALOGUE, [override])
    except ValueError as exc:
        raise ConfigError(f"{origin}: {exc}") from None
    return override


def _threshold(where: str, raw: Any) -> float | tuple[float, float] | None:
    def number(x: Any) -> bool:
        return isinstance(x, (int, float)) and not isinstance(x, bool) and x == x and abs(x) != float("inf")

    if raw is None or number(raw):
        return None if raw is None else float(raw)
    if isinstance(raw, list) and len(raw) == 2 and all(number(x) for x in raw) and raw[0] <= raw[1]:
        return float(raw[0]), float(raw[1])
    raise ConfigError(f"{where}: threshold = {raw!r} is not allowed; allowed: a finite number, "
                      "or [low, high] with low <= high")


def _choice(where: str, key: str, raw: Any, allowed: list[str]) -> str | None:
    if raw is None or raw in allowed:
        return raw  # type: ignore[no-any-return]
    raise ConfigError(f"{where}: {key} = {raw!r} is not allowed; allowed: one of {', '.join(map(repr, allowed))}")


def _text(where: str, key: str, raw: Any) -> str | None:
    if raw is None or isinstance(raw, str):
        return raw
    raise ConfigError(f"{where}: {key} = {raw!r} has the wrong type; allowed: a string")


def capabilities(scenario: Scenario) -> frozenset[str]:
    """What a scenario exercises: a catalogue target applies only if its capability is here."""
    m, r = scenario.migration, scenario.raft
    # The cluster's own targets (VMs rejected, utilisation, uptime) apply to every scenario: a
    # cluster that carries no VM has not measured them, which is not a pass.
    caps = {"cluster", "user"}
    if scenario.scheduler.placer == "scheduler":
        caps.add("scheduler")
    if m.migrations > 0:
        caps.add("migration")
        if m.warm_fraction > 0:
            caps.add("warm-migration")
    if scenario.cache.enabled:
        caps.add("cache")
    if scenario.storage.enabled:
        caps.add("storage")
    if scenario.storage.xdc_replication:
        caps.add("storage-xdc")
        if scenario.storage.xdc_write_mib_s > 0:  # no write, no write latency: not a pass, not applicable
            caps.add("storage-xdc-writes")
    if r.control_plane == "raft":
        caps.add("raft-control-plane")  # requests wait for a commit, so they can wait for ever
    if r.control_plane == "raft" or r.simulate_s > 0:
        caps.add("raft")
        if r.leader_crash_at_s > 0:
            caps.add("raft-crash")
        if r.partition_at_s > 0:
            caps.add("raft-partition")
    if scenario.federation.enabled:
        caps.add("federation")
        if scenario.federation.outage_datacenter and scenario.federation.outage_at_s > 0:
            caps.add("federation-outage")
    if scenario.kind_migration.migrations > 0:
        caps.update(f"kind-migration.{path}" for path in scenario.kind_migration.paths)
    if scenario.gpus.enabled:
        caps.add("gpu")
    if scenario.pools.enabled:
        caps.add("pools")
    if scenario.memory_pool.enabled:
        caps.add("memory-pool")
    if scenario.edge.enabled:
        caps.update(f"edge.{name}" for name, _ in scenario.edge.services())
    return frozenset(caps)


def scenario_targets(scenario: Scenario) -> tuple[tuple[Target, ...], tuple[str, ...]]:
    """The targets a run of this scenario is checked against, and the catalogue ones that do not apply."""
    caps = capabilities(scenario)
    targets = apply_overrides(CATALOGUE, scenario.targets)
    return (tuple(t for t in targets if t.capability in caps),
            tuple(t.name for t in targets if t.capability not in caps))


def builtin_scenario_names() -> list[str]:
    return sorted(p.name.removesuffix(".toml") for p in resources.files("novacron.scenarios").iterdir()
                  if p.name.endswith(".toml"))


def builtin_scenario_text(name: str) -> str:
    return resources.files("novacron.scenarios").joinpath(f"{name}.toml").read_text()


def resolve_scenario(name_or_path: str | None, *, duration_s: float | None = None) -> tuple[Scenario, str]:
    """A path to a TOML file, or the name of a built-in scenario; ``None`` means ``default``.
    ``duration_s`` overrides the scenario's ``duration_s`` (in the returned text too, so the run
    directory's ``scenario.toml`` is what ran)."""
    if name_or_path is None:
        name_or_path = "default"
    candidate = Path(name_or_path)
    if candidate.suffix == ".toml" or candidate.exists():
        if duration_s is None:
            return load_scenario(candidate), read_scenario_text(candidate)
        text = with_duration(read_scenario_text(candidate), duration_s)
        scenario = loads_scenario(text, origin=str(candidate), base_dir=candidate.resolve().parent,
                                  default_name=candidate.stem)
        return with_calibration_resolved(scenario, candidate.parent), text
    if name_or_path in builtin_scenario_names():
        text = builtin_scenario_text(name_or_path)
        if duration_s is not None:
            text = with_duration(text, duration_s)
        return with_calibration_resolved(loads_scenario(text, origin=f"<built-in {name_or_path}>"), None), text
    raise ConfigError(f"{name_or_path}: no such scenario file or built-in scenario; built-in: "
                      f"{', '.join(builtin_scenario_names())}")


def with_duration(text: str, duration_s: float) -> str:
    """The scenario text with its top-level ``duration_s`` set (replaced, or added first)."""
    line = f"duration_s = {float(duration_s)!r}  # set by --duration"
    header = re.search(r"^\s*\[", text, flags=re.MULTILINE)
    top_end = header.start() if header else len(text)
    found = re.search(r"^duration_s\s*=.*$", text[:top_end], flags=re.MULTILINE)
    if found is None:
        return f"{line}\n{text}"
    return text[:found.start()] + line + text[found.end():]

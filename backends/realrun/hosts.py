"""The real runtime's cluster: libvirt hosts, the lab guests they run, and what they measure.

Theory of operation
-------------------
Each host is a ``LibvirtHypervisor`` (the core's ``Hypervisor`` port) named like a simulated
host (``host-0000``...), its capacity read from libvirt (``virNodeGetInfo``: cores, memory) and
recorded as ``HostAdded``; NIC speed and disk IOPS are not in libvirt's node info, so they come
from the scenario's ``[cluster]``. A placed VM becomes a real guest: the lab's tiny kernel and
dirtier (``backends.lab.guest``), sized as the scenario's flavour and holding its drawn workload
(``LabWorkload``: working set in MiB, rate in pages/s, and a static fill so its non-zero memory
is what was drawn), defined and started on the chosen host.

``sample`` is the real counterpart of the cluster model's demand update: per host, the CPU its
guests burned since the last sample (the domains' CPU time, from ``virDomainGetInfo``) over the
host's cores and the interval, and the memory its guests were given over the host's memory;
one ``HostUtilisationSampled`` per host and one ``ClusterUtilisationSampled``. Real guests ask
for no more than they get, so demand equals what was served and nothing waits (CPU ready 0).
Everything the run defined is destroyed and undefined at the end, also after a failure.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field

import libvirt

from backends.lab.guest import LabWorkload, domain_xml
from backends.lab.health import check_migrated_guest, wait_guest_ready
from backends.lab.lab import LabInfo
from backends.libvirt_hypervisor import HostDirectory, LibvirtHypervisor
from novacron.cluster.events import ClusterUtilisationSampled, HostAdded, HostUtilisationSampled
from novacron.config import ConfigError
from novacron.events import Recorder
from novacron.guest_health import GuestHealth
from novacron.scenario import ClusterConfig

LAB_MIGRATION_URI = "tcp://127.0.0.1"
NS_PER_S = 1e9


@dataclass
class RealHost:
    hypervisor: LibvirtHypervisor
    cpu_cores: int
    memory_gib: float
    lab_index: int | None
    """The lab host behind it (its serial consoles are readable here), or None for a remote host."""
    guests: dict[str, float] = field(default_factory=dict)
    """vm id -> memory GiB of the guests running here."""
    cpu_time_ns: dict[str, int] = field(default_factory=dict)

    @property
    def host_id(self) -> str:
        return self.hypervisor.host_id()


class RealHosts:
    def __init__(self, uris: list[str], lab: LabInfo, recorder: Recorder, cluster: ClusterConfig, *,
                 lab_uris: bool) -> None:
        self.lab, self.recorder, self.cluster = lab, recorder, cluster
        self.directory = HostDirectory()
        self.hosts: list[RealHost] = []
        self.defined: set[str] = set()
        for i, uri in enumerate(uris):
            try:
                hv = LibvirtHypervisor(f"host-{i:04d}", uri, self.directory,
                                       migration_uri=LAB_MIGRATION_URI if lab_uris else None)
            except libvirt.libvirtError as exc:
                self.directory.close()
                raise ConfigError(f"host {uri}: cannot connect ({exc}); allowed: a reachable libvirt URI") from None
            _model, memory_mib, cpus, *_ = hv.conn.getInfo()
            self.hosts.append(RealHost(hv, int(cpus), memory_mib / 1024.0, i if lab_uris else None))
        self._last_sample_s: float | None = None

    def record_inventory(self) -> None:
        for i, host in enumerate(self.hosts):
            self.recorder.emit(HostAdded, source="inventory", host_id=host.host_id,
                               rack=f"rack-{i // self.cluster.hosts_per_rack:03d}", cpu_cores=host.cpu_cores,
                               memory_gib=host.memory_gib, network_gbps=self.cluster.host_network_gbps,
                               disk_iops=self.cluster.host_disk_iops)

    def by_id(self, host_id: str) -> RealHost:
        return next(h for h in self.hosts if h.host_id == host_id)

    def boot(self, vm_id: str, host_id: str, workload: LabWorkload) -> None:
        """Define and start the guest on the host (returns at once; ``wait_ready`` waits for it)."""
        host = self.by_id(host_id)
        memory_mib = workload.memory_mib
        spec = self.lab.guest(vm_id, memory_mib=memory_mib, dirty_mib=workload.dirty_mib,
                              dirty_rate_pages_s=workload.dirty_rate_pages_s, fill_mib=workload.fill_mib)
        with contextlib.suppress(KeyError):
            host.hypervisor.undefine_vm(vm_id)  # a leftover of an interrupted run
        self.defined.add(vm_id)
        host.hypervisor.define_vm(domain_xml(spec, self.lab.image))
        host.hypervisor.start_vm(vm_id)
        host.guests[vm_id] = memory_mib / 1024.0

    def wait_ready(self, vm_id: str, host_id: str, timeout_s: float = 60.0) -> bool:
        """The guest's dirtier printed an alive marker (lab hosts only; a remote guest is trusted)."""
        index = self.by_id(host_id).lab_index
        if index is None:
            return True
        return wait_guest_ready(self.lab.hosts[index], vm_id, min_alive=1, timeout_s=timeout_s)

    def judge(self, vm_id: str, from_host_id: str, to_host_id: str) -> GuestHealth | None:
        """The moved guest's health from its serial consoles now (None: a remote host's console);
        ``healthy`` false with few alive markers may just mean "not yet": the caller asks again."""
        source, destination = self.by_id(from_host_id).lab_index, self.by_id(to_host_id).lab_index
        if source is None or destination is None:
            return None
        return check_migrated_guest(self.lab.hosts[source], self.lab.hosts[destination], vm_id, timeout_s=0.0)

    def moved(self, vm_id: str, from_host_id: str, to_host_id: str) -> None:
        source, destination = self.by_id(from_host_id), self.by_id(to_host_id)
        destination.guests[vm_id] = source.guests.pop(vm_id)
        source.cpu_time_ns.pop(vm_id, None)

    def sample(self, now_s: float) -> list[tuple[str, float, float]]:
        """Record one utilisation sample per host and for the cluster; returns (host, cpu %, memory %)."""
        interval_s = None if self._last_sample_s is None else now_s - self._last_sample_s
        self._last_sample_s = now_s
        rows = []
        used_cores = total_cores = used_gib = total_gib = 0.0
        for host in self.hosts:
            burned_s = self._cpu_burned_s(host)
            cpu_pct = 0.0 if not interval_s else min(100.0, 100.0 * burned_s / (interval_s * host.cpu_cores))
            memory_pct = 100.0 * sum(host.guests.values()) / host.memory_gib
            self.recorder.emit(HostUtilisationSampled, source=host.host_id, host_id=host.host_id, cpu_pct=cpu_pct,
                               memory_pct=memory_pct, vms_running=len(host.guests), cpu_demand_pct=cpu_pct,
                               cpu_ready_pct=0.0, cpu_ready_max_pct=0.0, powered_on=True)
            rows.append((host.host_id, cpu_pct, memory_pct))
            used_cores += cpu_pct / 100.0 * host.cpu_cores
            total_cores += host.cpu_cores
            used_gib += sum(host.guests.values())
            total_gib += host.memory_gib
        if interval_s:
            cpu_pct = 100.0 * used_cores / total_cores
            self.recorder.emit(ClusterUtilisationSampled, source="inventory", cpu_pct=cpu_pct,
                               memory_pct=100.0 * used_gib / total_gib, hosts_up=len(self.hosts),
                               vms_running=sum(len(h.guests) for h in self.hosts), cpu_demand_pct=cpu_pct,
                               cpu_demand_cores=used_cores, cpu_unserved_cores=0.0)
        return rows

    def _cpu_burned_s(self, host: RealHost) -> float:
        """CPU seconds the host's guests used since the last sample (a guest new here counts from now)."""
        burned_ns = 0
        for vm_id in list(host.guests):
            try:
                cpu_time_ns = int(host.hypervisor.domain(vm_id).info()[4])
            except (KeyError, libvirt.libvirtError):
                continue  # migrating away right now: counted on its next host
            previous = host.cpu_time_ns.get(vm_id)
            host.cpu_time_ns[vm_id] = cpu_time_ns
            if previous is not None and cpu_time_ns >= previous:
                burned_ns += cpu_time_ns - previous
        return burned_ns / NS_PER_S

    def close(self) -> None:
        """Destroy and undefine every guest the run defined, on every host; close the connections."""
        for host in self.hosts:
            for vm_id in self.defined:
                with contextlib.suppress(Exception):  # an unreachable host has nothing left to remove
                    if host.hypervisor.has_vm(vm_id):
                        host.hypervisor.undefine_vm(vm_id)
        self.directory.close()

"""The real runtime's control plane: the core scheduler's decisions, taken through the managers' log.

Theory of operation
-------------------
One object owns where the real VMs are (as the simulation's control plane owns its allocation
store): the scheduler's ``HostTable`` built from the hosts' real capacity (libvirt's cores x the
scenario's overcommit, libvirt's memory; NIC and IOPS from the scenario), the core
``Scheduler`` of ``[scheduler]`` (``novacron.scheduler.config.build_scheduler``, the simulation's
filters and scorers) and its seeded tie-break. Every decision -- a placement, a move claim, a
move commit -- is first committed to the managers' Raft log (``ManagerHarness.commit``) and
taken once applied, exactly as the simulation's Raft-backed control plane takes it at apply
time; with ``[raft] control_plane = "direct"`` it is taken at once. The events are the
simulation's: ``VMRequested``, ``PlacementDecided``, ``VMPlaced``/``VMRejected``, ``MoveClaimed``,
``VMMoved``, ``MoveClaimReleased``. ``decision_ms`` is the scheduler's measured evaluation time
(wall clock, not the Raft commit, which shows as request-to-placement latency).
"""

from __future__ import annotations

import itertools
import time
from dataclasses import dataclass

import numpy as np

from backends.realrun.managers import ManagerHarness
from novacron.cluster.events import MoveClaimed, MoveClaimReleased, VMMoved, VMPlaced, VMRejected, VMRequested
from novacron.events import Recorder
from novacron.scheduler.config import SchedulerConfig, build_scheduler
from novacron.scheduler.events import PlacementDecided
from novacron.scheduler.state import HostTable, PlacementRequest


@dataclass(frozen=True, slots=True)
class RealClaim:
    claim_id: int
    vm_id: str
    host_id: str
    split: np.ndarray


class RealControlPlane:
    def __init__(self, table: HostTable, config: SchedulerConfig, rng: np.random.Generator, recorder: Recorder,
                 managers: ManagerHarness | None) -> None:
        self.table, self.config, self.rng, self.recorder, self.managers = table, config, rng, recorder, managers
        self.scheduler = build_scheduler(config)
        self.rows = {host_id: row for row, host_id in enumerate(table.host_ids)}
        self.placed: dict[str, tuple[int, PlacementRequest, np.ndarray]] = {}
        self._claim_ids = itertools.count(1)

    @classmethod
    def for_hosts(cls, hosts: list[tuple[str, int, float]], *, cpu_overcommit: float, network_gbps: float,
                  disk_iops: float, hosts_per_rack: int, config: SchedulerConfig, rng: np.random.Generator,
                  recorder: Recorder, managers: ManagerHarness | None) -> RealControlPlane:
        """``hosts``: (host id, cores, memory GiB) as libvirt reports them."""
        table = HostTable.uniform(len(hosts), cpu=1.0, memory_gib=1.0, network_gbps=network_gbps, iops=disk_iops,
                                  numa_nodes=config.numa_nodes, hosts_per_rack=hosts_per_rack)
        table.host_ids = tuple(h for h, _, _ in hosts)
        for row, (_, cores, memory_gib) in enumerate(hosts):
            table.capacity[0, row], table.capacity[1, row] = cores * cpu_overcommit, memory_gib
            table.numa_capacity[:, :, row] = np.array([cores * cpu_overcommit, memory_gib])[:, None] / config.numa_nodes
        return cls(table, config, rng, recorder, managers)

    def _commit(self, kind: str, **fields: object) -> None:
        if self.managers is not None:
            self.managers.commit(kind, **fields)

    def request(self, vm_id: str, cpu_cores: int, memory_gib: float) -> None:
        self.recorder.emit(VMRequested, source="inventory", vm_id=vm_id, cpu_cores=cpu_cores, memory_gib=memory_gib)

    def place(self, vm_id: str, cpu_cores: int, memory_gib: float) -> str | None:
        """Decide where the VM runs (through the log); records ``VMPlaced`` or ``VMRejected``."""
        self._commit("place", vm=vm_id)
        cfg = self.config
        request = PlacementRequest(vm_id=vm_id, demand=(float(cpu_cores), memory_gib,
                                                        cpu_cores * cfg.vm_network_gbps_per_vcpu,
                                                        cpu_cores * cfg.vm_iops_per_vcpu))
        started = time.perf_counter()
        decision = self.scheduler.place(self.table, request, self.rng)
        decision_ms = (time.perf_counter() - started) * 1000.0
        if decision.row is None:
            self.recorder.emit(VMRejected, source="placer", vm_id=vm_id,
                               reason=f"no feasible host ({decision.rejected_by})")
            return None
        host_id = self.table.host_ids[decision.row]
        self.recorder.emit(PlacementDecided, source="scheduler", vm_id=vm_id, host_id=host_id,
                           hosts_feasible=decision.hosts_feasible, policy_count=self.scheduler.policy_count,
                           cache_hit=False, decision_ms=decision_ms)
        self.placed[vm_id] = (decision.row, request, self.table.allocate(decision.row, request))
        self.recorder.emit(VMPlaced, source="placer", vm_id=vm_id, host_id=host_id, cpu_cores=cpu_cores,
                           memory_gib=memory_gib, decision_ms=decision_ms)
        return host_id

    def host_of(self, vm_id: str) -> str:
        return self.table.host_ids[self.placed[vm_id][0]]

    def claim(self, vm_id: str, host_id: str) -> RealClaim | None:
        """Hold room on the destination for a move (a Nova move claim); None if it has none."""
        row, request, _ = self.placed[vm_id]
        destination = self.rows[host_id]
        if destination == row or not self.scheduler.is_feasible_on(self.table, destination, request):
            return None
        self._commit("claim", vm=vm_id, host=host_id)
        claim = RealClaim(next(self._claim_ids), vm_id, host_id, self.table.allocate(destination, request))
        self.recorder.emit(MoveClaimed, source="placer", claim_id=claim.claim_id, vm_id=vm_id, host_id=host_id,
                           cpu_cores=int(request.demand[0]), memory_gib=float(request.demand[1]))
        return claim

    def release_claim(self, claim: RealClaim) -> None:
        _, request, _ = self.placed[claim.vm_id]
        self.table.release(self.rows[claim.host_id], request, claim.split)
        self.recorder.emit(MoveClaimReleased, source="placer", claim_id=claim.claim_id, vm_id=claim.vm_id,
                           host_id=claim.host_id)

    def commit_move(self, claim: RealClaim, mover: str = "migration") -> None:
        """A finished copy becomes the VM's allocation: the claim's room is now the VM's."""
        self._commit("move", vm=claim.vm_id, host=claim.host_id)
        row, request, split = self.placed[claim.vm_id]
        self.table.release(row, request, split)
        self.placed[claim.vm_id] = (self.rows[claim.host_id], request, claim.split)
        self.recorder.emit(VMMoved, source=mover, vm_id=claim.vm_id, from_host_id=self.table.host_ids[row],
                           host_id=claim.host_id)
        self.recorder.emit(MoveClaimReleased, source="placer", claim_id=claim.claim_id, vm_id=claim.vm_id,
                           host_id=claim.host_id)

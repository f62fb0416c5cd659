"""The contract every ``novacron.ports.Hypervisor`` implementation must meet, as one abstract suite.

Subclass ``HypervisorContract`` once per implementation (the simulated one in
``test_hypervisor_contract_sim.py``; the libvirt one belongs in the backend's tests) and provide
the fixtures: a hypervisor whose source host runs a small VM ``vm_id`` that dirties memory
slowly (converges at the default parameters) and a ``wait`` that lets ``seconds`` of the
implementation's time pass.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

from novacron.migration.protocol import (
    AbortMigration,
    JobStats,
    JobStatus,
    MigrationParams,
    MigrationType,
    PowerState,
    SetDowntimeLimit,
    SetMaxBandwidth,
    StartMigration,
)
from novacron.ports import Hypervisor


class HypervisorContract(ABC):
    source_host_id = "a"
    destination_host_id = "b"
    vm_id = "vm"
    timeout_s = 120.0

    @abstractmethod
    def make_hypervisor(self) -> Hypervisor: ...

    @abstractmethod
    def wait(self, hv: Hypervisor, seconds: float) -> None: ...

    def start(self, hv: Hypervisor, **params: object) -> None:
        hv.execute(StartMigration(vm_id=self.vm_id, source_host_id=self.source_host_id,
                                  destination_host_id=self.destination_host_id, migration_type=MigrationType.LIVE,
                                  params=MigrationParams(**params)))  # type: ignore[arg-type]

    def until_terminal(self, hv: Hypervisor) -> JobStats:
        waited = 0.0
        stats = hv.job_stats(self.vm_id)
        while not stats.terminal and waited < self.timeout_s:
            self.wait(hv, 0.25)
            waited += 0.25
            stats = hv.job_stats(self.vm_id)
        return stats

    def test_describe_vm(self) -> None:
        hv = self.make_hypervisor()
        vm = hv.describe_vm(self.vm_id)
        assert vm.vm_id == self.vm_id and vm.host_id == self.source_host_id
        assert vm.memory_bytes > 0 and vm.power_state is PowerState.RUNNING

    def test_no_job_before_start(self) -> None:
        assert self.make_hypervisor().job_stats(self.vm_id).status is JobStatus.NONE

    def test_live_migration_completes_with_stats(self) -> None:
        hv = self.make_hypervisor()
        self.start(hv)
        stats = self.until_terminal(hv)
        assert stats.status is JobStatus.COMPLETED, stats
        assert stats.downtime_ms is not None and stats.downtime_ms >= 0
        assert stats.total_time_ms is not None and stats.total_time_ms >= stats.downtime_ms
        assert stats.dirty_sync_count >= 2 and stats.memory_processed_bytes > 0
        assert hv.describe_vm(self.vm_id).host_id == self.destination_host_id

    def test_limits_can_change_while_running_and_abort_keeps_the_vm(self) -> None:
        hv = self.make_hypervisor()
        self.start(hv, max_bandwidth_bytes_s=8 * 1024 * 1024)
        hv.execute(SetDowntimeLimit(vm_id=self.vm_id, downtime_limit_ms=50))
        hv.execute(SetMaxBandwidth(vm_id=self.vm_id, max_bandwidth_bytes_s=4 * 1024 * 1024))
        self.wait(hv, 0.3)
        hv.execute(AbortMigration(vm_id=self.vm_id, reason="contract test"))
        stats = self.until_terminal(hv)
        assert stats.status is JobStatus.CANCELLED, stats
        vm = hv.describe_vm(self.vm_id)
        assert vm.host_id == self.source_host_id and vm.power_state is PowerState.RUNNING

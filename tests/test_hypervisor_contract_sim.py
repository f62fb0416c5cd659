"""The Hypervisor contract against the simulated hypervisor (``sim.migration.SimHypervisor``)."""

from __future__ import annotations

from novacron.migration.protocol import MIB
from novacron.ports import Hypervisor
from sim.migration.hypervisor import SimHypervisor
from sim.migration.qemu_model import lab_guest
from tests.hypervisor_contract import HypervisorContract
from tests.migration_helpers import make_world


class TestSimHypervisor(HypervisorContract):
    def make_hypervisor(self) -> Hypervisor:
        hv, _, _ = make_world(lab_guest(2_000), nic_bytes_s=1024 * MIB)
        return hv

    def wait(self, hv: Hypervisor, seconds: float) -> None:
        assert isinstance(hv, SimHypervisor)
        job = hv.jobs.get(self.vm_id)
        if job is None:
            return
        target = job.model.elapsed_s + seconds
        while not job.model.finished and job.model.elapsed_s < target:
            hv.advance(self.vm_id, target - job.model.elapsed_s)

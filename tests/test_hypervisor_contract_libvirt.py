"""The Hypervisor contract against the libvirt backend, on the lab's two real libvirtd hosts."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest

from novacron.ports import Hypervisor
from tests.hypervisor_contract import HypervisorContract
from tests.libvirt_helpers import lab_session

pytestmark = [pytest.mark.libvirt, pytest.mark.slow]


@pytest.fixture(scope="module")
def lab() -> Iterator[Any]:
    yield from lab_session()


class TestLibvirtHypervisor(HypervisorContract):
    source_host_id = "host0"
    destination_host_id = "host1"
    vm_id = "nc-contract"
    timeout_s = 60.0

    @pytest.fixture(autouse=True)
    def _world(self, lab: Any) -> Iterator[None]:
        from backends.lab.migrate import LAB_MIGRATION_URI
        from backends.libvirt_hypervisor import HostDirectory, LibvirtHypervisor

        self.lab = lab
        self.directory = HostDirectory()
        self.hosts = [LibvirtHypervisor(h.name, h.uri, self.directory, migration_uri=LAB_MIGRATION_URI)
                      for h in lab.hosts]
        yield
        for hv in self.hosts:
            if hv.has_vm(self.vm_id):
                hv.undefine_vm(self.vm_id)
        self.directory.close()

    def make_hypervisor(self) -> Hypervisor:
        from backends.lab.guest import domain_xml
        from backends.lab.health import wait_guest_ready

        source = self.hosts[0]
        for hv in self.hosts:
            if hv.has_vm(self.vm_id):
                hv.undefine_vm(self.vm_id)
        source.define_vm(domain_xml(self.lab.guest(self.vm_id, memory_mib=256, dirty_mib=32,
                                                   dirty_rate_pages_s=500), self.lab.image))
        source.start_vm(self.vm_id)
        assert wait_guest_ready(self.lab.hosts[0], self.vm_id), "the guest did not boot"
        return source

    def wait(self, hv: Hypervisor, seconds: float) -> None:
        time.sleep(seconds)

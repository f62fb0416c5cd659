"""Workload kinds: VMs, containers, microVMs and GPU VMs, with what placement and migration need.

Theory of operation
-------------------
A kind fixes what a workload costs beyond its own memory and how it moves:

- ``start_s``: from the decision to run it to its workload running;
- ``memory_overhead_gib``: the runtime's own memory per instance (the VMM process, the shim);
- ``migration``: the mechanics of moving one (``novacron.migration.kinds`` models each):
  ``precopy`` (QEMU live migration, ``sim.migration.qemu_model``), ``checkpoint_restore`` (CRIU:
  freeze, dump, transfer, restore, with pre-dump iterations), ``snapshot`` (a microVM's snapshot
  of memory and device state, restored on the destination), ``precopy_gpu`` (pre-copy of guest
  memory, then the GPU's memory and state copied during the stop, since GPU memory cannot be
  dirty-tracked by the hypervisor).

Figures, with their sources (each a published measurement or a stated assumption):

- microVM: Firecracker boots a guest to its init in about 125 ms and adds under 5 MiB of memory
  per microVM (Agache et al., "Firecracker: Lightweight Virtualization for Serverless
  Applications", NSDI 2020, sections 4.1-4.2 and figure 7 / table of memory overhead: Firecracker
  3 MB, QEMU 131 MB).
- VM (QEMU/KVM): 131 MB of VMM overhead (same paper); start 30 s for a full distribution boot
  with cloud-init -- an assumption of this model; provisioning in public clouds measured far more
  (Mao and Humphrey, "A Performance Study on the VM Startup Time in the Cloud", IEEE CLOUD 2012:
  tens of seconds to minutes).
- container: start 0.5 s for a cached image (an assumption of the order of `docker run` of a
  small image); runtime overhead 10 MiB for the shim (an assumption).
- GPU VM: a VM's figures plus 30 s for the GPU driver's initialisation (an assumption).

In a capacity run (``[workload] kinds``), each VM draws its kind from the list by a stable hash of
its id (``kind_of``; a VM that asks for a GPU is a GPU VM): it reserves its memory plus the kind's
overhead, and runs ``start_s`` after its placement (``sim.cluster_model``, ``VMStarted``).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

MIB = 1.0 / 1024.0


@dataclass(frozen=True, slots=True, kw_only=True)
class WorkloadKind:
    name: str
    start_s: float
    memory_overhead_gib: float
    migration: str
    source: str


KINDS: dict[str, WorkloadKind] = {k.name: k for k in (
    WorkloadKind(name="vm", start_s=30.0, memory_overhead_gib=131 * MIB, migration="precopy",
                 source="Agache et al. NSDI 2020 (QEMU 131 MB overhead); 30 s boot: assumption"),
    WorkloadKind(name="container", start_s=0.5, memory_overhead_gib=10 * MIB, migration="checkpoint_restore",
                 source="assumption (cached image, runtime shim)"),
    WorkloadKind(name="microvm", start_s=0.125, memory_overhead_gib=3 * MIB, migration="snapshot",
                 source="Agache et al. NSDI 2020 (Firecracker: ~125 ms boot, 3 MB overhead)"),
    WorkloadKind(name="gpu_vm", start_s=60.0, memory_overhead_gib=131 * MIB, migration="precopy_gpu",
                 source="a VM's figures plus 30 s of GPU driver initialisation (assumption)"),
)}
"""Every workload kind by name."""


def kind(name: str) -> WorkloadKind:
    try:
        return KINDS[name]
    except KeyError:
        raise ValueError(f"workload kind {name!r}: allowed {', '.join(KINDS)}") from None


def kind_of(vm_id: str, names: tuple[str, ...], *, needs_gpu: bool = False) -> WorkloadKind | None:
    """The kind of VM ``vm_id``: ``gpu_vm`` if it asks for a GPU, else the entry of ``names`` at a
    stable hash of its id; ``None`` when ``names`` is empty (the model without kinds)."""
    if not names:
        return None
    if needs_gpu:
        return KINDS["gpu_vm"]
    digest = int.from_bytes(hashlib.blake2b(vm_id.encode(), digest_size=8, person=b"kind").digest(), "little")
    return kind(names[digest % len(names)])

"""Migration between workload kinds: checkpoint/restore, snapshots, re-platforming, GPU state.

Theory of operation
-------------------
Each path moves one workload of memory ``M`` (MiB) that dirties ``D`` MiB/s within a writable
working set ``W`` over a link of ``B`` MiB/s; its phases give a downtime (from the moment the
workload stops answering to the moment it answers again) and a total time:

- ``checkpoint_restore`` (container -> container; CRIU, criu.org "Iterative migration" and "Live
  migration": ``criu pre-dump`` rounds send memory while the task runs, using the kernel's
  soft-dirty bits to find the pages written since; then ``criu dump`` freezes the task (cgroup
  freezer), dumps what was dirtied since the last pre-dump and its state, the image moves
  (``page-server``) and ``criu restore`` rebuilds it). Round ``i`` sends ``x_i`` (``x_0 = M``,
  ``x_{i+1} = W (1 - exp(-D x_i / (B W)))``, the distinct part of ``W`` that random writes during
  the round dirty: ``dirtying``); rounds stop when ``x_i`` is under ``final_dump_mib`` or after
  ``max_pre_dumps``. Downtime = freeze + final dump (``x / dump_rate``) + its transfer + restore
  (``restore_fixed_s + M / restore_rate``).
- ``container -> microvm`` / ``container -> vm`` (containers re-hosted in a VM): the same CRIU
  rounds, the destination (micro)VM booted and the container's root filesystem converted to a
  block device while the pre-dumps run (so their times add to the total, not to the downtime),
  then the restore runs inside the guest, plus a guest-agent hand-off.
- ``vm -> container`` (re-platforming, modelled as the issue says: stop, image conversion, start):
  downtime = guest shutdown + conversion of the application's image layer + container start +
  application start. Nothing is copied live.
- ``microvm -> microvm`` (Firecracker snapshots: pause, write the memory file and device state,
  move it, load it on the destination with the memory file mapped lazily, resume): downtime =
  ``M / snapshot_rate + M / B + snapshot_restore_s``.
- ``gpu_vm -> gpu_vm``: pre-copy of guest memory as above (QEMU live migration), then during the
  stop the GPU's used memory and context move too -- GPU memory is not dirty-tracked by the
  hypervisor, so it all moves while stopped: ``G / B + gpu_context_s`` added to the downtime.

Outcomes: a path fails with a fixed probability per attempt (the source is resumed, nothing is
lost). No study we could find gives per-path failure rates, so each defaults to the failure rate
the NovaCron analysis observed for that path (issue 19), or 0.1 % where it gave none: the success
rate is an input of this model, not a result.

Rates and fixed costs are the ``KindMigrationParams`` defaults, each documented with its source
or marked as an assumption; every figure a scenario may override in ``[kind_migration]``.
"""

from __future__ import annotations

from dataclasses import dataclass

from novacron.cluster.kinds import KINDS
from novacron.migration.dirtying import distinct_touched

PATHS: dict[str, tuple[str, str]] = {
    "container_to_container": ("container", "container"),
    "container_to_microvm": ("container", "microvm"),
    "container_to_vm": ("container", "vm"),
    "vm_to_container": ("vm", "container"),
    "microvm_to_microvm": ("microvm", "microvm"),
    "gpu_vm_to_gpu_vm": ("gpu_vm", "gpu_vm"),
}
"""Every modelled path: name -> (from kind, to kind)."""

ANALYSIS_SUCCESS_PCT: dict[str, float] = {
    "container_to_vm": 99.8, "vm_to_container": 99.5, "container_to_microvm": 99.9, "gpu_vm_to_gpu_vm": 98.8,
}
ANALYSIS_DOWNTIME_S: dict[str, float] = {
    "container_to_vm": 7.2, "vm_to_container": 6.4, "container_to_microvm": 4.0, "gpu_vm_to_gpu_vm": 12.0,
}
"""The NovaCron analysis' observed figures (issue 19): reference figures, never a verdict."""


@dataclass(frozen=True, slots=True, kw_only=True)
class KindMigrationParams:
    dump_rate_mib_s: float = 1000.0
    """CRIU writing pages to its page server: assumption (memory-bound copy through a pipe, ~1 GiB/s)"""
    restore_rate_mib_s: float = 2000.0
    """CRIU restore mapping pages back: assumption"""
    restore_fixed_s: float = 0.3
    """CRIU restore's fixed part (namespaces, file descriptors, sockets): assumption"""
    freeze_s: float = 0.05
    """cgroup freezer stopping every task of the container: assumption (tens of ms)"""
    final_dump_mib: float = 64.0
    """pre-dumps stop once a round would send less than this"""
    max_pre_dumps: int = 8
    guest_handoff_s: float = 0.5
    """a restore inside a guest: the guest agent receiving the image and starting CRIU: assumption"""
    shutdown_s: float = 3.0
    """a guest's clean shutdown (vm -> container): assumption"""
    image_gib: float = 2.0
    """the application's image layer converted for the container (vm -> container)"""
    convert_rate_mib_s: float = 1000.0
    """disk image conversion (qemu-img convert-like, local SSD): assumption"""
    container_start_s: float = KINDS["container"].start_s
    """the container kind's start (``novacron.cluster.kinds``)"""
    app_start_s: float = 1.0
    """the application answering again after its process starts: assumption"""
    snapshot_rate_mib_s: float = 2000.0
    """Firecracker writing its memory file to local storage: assumption"""
    snapshot_restore_s: float = 0.01
    """Firecracker loading a snapshot with the memory file mapped lazily: milliseconds (Firecracker
    snapshot documentation)"""
    gpu_memory_gib: float = 8.0
    """GPU memory in use that must move while stopped"""
    gpu_context_s: float = 1.0
    """saving and restoring the GPU context through the driver: assumption"""
    failure_pct: tuple[tuple[str, float], ...] = tuple(
        (path, round(100.0 - ANALYSIS_SUCCESS_PCT.get(path, 99.9), 6)) for path in PATHS)
    """per path, the chance an attempt fails (see the module docstring)"""


@dataclass(frozen=True, slots=True)
class Workload:
    memory_mib: float
    wws_mib: float
    dirty_rate_mib_s: float
    bandwidth_mib_s: float


@dataclass(frozen=True, slots=True)
class KindMigrationPlan:
    """What one migration of a path costs (no outcome yet)."""

    path: str
    pre_dumps: int
    transferred_mib: float
    downtime_s: float
    total_s: float


def pre_copy_rounds(w: Workload, final_mib: float, max_rounds: int) -> tuple[list[float], float]:
    """Sizes sent by each round while the workload runs, and what is left for the stop."""
    sent: list[float] = []
    size = w.memory_mib
    for _ in range(max_rounds):
        if size <= final_mib and sent:
            break
        sent.append(size)
        size = distinct_touched(w.wws_mib, w.dirty_rate_mib_s * size / w.bandwidth_mib_s)
    return sent, size


def plan(path: str, w: Workload, p: KindMigrationParams) -> KindMigrationPlan:
    """The phases of one migration of ``path``; ``ValueError`` for an unknown path."""
    if path not in PATHS:
        raise ValueError(f"migration path {path!r}: allowed {', '.join(PATHS)}")
    if path == "vm_to_container":
        convert_s = p.image_gib * 1024 / p.convert_rate_mib_s
        down = p.shutdown_s + convert_s + p.container_start_s + p.app_start_s
        return KindMigrationPlan(path, 0, p.image_gib * 1024, down, down)
    if path == "microvm_to_microvm":
        down = w.memory_mib / p.snapshot_rate_mib_s + w.memory_mib / w.bandwidth_mib_s + p.snapshot_restore_s
        return KindMigrationPlan(path, 0, w.memory_mib, down, down)
    rounds, final_mib = pre_copy_rounds(w, p.final_dump_mib, p.max_pre_dumps)
    live_s = sum(rounds) / w.bandwidth_mib_s
    down = p.freeze_s + final_mib / w.bandwidth_mib_s
    moved = sum(rounds) + final_mib
    if path == "gpu_vm_to_gpu_vm":  # QEMU sends the last dirty pages itself; then the GPU's memory and context
        gpu_mib = p.gpu_memory_gib * 1024
        down += gpu_mib / w.bandwidth_mib_s + p.gpu_context_s
        moved += gpu_mib
    else:  # CRIU: the final dump, then the restore
        down += final_mib / p.dump_rate_mib_s + p.restore_fixed_s + w.memory_mib / p.restore_rate_mib_s
    if path in ("container_to_microvm", "container_to_vm"):
        down += p.guest_handoff_s
    return KindMigrationPlan(path, len(rounds), moved, down, live_s + down)


def failure_probability(path: str, p: KindMigrationParams) -> float:
    return dict(p.failure_pct).get(path, 0.1) / 100.0


"""GPUs as a schedulable resource: whole GPUs and MIG partitions, a filter and a packing scorer.

Theory of operation
-------------------
Each host has ``count`` GPUs of one ``model`` with ``memory_gib`` each. A GPU is either used
whole by one workload, or partitioned into MIG slices (NVIDIA Multi-Instance GPU: an A100 or
H100 splits into at most 7 compute slices, "1g" to "7g" profiles; NVIDIA MIG User Guide,
"Supported MIG Profiles"). A request asks for ``gpus`` whole GPUs of a model with at least
``memory_gib`` each, or for one MIG instance of ``mig_slices`` slices (its memory is
``memory_gib x slices / 7``, as the "Ng.(N x 5)gb" profiles of an A100-40GB). A GPU holding MIG
instances cannot be given whole, and a whole GPU cannot be partitioned until it is free: the
two uses are exclusive, as on the hardware (MIG mode is set per GPU). Placement alignment rules
of real MIG profiles (which slice offsets a profile may start at) are not modelled: any free
slices of one GPU make an instance.

``GpuInventory`` holds, per host and GPU, the slices in use (7 = whole or full) and whether the GPU
is in MIG mode; it is a projection its owner updates with ``allocate`` / ``release``. The filter
``GpuFit`` passes hosts that can take the request now; the scorer ``GpuPack`` prefers the host
left with the fewest free slices after placing (best fit), which keeps whole GPUs free for
requests that need them -- Kubernetes' ``MostAllocated`` idea applied to extended resources. A
request without GPUs passes every host and scores them all alike.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from novacron.scheduler.state import BoolArray, FloatArray, HostTable, PlacementRequest

IntArray = npt.NDArray[np.int64]
MIG_SLICES = 7
"""Compute slices of an A100/H100 in MIG mode (NVIDIA MIG User Guide)."""
MIG_PROFILES = (1, 2, 3, 4, 7)
"""Slice counts of the A100/H100 MIG profiles (1g, 2g, 3g, 4g, 7g)."""


@dataclass(frozen=True, slots=True)
class GpuRequest:
    gpus: int = 0
    """whole GPUs"""
    mig_slices: int = 0
    """one MIG instance of this many slices (instead of whole GPUs)"""
    model: str = ""
    """'' = any model"""
    memory_gib: float = 0.0
    """per whole GPU: at least this much memory"""

    def __post_init__(self) -> None:
        if self.gpus and self.mig_slices:
            raise ValueError("a GPU request asks for whole GPUs or one MIG instance, not both")
        if self.mig_slices and self.mig_slices not in MIG_PROFILES:
            raise ValueError(f"mig_slices = {self.mig_slices}: allowed {', '.join(map(str, MIG_PROFILES))}")

    @property
    def needs_gpu(self) -> bool:
        return self.gpus > 0 or self.mig_slices > 0


@dataclass(frozen=True, slots=True)
class GpuGrant:
    """Where a request's GPU share went: (GPU index, slices) per GPU used on the host."""

    host: int
    parts: tuple[tuple[int, int], ...]
    mig: bool


class GpuInventory:
    """GPUs of every host: model, memory, and per GPU the slices in use and its mode."""

    def __init__(self, models: list[str], counts: list[int], memory_gib: list[float]) -> None:
        hosts, most = len(counts), max(counts, default=0)
        self.models = models
        self.memory_gib = np.asarray(memory_gib, dtype=np.float64)
        self.present = np.arange(max(most, 1))[None, :] < np.asarray(counts)[:, None]
        """(hosts, GPUs) True where the GPU exists"""
        self.used = np.zeros((hosts, max(most, 1)), dtype=np.int64)
        """slices in use per GPU (a whole GPU uses all of them)"""
        self.mig_mode = np.zeros_like(self.present)

    @property
    def hosts(self) -> int:
        return int(self.present.shape[0])

    def _model_ok(self, request: GpuRequest) -> BoolArray:
        ok = np.array([not request.model or m == request.model for m in self.models], dtype=bool)
        if request.gpus:
            ok &= self.memory_gib >= request.memory_gib
        return ok

    def whole_free(self) -> IntArray:
        free: IntArray = (self.present & (self.used == 0)).sum(axis=1)
        return free

    def fits(self, request: GpuRequest) -> BoolArray:
        """Per host: whether it can take the request now."""
        if not request.needs_gpu:
            return np.ones(self.hosts, dtype=bool)
        ok = self._model_ok(request)
        if request.gpus:
            return ok & (self.whole_free() >= request.gpus)
        room = self.present & ((self.used == 0) | self.mig_mode) & (MIG_SLICES - self.used >= request.mig_slices)
        fit: BoolArray = ok & room.any(axis=1)
        return fit

    def free_slices(self) -> IntArray:
        free: IntArray = np.where(self.present, MIG_SLICES - self.used, 0).sum(axis=1)
        return free

    def allocate(self, host: int, request: GpuRequest) -> GpuGrant:
        if not bool(self.fits(request)[host]):
            raise ValueError(f"host {host} cannot take {request}")
        if request.gpus:
            free = np.flatnonzero(self.present[host] & (self.used[host] == 0))[:request.gpus]
            self.used[host, free] = MIG_SLICES
            return GpuGrant(host, tuple((int(g), MIG_SLICES) for g in free), mig=False)
        # Best fit among the GPUs that can take the instance: the fullest MIG GPU first.
        usable = self.present[host] & ((self.used[host] == 0) | self.mig_mode[host]) & (
            MIG_SLICES - self.used[host] >= request.mig_slices)
        candidates = np.flatnonzero(usable)
        gpu = int(candidates[np.argmax(self.used[host, candidates])])
        self.used[host, gpu] += request.mig_slices
        self.mig_mode[host, gpu] = True
        return GpuGrant(host, ((gpu, request.mig_slices),), mig=True)

    def release(self, grant: GpuGrant) -> None:
        for gpu, slices in grant.parts:
            if self.used[grant.host, gpu] < slices:
                raise ValueError(f"release of {slices} slices on host {grant.host} GPU {gpu}: only "
                                 f"{self.used[grant.host, gpu]} in use")
            self.used[grant.host, gpu] -= slices
            if self.used[grant.host, gpu] == 0:
                self.mig_mode[grant.host, gpu] = False


@dataclass(frozen=True, slots=True)
class GpuFit:
    """Filter: the host can take the request's GPUs now."""

    inventory: GpuInventory
    request: GpuRequest
    name: str = "gpu_fit"

    def feasible(self, hosts: HostTable, request: PlacementRequest) -> BoolArray:
        fits: BoolArray = self.inventory.fits(self.request)[hosts.index]
        return fits


@dataclass(frozen=True, slots=True)
class GpuPack:
    """Score: best fit -- fewer free slices left after placing scores higher."""

    inventory: GpuInventory
    request: GpuRequest
    name: str = "gpu_pack"

    def score(self, hosts: HostTable, request: PlacementRequest) -> FloatArray:
        if not self.request.needs_gpu:
            return np.zeros(hosts.size)
        take = self.request.gpus * MIG_SLICES + self.request.mig_slices
        total = np.maximum(self.inventory.present.sum(axis=1) * MIG_SLICES, 1)
        left = np.clip(self.inventory.free_slices() - take, 0, None) / total
        score: FloatArray = (1.0 - left)[hosts.index]
        return score

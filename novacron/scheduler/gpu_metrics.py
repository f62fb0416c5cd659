"""Catalogue metrics of GPU placement, from ``GpuAllocated`` / ``GpuReleased`` and GPU rejections."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from novacron.cluster.events import GpuAllocated, GpuReleased, VMRejected
from novacron.events import Event
from novacron.streaming import Metrics

GPU_REFUSAL_PREFIX = "gpu_fit"

GPU_METRICS: tuple[tuple[str, str, str], ...] = (
    ("gpu.allocations", "", "GPU shares given to VMs (whole GPUs or MIG instances)"),
    ("gpu.vms_rejected", "", "GPU VM requests no host could take"),
    ("gpu.peak_slices_used_pct", "%", "peak of GPU slices in use over the GPU hosts' slices (7 per GPU)"),
    ("gpu.capacity_excess_max_slices", "slices", "most GPU slices one host had in use beyond its GPUs (never > 0)"),
)


class GpuFold:
    def __init__(self) -> None:
        self.allocations = self.rejected = 0
        self.used: dict[str, int] = {}
        self.total: dict[str, int] = {}
        self.peak_pct = 0.0
        self.excess = 0

    def handlers(self) -> Mapping[type[Event], Callable[[Any], None]]:
        return {GpuAllocated: self._allocated, GpuReleased: self._changed, VMRejected: self._rejected}

    def _allocated(self, ev: GpuAllocated) -> None:
        self.allocations += 1
        self._changed(ev)

    def _changed(self, ev: GpuAllocated | GpuReleased) -> None:
        self.used[ev.host_id], self.total[ev.host_id] = ev.host_slices_used, ev.host_slices_total
        self.excess = max(self.excess, ev.host_slices_used - ev.host_slices_total)
        self.peak_pct = max(self.peak_pct, 100.0 * sum(self.used.values()) / max(sum(self.total.values()), 1))

    def _rejected(self, ev: VMRejected) -> None:
        if ev.reason.startswith(GPU_REFUSAL_PREFIX):
            self.rejected += 1

    def result(self) -> Metrics:
        if not self.allocations and not self.rejected:
            return {}
        return {"gpu.allocations": float(self.allocations), "gpu.vms_rejected": float(self.rejected),
                "gpu.peak_slices_used_pct": self.peak_pct, "gpu.capacity_excess_max_slices": float(self.excess)}

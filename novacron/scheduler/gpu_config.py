"""The ``[gpus]`` scenario section: GPU hosts and the GPU share each VM asks for.

Off by default. The first ``gpu_hosts`` hosts carry ``gpus_per_host`` GPUs of ``model``; each VM
asks for the entry of ``vm_requests`` at a stable hash of its id: ``""`` (no GPU), ``"N"`` (N whole
GPUs) or ``"migK"`` (one MIG instance of K slices: 1, 2, 3, 4 or 7).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from novacron.config import ConfigError, spec
from novacron.scheduler.gpu import MIG_PROFILES, GpuRequest


def parse_request(text: str, model: str) -> GpuRequest:
    """``""``, ``"N"`` or ``"migK"`` as a request (``ValueError`` naming what is allowed)."""
    allowed = "'' (no GPU), 'N' (N whole GPUs) or 'migK' (K in 1, 2, 3, 4, 7)"
    try:
        if not text:
            return GpuRequest()
        if text.startswith("mig") and int(text[3:]) in MIG_PROFILES:
            return GpuRequest(mig_slices=int(text[3:]), model=model)
        if int(text) > 0:
            return GpuRequest(gpus=int(text), model=model)
    except ValueError:
        pass
    raise ValueError(f"{text!r} is not a GPU request; allowed: {allowed}")


@dataclass(frozen=True, slots=True, kw_only=True)
class GpuConfig:
    enabled: bool = spec(False, doc="give hosts GPUs and VMs GPU requests (whole GPUs or MIG instances)")
    gpu_hosts: int = spec(2, min=0, max=20_000, doc="hosts with GPUs (the first ones)")
    gpus_per_host: int = spec(8, min=1, max=64, doc="GPUs on each GPU host")
    model: str = spec("A100-40GB", doc="GPU model (requests ask for it)")
    memory_gib: float = spec(40.0, min=1.0, max=1e4, doc="memory of one GPU")
    vm_requests: tuple[str, ...] = spec(["", "", "1", "mig1", "mig3", "2"],
                                        doc="each VM's GPU request, by a stable hash of its id: '' (none), "
                                            "'N' (N whole GPUs) or 'migK' (one MIG instance of K slices)")

    def __post_init__(self) -> None:
        for text in self.vm_requests:
            try:
                request = parse_request(text, self.model)
            except ValueError as exc:
                raise ConfigError(f"gpus.vm_requests: {exc}") from None
            if request.gpus > self.gpus_per_host:
                raise ConfigError(f"gpus.vm_requests: {text!r} asks for more GPUs than a host has "
                                  f"({self.gpus_per_host}); allowed: at most gpus.gpus_per_host")

    def request_of(self, vm_id: str) -> GpuRequest:
        if not self.vm_requests:
            return GpuRequest()
        digest = int.from_bytes(hashlib.blake2b(vm_id.encode(), digest_size=8).digest(), "little")
        return parse_request(self.vm_requests[digest % len(self.vm_requests)], self.model)

"""Request traces and synthetic generators (file formats live in ``novacron.app.tracefiles``).

Theory of operation
-------------------
A trace is an iterable of ``Request(time_s, key, size_bytes, op)``. ``next_access_positions``
computes, in one backward pass, where each key is requested next (Belady's MIN and the
oracleGeneral format need it).

Generators draw from an injected ``numpy.random.Generator``. Zipf popularity is bounded
(``p_i ∝ 1 / i**alpha`` over ``n_objects``, any alpha >= 0, unlike numpy's ``zipf`` which needs
alpha > 1), sampled by inverse CDF; ranks are shuffled onto ids so popularity is not id order.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import numpy.typing as npt

OPS = ("get", "set", "delete")


class Request(NamedTuple):
    time_s: float
    key: int
    size_bytes: int
    op: str = "get"


def next_access_positions(keys: npt.NDArray[np.int64] | list[int]) -> list[int]:
    """For each request, the position of the next request to the same key (-1 if none)."""
    keys_list = [int(k) for k in keys]
    following = [-1] * len(keys_list)
    seen: dict[int, int] = {}
    for i in range(len(keys_list) - 1, -1, -1):
        key = keys_list[i]
        following[i] = seen.get(key, -1)
        seen[key] = i
    return following


# -- synthetic generators ------------------------------------------------------------------

class ZipfSampler:
    """Popularity ranks 0..n_objects-1 with P(rank i) ∝ 1/(i+1)**alpha; the CDF is built once."""

    def __init__(self, n_objects: int, alpha: float) -> None:
        if n_objects < 1 or alpha < 0:
            raise ValueError(f"need n_objects >= 1 and alpha >= 0, got {n_objects}, {alpha}")
        weights = 1.0 / np.arange(1, n_objects + 1, dtype=np.float64) ** alpha
        self.cdf = np.cumsum(weights)
        self.cdf /= self.cdf[-1]
        self.n_objects = n_objects

    def draw(self, rng: np.random.Generator, count: int) -> npt.NDArray[np.int64]:
        ranks = np.searchsorted(self.cdf, rng.random(count), side="right").astype(np.int64)
        return np.minimum(ranks, self.n_objects - 1)


def zipf_ranks(rng: np.random.Generator, n_objects: int, alpha: float, count: int) -> npt.NDArray[np.int64]:
    """``count`` draws of popularity ranks 0..n_objects-1 with P(rank i) ∝ 1/(i+1)**alpha."""
    return ZipfSampler(n_objects, alpha).draw(rng, count)


def _requests(keys: npt.NDArray[np.int64], sizes: npt.NDArray[np.int64] | int,
              rate_per_s: float) -> list[Request]:
    times = np.arange(len(keys)) / rate_per_s
    size_arr = np.broadcast_to(np.asarray(sizes, dtype=np.int64), keys.shape)
    return [Request(float(t), int(k), int(s)) for t, k, s in zip(times, keys, size_arr, strict=True)]


def zipf_trace(rng: np.random.Generator, *, n_objects: int, alpha: float, n_requests: int,
               size_bytes: int = 4096, rate_per_s: float = 1000.0) -> list[Request]:
    ids = rng.permutation(n_objects).astype(np.int64)
    return _requests(ids[zipf_ranks(rng, n_objects, alpha, n_requests)], size_bytes, rate_per_s)


def scan_trace(rng: np.random.Generator, *, n_objects: int, alpha: float, n_requests: int,
               scan_length: int, scan_every: int, size_bytes: int = 4096,
               rate_per_s: float = 1000.0) -> list[Request]:
    """Zipf traffic with a sequential scan of ``scan_length`` fresh keys every ``scan_every`` requests."""
    base = zipf_trace(rng, n_objects=n_objects, alpha=alpha, n_requests=n_requests, size_bytes=size_bytes,
                      rate_per_s=rate_per_s)
    keys = np.array([r.key for r in base], dtype=np.int64)
    next_scan_key = n_objects
    for start in range(scan_every, n_requests, scan_every):
        stop = min(start + scan_length, n_requests)
        keys[start:stop] = np.arange(next_scan_key, next_scan_key + stop - start)
        next_scan_key += stop - start
    return _requests(keys, size_bytes, rate_per_s)


def shifting_trace(rng: np.random.Generator, *, n_objects: int, alpha: float, n_requests: int,
                   phases: int, overlap: float = 0.5, size_bytes: int = 4096,
                   rate_per_s: float = 1000.0) -> list[Request]:
    """Zipf over a working set that shifts ``phases`` times, keeping ``overlap`` of its keys each time."""
    if phases < 1 or not 0 <= overlap <= 1:
        raise ValueError("need phases >= 1 and 0 <= overlap <= 1")
    shift = max(1, int(n_objects * (1 - overlap)))
    per_phase = -(-n_requests // phases)
    ids = rng.permutation(n_objects + shift * phases).astype(np.int64)
    parts = [ids[p * shift + zipf_ranks(rng, n_objects, alpha, min(per_phase, n_requests - p * per_phase))]
             for p in range(phases) if n_requests > p * per_phase]
    return _requests(np.concatenate(parts), size_bytes, rate_per_s)


def vm_image_trace(rng: np.random.Generator, *, images: int, blocks_per_image: int, vms: int,
                   n_requests: int, boot_blocks: int = 256, alpha: float = 1.0, block_bytes: int = 65536,
                   rate_per_s: float = 1000.0) -> list[Request]:
    """VM-image block reads: each VM boots by reading its image's first ``boot_blocks`` blocks in
    order (shared by every VM of that image), then reads blocks of its image with Zipf popularity.
    Popular images are used by more VMs (Zipf over images too). Key = image * blocks + block."""
    if boot_blocks > blocks_per_image:
        raise ValueError("boot_blocks cannot exceed blocks_per_image")
    vm_image = np.sort(zipf_ranks(rng, images, 1.0, vms))
    per_vm = max(boot_blocks, n_requests // max(vms, 1))
    boot_starts = np.sort(rng.integers(0, max(1, n_requests - per_vm), size=vms))
    chunks: list[npt.NDArray[np.int64]] = []
    owners: list[npt.NDArray[np.int64]] = []
    for vm, image in enumerate(vm_image):
        boot = np.arange(boot_blocks, dtype=np.int64)
        steady = zipf_ranks(rng, blocks_per_image, alpha, per_vm - boot_blocks)
        chunks.append(int(image) * blocks_per_image + np.concatenate([boot, steady]))
        owners.append(boot_starts[vm] + np.arange(per_vm, dtype=np.int64) * max(vms, 1))
    keys = np.concatenate(chunks)
    order = np.argsort(np.concatenate(owners), kind="stable")
    return _requests(keys[order][:n_requests], block_bytes, rate_per_s)


GENERATORS = ("zipf", "scan", "shift", "vm-image")

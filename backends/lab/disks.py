"""The lab guest's local disk for block migration: a qcow2 image holding a known pattern.

Theory of operation
-------------------
Each lab host bind-mounts its own private directory over ``/var/lib/libvirt`` (``hosts.py``), so
one path, ``DISK_DIR_IN_HOST/<vm>.qcow2``, names a different file on each host: two hosts with
no shared storage, which is what block migration (libvirt's non-shared-disk mode, QEMU's
drive-mirror over NBD) is for. ``prepare_disks`` writes a pattern drawn from a seed into the
source's image -- pseudo-random MiBs with every fourth MiB left zero, so the copy of unallocated
clusters is checked too -- converting raw bytes to qcow2 with ``qemu-img``, and creates an empty
image of the same virtual size on the destination: libvirt mirrors into an existing image and
does not create plain files outside a storage pool.

The tiny guest's kernel has no virtio-blk driver in its initramfs (no modules), so the guest
cannot write its disk; the pattern is written before boot, and what is checked is the copy:
``read_disk`` reads an image's whole virtual disk back through ``qemu-img convert -U``
(force-share, since the destination's QEMU holds the image open) and ``compare_disk`` compares
it with the pattern byte for byte.
"""

from __future__ import annotations

import random
import subprocess
import tempfile
from collections.abc import Iterable
from pathlib import Path

from backends.lab.hosts import PRIVATE_MOUNTS, LabHost

DISK_DIR_IN_HOST = "/var/lib/libvirt/images"
MIB = 1024 * 1024
ZERO_EVERY_MIB = 4
"""Every fourth MiB of the pattern stays zero (an unallocated qcow2 cluster range)."""


class LabDiskError(RuntimeError):
    """qemu-img failed (not installed, a locked or damaged image)."""


def disk_path_in_host(vm_id: str) -> str:
    return f"{DISK_DIR_IN_HOST}/{vm_id}.qcow2"


def host_disk_file(host: LabHost, vm_id: str) -> Path:
    """The image as seen from outside the host's mount namespace."""
    private = host.root / PRIVATE_MOUNTS["/var/lib/libvirt"]
    return private / Path(disk_path_in_host(vm_id)).relative_to("/var/lib/libvirt")


def disk_pattern(size_mib: int, seed: int) -> bytes:
    rng = random.Random(seed)
    zero = bytes(MIB)
    return b"".join(zero if i % ZERO_EVERY_MIB == ZERO_EVERY_MIB - 1 else rng.randbytes(MIB) for i in range(size_mib))


def _qemu_img(*argv: str) -> None:
    try:
        subprocess.run(["qemu-img", *argv], check=True, capture_output=True, text=True, timeout=120)
    except FileNotFoundError as exc:
        raise LabDiskError("qemu-img is not installed (Debian package qemu-utils)") from exc
    except subprocess.CalledProcessError as exc:
        raise LabDiskError(f"qemu-img {' '.join(argv)}: {exc.stderr.strip()[-400:]}") from exc


def prepare_disks(source: LabHost, destination: LabHost, vm_id: str, pattern: bytes) -> None:
    """The pattern as a qcow2 image on the source, an empty image of its size on the destination."""
    source_file, destination_file = host_disk_file(source, vm_id), host_disk_file(destination, vm_id)
    for image in (source_file, destination_file):
        image.parent.mkdir(parents=True, exist_ok=True)
        image.unlink(missing_ok=True)
    with tempfile.NamedTemporaryFile(dir=source_file.parent, suffix=".raw") as raw:
        raw.write(pattern)
        raw.flush()
        _qemu_img("convert", "-f", "raw", "-O", "qcow2", raw.name, str(source_file))
    _qemu_img("create", "-q", "-f", "qcow2", str(destination_file), str(len(pattern)))


def read_disk(image: Path) -> bytes:
    """The image's whole virtual disk, read while a QEMU may hold it open (``-U``)."""
    with tempfile.TemporaryDirectory(dir=image.parent) as scratch:
        raw = Path(scratch) / "disk.raw"
        _qemu_img("convert", "-U", "-f", "qcow2", "-O", "raw", str(image), str(raw))
        return raw.read_bytes()


def compare_disk(image: Path, pattern: bytes) -> str:
    """"identical", or where the image first differs from the pattern."""
    found = read_disk(image)
    if found == pattern:
        return "identical"
    if len(found) != len(pattern):
        return f"{image}: {len(found)} bytes, expected {len(pattern)}"
    first = next(i for i, (a, b) in enumerate(zip(found, pattern, strict=True)) if a != b)
    differing_mib = sum(found[i:i + MIB] != pattern[i:i + MIB] for i in range(0, len(pattern), MIB))
    return f"{image}: first difference at byte {first}; {differing_mib} of {len(pattern) // MIB} MiB differ"


def remove_disks(hosts: Iterable[LabHost], vm_id: str) -> None:
    for host in hosts:
        host_disk_file(host, vm_id).unlink(missing_ok=True)

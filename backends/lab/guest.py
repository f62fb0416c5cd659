"""The lab's tiny guest: a Debian kernel and a busybox initramfs running a memory dirtier.

Theory of operation
-------------------
A migration test needs a guest that boots in seconds under software emulation (TCG) and dirties
memory at a known rate. The kernel is the one Debian ships (``apt-get download`` of the versioned
package ``linux-image-amd64`` depends on); its bzImage carries an xz-compressed ELF ``vmlinux``,
which we decompress once with :mod:`lzma` because QEMU boots an ELF kernel straight through the
PVH entry point, skipping ~8 s of in-guest decompression under TCG (measured, ../shared/LAB.md).
The initramfs holds static busybox, an ``/init`` script and ``dirtier`` (``dirtier.c``, built
with ``gcc -O2 -static``), packed with ``busybox cpio -o -H newc`` since ``cpio`` is not
installed. The dirtier writes a working set at a set rate and, besides it, a static fill written
once, so the guest holds as much non-zero memory as a scenario drew (``lab_workload``).
Everything lands in a cache directory keyed by the inputs' hash, so a warm ``lab up`` builds
nothing.
"""

from __future__ import annotations

import gzip
import hashlib
import lzma
import os
import re
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import escape

from novacron.migration.guests import GuestWorkload
from novacron.migration.protocol import MIB

HERE = Path(__file__).resolve().parent
DIRTIER_SOURCE = HERE / "dirtier.c"
BUSYBOX = Path("/bin/busybox")
XZ_MAGIC = b"\xfd7zXZ\x00"

READY_MARKER = "NOVACRON-READY"
ALIVE_MARKER = "NOVACRON-ALIVE"
CORRUPT_MARKER = "NOVACRON-CORRUPT"

INIT_SCRIPT = """#!/bin/busybox sh
/bin/busybox mkdir -p /proc /sys /dev /tmp
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
/bin/busybox mount -t devtmpfs devtmpfs /dev 2>/dev/null
echo "NOVACRON-INIT $(/bin/busybox cat /proc/cmdline)"
/dirtier
echo "NOVACRON-DIRTIER-EXITED status=$?"
while :; do /bin/busybox sleep 3600; done
"""

GUEST_RESIDENT_MIB = 51.0
GUEST_RESIDENT_MIB_PER_GIB = 20.0
"""Non-zero guest memory besides the dirtier's working set (kernel, initramfs, the kernel's page
tables, which grow with memory), from the bytes the idle lab runs sent (RESULTS_lab.md): about
56 MiB for a 256 MiB guest, 71 MiB for 1 GiB."""


def resident_mib(memory_mib: float) -> float:
    return GUEST_RESIDENT_MIB + GUEST_RESIDENT_MIB_PER_GIB * memory_mib / 1024.0


@dataclass(frozen=True)
class LabWorkload:
    """What a lab guest is told to hold so its memory is a drawn workload's: the dirtier's working
    set (``dirty_mib``) and a static fill (``fill_mib``, written once) on top of the kernel's floor."""

    memory_mib: int
    dirty_mib: int
    fill_mib: int
    dirty_rate_pages_s: int
    drawn_nonzero_mib: float

    @property
    def nonzero_mib(self) -> float:
        """The guest's non-zero memory: the kernel's floor, the fill and the working set."""
        return resident_mib(self.memory_mib) + self.fill_mib + self.dirty_mib

    def as_workload(self) -> GuestWorkload:
        """The guest as the core's planner and controller see a VM (the simulation's shape)."""
        return GuestWorkload(memory_bytes=self.memory_mib * MIB,
                             resident_bytes=round((resident_mib(self.memory_mib) + self.fill_mib) * MIB),
                             wws_bytes=self.dirty_mib * MIB, dirty_rate_pages_s=float(self.dirty_rate_pages_s))

    @property
    def excess_mib(self) -> float:
        """How much more non-zero memory the guest holds than was drawn (> 0: the kernel's floor
        plus the working set alone exceed the draw, so the fill is 0 and the guest is bigger)."""
        return max(self.nonzero_mib - self.drawn_nonzero_mib, 0.0)


def lab_workload(memory_mib: int, nonzero_mib: float, wws_mib: float, dirty_rate_pages_s: float) -> LabWorkload:
    """Size the fill so the guest's non-zero memory is the drawn ``nonzero_mib`` (to half a MiB: the
    dirtier counts whole MiB), never below the kernel's floor plus the working set."""
    dirty_mib = max(1, int(wws_mib))
    fill_mib = max(round(nonzero_mib - resident_mib(memory_mib) - dirty_mib), 0)
    return LabWorkload(memory_mib=memory_mib, dirty_mib=dirty_mib, fill_mib=fill_mib,
                       dirty_rate_pages_s=round(dirty_rate_pages_s), drawn_nonzero_mib=nonzero_mib)


class GuestBuildError(RuntimeError):
    """The guest image could not be built (no network for the kernel, no gcc, ...)."""


@dataclass(frozen=True)
class GuestImage:
    kernel_path: Path
    initrd_path: Path


def _run(*argv: str, cwd: Path | None = None) -> str:
    try:
        done = subprocess.run(argv, cwd=cwd, check=True, capture_output=True, text=True)
    except FileNotFoundError as exc:
        raise GuestBuildError(f"{argv[0]} is not installed") from exc
    except subprocess.CalledProcessError as exc:
        raise GuestBuildError(f"{' '.join(argv)} failed: {exc.stderr.strip()[-500:]}") from exc
    return done.stdout


def kernel_package_name() -> str:
    """The versioned kernel package (``linux-image-6.1.0-NN-amd64``) the meta package points at."""
    out = _run("apt-cache", "depends", "linux-image-amd64")
    match = re.search(r"Depends:\s*(linux-image-\S+-amd64)", out)
    if not match:
        raise GuestBuildError("apt-cache does not know linux-image-amd64; is this a Debian-like system?")
    return match.group(1)


def extract_vmlinux(bzimage: bytes) -> bytes:
    """The ELF kernel inside a bzImage: the xz stream that starts at the xz magic."""
    start = bzimage.find(XZ_MAGIC)
    if start < 0:
        raise GuestBuildError("no xz payload in the kernel image (not an xz-compressed bzImage)")
    decompressor = lzma.LZMADecompressor(format=lzma.FORMAT_XZ)
    elf = decompressor.decompress(bzimage[start:])
    if not elf.startswith(b"\x7fELF"):
        raise GuestBuildError("the kernel's xz payload is not an ELF image")
    return elf


def ensure_kernel(cache_dir: Path) -> Path:
    """Download (once) the Debian kernel and cache its decompressed ELF ``vmlinux``."""
    cached = sorted(cache_dir.glob("vmlinux-*"))
    if cached:
        return cached[-1]
    package = kernel_package_name()
    with tempfile.TemporaryDirectory(dir=cache_dir) as scratch_name:
        scratch = Path(scratch_name)
        _run("apt-get", "download", package, cwd=scratch)
        debs = list(scratch.glob("*.deb"))
        if not debs:
            raise GuestBuildError(f"apt-get download {package} produced no .deb")
        _run("dpkg", "-x", str(debs[0]), str(scratch / "root"))
        images = sorted((scratch / "root" / "boot").glob("vmlinuz-*"))
        if not images:
            raise GuestBuildError(f"{package} contains no /boot/vmlinuz-*")
        version = images[0].name.removeprefix("vmlinuz-")
        target = cache_dir / f"vmlinux-{version}"
        partial = target.with_suffix(".partial")
        partial.write_bytes(extract_vmlinux(images[0].read_bytes()))
        partial.replace(target)  # atomic: a half-written kernel is never picked up as cached
    return target


def _initrd_key() -> str:
    digest = hashlib.sha256()
    digest.update(DIRTIER_SOURCE.read_bytes())
    digest.update(INIT_SCRIPT.encode())
    digest.update(BUSYBOX.read_bytes() if BUSYBOX.exists() else b"")
    return digest.hexdigest()[:16]


def ensure_initrd(cache_dir: Path) -> Path:
    """Build (once per input hash) the gzip'd newc initramfs: busybox, /init and the dirtier."""
    target = cache_dir / f"initrd-{_initrd_key()}.cpio.gz"
    if target.exists():
        return target
    if not BUSYBOX.exists():
        raise GuestBuildError("/bin/busybox is missing: install busybox-static")
    with tempfile.TemporaryDirectory(dir=cache_dir) as scratch_name:
        root = Path(scratch_name) / "root"
        for sub in ("bin", "proc", "sys", "dev", "tmp"):
            (root / sub).mkdir(parents=True)
        shutil.copy2(BUSYBOX, root / "bin" / "busybox")
        (root / "bin" / "sh").symlink_to("busybox")
        (root / "init").write_text(INIT_SCRIPT)
        (root / "init").chmod(0o755)
        _run("gcc", "-O2", "-static", "-o", str(root / "dirtier"), str(DIRTIER_SOURCE))
        names = sorted(str(p.relative_to(root)) for p in root.rglob("*"))
        archive = subprocess.run([str(BUSYBOX), "cpio", "-o", "-H", "newc"], cwd=root, check=True,
                                 input="\n".join(names).encode() + b"\n", capture_output=True).stdout
        partial = target.with_suffix(".partial")
        partial.write_bytes(gzip.compress(archive, compresslevel=6))
        partial.replace(target)
    for stale in cache_dir.glob("initrd-*.cpio.gz"):
        if stale != target:
            stale.unlink()
    return target


def ensure_guest(cache_dir: Path) -> GuestImage:
    cache_dir.mkdir(parents=True, exist_ok=True)
    os.chmod(cache_dir, 0o755)  # QEMU (running as root here, but maybe not elsewhere) reads it
    return GuestImage(ensure_kernel(cache_dir), ensure_initrd(cache_dir))


@dataclass(frozen=True)
class GuestSpec:
    """One dirtying guest: its size and workload, and where its serial console is written."""

    name: str
    memory_mib: int = 256
    dirty_mib: int = 64
    dirty_rate_pages_s: int = 2000
    fill_mib: int = 0
    """Non-zero memory the dirtier writes once and never again (to size the guest's resident memory)."""
    domain_type: str = "qemu"
    emulator: str | None = None
    """QEMU binary (or wrapper) libvirt runs; None: libvirt's default for the domain type."""
    disk_path: str | None = None
    """A qcow2 image attached as ``vda`` (the path as the host's libvirtd sees it); None: no disk."""

    def kernel_cmdline(self) -> str:
        return (f"console=ttyS0 panic=-1 loglevel=5 dirty_mib={self.dirty_mib} "
                f"dirty_rate={self.dirty_rate_pages_s} fill_mib={self.fill_mib}")


SERIAL_LOG_DIR_IN_HOST = "/var/log/libvirt/qemu"
"""The serial log's directory as the host's libvirtd sees it; each lab host bind-mounts its own
private directory there, so one domain XML gives each host its own console file."""


def serial_log_path(name: str) -> str:
    return f"{SERIAL_LOG_DIR_IN_HOST}/{name}-serial.log"


def disk_xml(path: str | None) -> str:
    """One qcow2 disk on virtio-blk. The guest's kernel has no virtio-blk driver in its initramfs,
    so the guest never touches it: QEMU holds it open, and block migration copies it."""
    if path is None:
        return ""
    return (f"\n    <disk type='file' device='disk'>\n      <driver name='qemu' type='qcow2' cache='none'/>"
            f"\n      <source file='{escape(path)}'/>\n      <target dev='vda' bus='virtio'/>\n    </disk>")


def domain_xml(spec: GuestSpec, image: GuestImage) -> str:
    """libvirt XML for the guest: no network, an optional disk, the serial console to a file."""
    emulator = f"\n    <emulator>{escape(spec.emulator)}</emulator>" if spec.emulator else ""
    first_devices = emulator + disk_xml(spec.disk_path)
    return f"""<domain type='{escape(spec.domain_type)}'>
  <name>{escape(spec.name)}</name>
  <memory unit='MiB'>{spec.memory_mib}</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>{escape(str(image.kernel_path))}</kernel>
    <initrd>{escape(str(image.initrd_path))}</initrd>
    <cmdline>{escape(spec.kernel_cmdline())}</cmdline>
  </os>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>destroy</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>{first_devices}
    <controller type='usb' model='none'/>
    <serial type='file'>
      <source path='{escape(serial_log_path(spec.name))}' append='off'/>
      <target port='0'/>
    </serial>
    <memballoon model='none'/>
  </devices>
</domain>
"""

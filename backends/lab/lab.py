"""The libvirt lab: bring two hosts and the tiny guest up, report status, tear everything down.

Theory of operation
-------------------
``up`` is idempotent: it installs nothing itself (``scripts/test`` installs the Debian packages),
builds or reuses the cached guest, decides the domain type once (a boot test, because libvirt
claims KVM on machines where it does not work), starts each host's libvirtd unless it already
runs, and opens one connection per host so libvirt's capability probing is paid here rather than
in the first test. It records what it started in ``lab.json`` in the state directory; tests and
``novacron calibrate`` read that file. ``down`` stops every process in each host's namespace and
removes the state directory; it is safe to call when nothing runs (the test command's trap calls
it on every exit).

Directories: the cache (kernel, initramfs, libvirt capability caches, the KVM verdict) survives
between runs, ``$NOVACRON_LAB_CACHE`` or ``/var/cache/novacron-lab``; the state (sockets, pid
files, host roots) is per run, ``$NOVACRON_LAB_STATE`` or ``/run/novacron-lab``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from backends.lab.guest import READY_MARKER, GuestImage, GuestSpec, ensure_guest
from backends.lab.hosts import LabHost, host_is_running, host_processes, start_host, stop_host

DEFAULT_CACHE_DIR = Path("/var/cache/novacron-lab")
DEFAULT_STATE_DIR = Path("/run/novacron-lab")
HOST_COUNT = 2
DOMAIN_TYPES = ("qemu", "kvm")
KVM_BOOT_TIMEOUT_S = 10.0
"""A working KVM boots the guest to its ready marker in about a second."""


class LabError(RuntimeError):
    """The lab cannot come up here (not root, packages missing, ...); the message says why."""


@dataclass(frozen=True)
class LabInfo:
    """What a running lab offers: host URIs, the guest image and the domain type to use."""

    hosts: tuple[LabHost, ...]
    image: GuestImage
    domain_type: str
    emulator: str | None = None

    def guest(self, name: str, **workload: int) -> GuestSpec:
        return GuestSpec(name=name, domain_type=self.domain_type, emulator=self.emulator, **workload)


def cache_dir() -> Path:
    return Path(os.environ.get("NOVACRON_LAB_CACHE", DEFAULT_CACHE_DIR))


def state_dir() -> Path:
    return Path(os.environ.get("NOVACRON_LAB_STATE", DEFAULT_STATE_DIR))


def lab_hosts() -> tuple[LabHost, ...]:
    return tuple(LabHost(i, state_dir() / f"host{i}", cache_dir() / f"libvirt-cache-host{i}")
                 for i in range(HOST_COUNT))


def _check_prerequisites() -> None:
    if os.geteuid() != 0:
        raise LabError("the lab needs root (libvirtd, mount namespaces, QEMU)")
    missing = [tool for tool in ("libvirtd", "qemu-system-x86_64", "unshare", "gcc") if not shutil.which(tool)]
    if missing:
        raise LabError(f"missing programs: {', '.join(missing)} (scripts/test installs the Debian packages)")


def kvm_boots(image: GuestImage, timeout_s: float = KVM_BOOT_TIMEOUT_S) -> bool:
    """Boot the guest under KVM with QEMU directly: True only if it reaches the ready marker."""
    if not os.access("/dev/kvm", os.R_OK | os.W_OK):
        return False
    with tempfile.TemporaryDirectory() as scratch:
        log = Path(scratch) / "serial.log"
        spec = GuestSpec(name="kvm-probe", memory_mib=128, dirty_mib=8, dirty_rate_pages_s=10)
        argv = ["qemu-system-x86_64", "-accel", "kvm", "-m", "128", "-smp", "1", "-display", "none",
                "-nic", "none", "-nodefaults", "-no-user-config", "-serial", f"file:{log}",
                "-kernel", str(image.kernel_path), "-initrd", str(image.initrd_path),
                "-append", spec.kernel_cmdline()]
        qemu = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            deadline = time.monotonic() + timeout_s
            while time.monotonic() < deadline and qemu.poll() is None:
                if log.exists() and READY_MARKER in log.read_text(errors="replace"):
                    return True
                time.sleep(0.2)
            return False
        finally:
            qemu.kill()
            qemu.wait()


def decide_domain_type(image: GuestImage) -> str:
    """``$NOVACRON_LAB_DOMAIN_TYPE`` (qemu|kvm) if set, else a cached KVM boot test's verdict."""
    configured = os.environ.get("NOVACRON_LAB_DOMAIN_TYPE", "auto")
    if configured in DOMAIN_TYPES:
        return configured
    if configured != "auto":
        raise LabError(f"NOVACRON_LAB_DOMAIN_TYPE={configured!r}; allowed: auto, qemu, kvm")
    verdict_file = cache_dir() / f"domain-type-{image.kernel_path.name}"
    if verdict_file.exists():
        return verdict_file.read_text().strip()
    verdict = "kvm" if kvm_boots(image) else "qemu"
    verdict_file.write_text(verdict + "\n")
    return verdict


TCG_WRAPPER_SOURCE = Path(__file__).resolve().parent / "qemu-tcg-wrapper.sh"


def install_tcg_wrapper() -> str:
    """Copy the QEMU wrapper that avoids QEMU < 9.0's TCG dirty-tracking bug (see the script)."""
    target = cache_dir() / "qemu-tcg-wrapper"
    text = TCG_WRAPPER_SOURCE.read_text()
    if not target.exists() or target.read_text() != text:
        partial = target.with_suffix(".partial")
        partial.write_text(text)
        partial.chmod(0o755)
        partial.replace(target)
    return str(target)


def _warm_connection(host: LabHost, emulator: str | None) -> None:
    """Open one connection and ask for the capabilities of the QEMU binaries the lab uses: the
    first asks pay libvirt's capability probing (seconds each), here rather than in a test."""
    try:
        import libvirt
    except ImportError:
        return  # libvirt-python is not installed: nothing to warm, the tests will say so
    try:
        conn = libvirt.open(host.uri)
    except libvirt.libvirtError as exc:
        log_tail = host.log_file.read_text(errors="replace").strip().splitlines()[-3:] if host.log_file.exists() else []
        raise LabError(f"{host.name}: cannot connect to {host.uri}: {exc}; log: {' | '.join(log_tail)}") from exc
    try:
        conn.getCapabilities()
        if emulator:
            conn.getDomainCapabilities(emulator, "x86_64", None, "qemu", 0)
    finally:
        conn.close()


def up() -> LabInfo:
    _check_prerequisites()
    image = ensure_guest(cache_dir())
    domain_type = decide_domain_type(image)
    hosts = lab_hosts()
    state_dir().mkdir(parents=True, exist_ok=True)
    for host in hosts:
        start_host(host)
    emulator = install_tcg_wrapper() if domain_type == "qemu" else None
    try:
        for host in hosts:
            _warm_connection(host, emulator)
    except LabError:
        down()
        raise
    info = LabInfo(hosts, image, domain_type, emulator)
    _write_info(info)
    return info


def guest_only() -> LabInfo:
    """The guest image and domain type for hosts that are not the lab's (``calibrate --hosts``):
    no daemons are started here; the image's paths must exist on those hosts too."""
    image = ensure_guest(cache_dir())
    domain_type = decide_domain_type(image)
    return LabInfo(lab_hosts(), image, domain_type, install_tcg_wrapper() if domain_type == "qemu" else None)


def _write_info(info: LabInfo) -> None:
    record = {
        "hosts": [{"name": h.name, "index": h.index, "uri": h.uri, "root": str(h.root),
                   "cache_dir": str(h.cache_dir)} for h in info.hosts],
        "kernel": str(info.image.kernel_path), "initrd": str(info.image.initrd_path),
        "domain_type": info.domain_type, "emulator": info.emulator,
    }
    (state_dir() / "lab.json").write_text(json.dumps(record, indent=2) + "\n")


def running_lab() -> LabInfo | None:
    """The lab described by ``lab.json`` if every host in it is running, else None."""
    try:
        record = json.loads((state_dir() / "lab.json").read_text())
    except (OSError, ValueError):
        return None
    hosts = tuple(LabHost(h["index"], Path(h["root"]), Path(h["cache_dir"])) for h in record["hosts"])
    if not all(host_is_running(h) for h in hosts):
        return None
    return LabInfo(hosts, GuestImage(Path(record["kernel"]), Path(record["initrd"])), record["domain_type"],
                   record.get("emulator"))


def down() -> list[str]:
    """Stop every lab host and remove the state directory. Returns what was stopped."""
    stopped = []
    for host in lab_hosts():
        if host_processes(host):
            stopped.append(host.name)
        stop_host(host)
    shutil.rmtree(state_dir(), ignore_errors=True)
    return stopped


def status_lines() -> list[str]:
    lines = [f"cache: {cache_dir()}", f"state: {state_dir()}"]
    info = running_lab()
    for host in lab_hosts():
        pids = host_processes(host)
        state = f"running ({len(pids)} processes)" if host_is_running(host) else "stopped"
        lines.append(f"{host.name}: {state}  {host.uri}")
    if info:
        lines.append(f"guest: {info.image.kernel_path.name}, {info.image.initrd_path.name}, "
                     f"domain type {info.domain_type}, emulator {info.emulator or 'default'}")
    return lines

"""Two libvirt "hosts" on one machine: libvirtd daemons in private mount namespaces.

Theory of operation
-------------------
libvirtd keeps its state under fixed paths (``/run/libvirt``, ``/var/lib/libvirt``,
``/var/log/libvirt``, ``/var/cache/libvirt``, ``/etc/libvirt``). To run two independent daemons
on one machine, each is started by ``unshare -m --propagation private`` with a host-private
directory bind-mounted over every one of those paths, its own ``unix_sock_dir`` (reached as
``qemu:///system?socket=...``), its own ``host_uuid`` (``dmidecode`` fails here) and its own
migration port range. The QEMU processes a daemon starts inherit its namespace, so "every process
in host N's mount namespace" is exactly host N: ``kill_host`` SIGKILLs them all, which is how a
test crashes a host, and ``stop_host`` does the same after a polite SIGTERM. Without systemd,
libvirt needs a ``qemu.conf`` that runs QEMU as root without cgroups or a security driver, and
the ``libvirt-qemu`` user to exist (facts measured in ../shared/LAB.md). ``namespaces = [ ]``
keeps each QEMU in its daemon's namespace (libvirt otherwise gives every QEMU a mount namespace
of its own, and a host's "crash" would leave its QEMUs running).

The capability cache (``/var/cache/libvirt``) lives in the persistent lab cache, so only the very
first start pays libvirt's ~8 s QEMU probing.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

PRIVATE_MOUNTS = {  # path inside the host -> subdirectory of the host's private root
    "/run/libvirt": "run",
    "/var/lib/libvirt": "lib",
    "/var/log/libvirt": "log",
    "/etc/libvirt": "etc",
}
CACHE_MOUNT = "/var/cache/libvirt"
MIGRATION_PORTS_PER_HOST = 32
FIRST_MIGRATION_PORT = 49152

QEMU_CONF = """user = "root"
group = "root"
dynamic_ownership = 0
security_driver = "none"
stdio_handler = "file"
cgroup_controllers = [ ]
namespaces = [ ]
migration_port_min = {port_min}
migration_port_max = {port_max}
"""

LIBVIRTD_CONF = """unix_sock_dir = "{sock_dir}"
unix_sock_rw_perms = "0700"
auth_unix_rw = "none"
auth_unix_ro = "none"
host_uuid = "{host_uuid}"
log_outputs = "3:file:{log_file}"
keepalive_interval = 5
keepalive_count = 5
"""


class LabHostError(RuntimeError):
    """A lab host could not be started or reached."""


@dataclass(frozen=True)
class LabHost:
    """One libvirtd "host": where its private files live and how to reach it."""

    index: int
    root: Path
    cache_dir: Path

    @property
    def name(self) -> str:
        return f"host{self.index}"

    @property
    def socket_path(self) -> Path:
        return self.root / "sock" / "libvirt-sock"

    @property
    def uri(self) -> str:
        return f"qemu:///system?socket={self.socket_path}"

    @property
    def pid_file(self) -> Path:
        return self.root / "libvirtd.pid"

    @property
    def log_file(self) -> Path:
        return self.root / "libvirtd.log"

    def serial_log(self, domain_name: str) -> Path:
        """The domain's serial console file as seen from outside the host's namespace."""
        return self.root / "log" / "qemu" / f"{domain_name}-serial.log"

    def host_uuid(self) -> str:
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"novacron-lab:{self.root}"))


def _ensure_qemu_user() -> None:
    if subprocess.run(["getent", "passwd", "libvirt-qemu"], capture_output=True).returncode == 0:
        return
    subprocess.run(["useradd", "-r", "-U", "-M", "-d", "/var/lib/libvirt", "-s", "/usr/sbin/nologin",
                    "libvirt-qemu"], check=True, capture_output=True)


def _write_config(host: LabHost) -> None:
    for sub in (*PRIVATE_MOUNTS.values(), "sock"):
        (host.root / sub).mkdir(parents=True, exist_ok=True)
    for sub in ("log/qemu", "lib/qemu", "run/qemu", "etc/qemu"):
        (host.root / sub).mkdir(parents=True, exist_ok=True)
    host.cache_dir.mkdir(parents=True, exist_ok=True)
    port_min = FIRST_MIGRATION_PORT + host.index * MIGRATION_PORTS_PER_HOST
    (host.root / "etc" / "qemu.conf").write_text(
        QEMU_CONF.format(port_min=port_min, port_max=port_min + MIGRATION_PORTS_PER_HOST - 1))
    (host.root / "libvirtd.conf").write_text(LIBVIRTD_CONF.format(
        sock_dir=host.socket_path.parent, host_uuid=host.host_uuid(), log_file=host.log_file))


def _namespace_script(host: LabHost) -> str:
    mounts = [(host.root / sub, target) for target, sub in PRIVATE_MOUNTS.items()]
    mounts.append((host.cache_dir, CACHE_MOUNT))
    lines = [f"mkdir -p {shlex.quote(target)} && mount --bind {shlex.quote(str(src))} {shlex.quote(target)}"
             for src, target in mounts]
    lines.append(f"exec libvirtd -d -f {shlex.quote(str(host.root / 'libvirtd.conf'))} "
                 f"-p {shlex.quote(str(host.pid_file))}")
    return " && ".join(lines)


def process_alive(pid: int) -> bool:
    """True for a live process; a zombie (killed, not yet reaped by its parent) counts as gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def read_pid(pid_file: Path) -> int | None:
    try:
        pid = int(pid_file.read_text().strip())
    except (OSError, ValueError):
        return None
    return pid if process_alive(pid) else None


def host_is_running(host: LabHost) -> bool:
    return read_pid(host.pid_file) is not None and host.socket_path.exists()


def start_host(host: LabHost, timeout_s: float = 30.0) -> None:
    """Start the host's libvirtd (idempotent) and wait for its socket."""
    if host_is_running(host):
        return
    _ensure_qemu_user()
    _write_config(host)
    host.socket_path.unlink(missing_ok=True)
    done = subprocess.run(["unshare", "-m", "--propagation", "private", "sh", "-c", _namespace_script(host)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        raise LabHostError(f"{host.name}: libvirtd failed to start: {done.stderr.strip()[-400:]}")
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        pid = read_pid(host.pid_file)
        if pid is not None and host.socket_path.exists():
            (host.root / "mntns").write_text(os.readlink(f"/proc/{pid}/ns/mnt"))
            return
        time.sleep(0.1)
    raise LabHostError(f"{host.name}: no libvirtd socket at {host.socket_path} after {timeout_s:g} s; "
                       f"see {host.log_file}")


def host_processes(host: LabHost) -> list[int]:
    """Every process in the host's mount namespace: its libvirtd and the QEMUs it started."""
    try:
        namespace = (host.root / "mntns").read_text().strip()
    except OSError:
        return []
    if namespace == os.readlink("/proc/self/ns/mnt"):
        return []  # never the caller's own namespace: that would be every process on the machine
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            if os.readlink(entry / "ns" / "mnt") == namespace:
                pids.append(int(entry.name))
        except OSError:
            continue  # the process exited while we looked
    return pids


def kill_host(host: LabHost) -> list[int]:
    """Crash the host: SIGKILL libvirtd and every QEMU it runs. Returns the pids killed."""
    pids = host_processes(host)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    _wait_gone(pids, 5.0)
    return pids


def stop_host(host: LabHost, grace_s: float = 3.0) -> None:
    """Stop the host: SIGTERM its processes, SIGKILL what is left after ``grace_s``."""
    pids = host_processes(host)
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
    if not _wait_gone(pids, grace_s):
        kill_host(host)
    for stale in (host.pid_file, host.socket_path, host.root / "mntns"):
        stale.unlink(missing_ok=True)


def _wait_gone(pids: list[int], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if not any(process_alive(pid) for pid in pids):
            return True
        time.sleep(0.05)
    return False

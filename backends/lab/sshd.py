"""A private sshd on loopback, so the lab's hosts can be reached as ``qemu+ssh://`` hosts.

Theory of operation
-------------------
A user's own hosts are reached over ssh (``qemu+ssh://user@host/system``): libvirt runs the
``ssh`` binary and, on the far side, ``virt-ssh-helper`` (or ``nc``) to reach libvirtd's socket.
To test that path without other machines, ``LoopbackSshd`` starts OpenSSH's ``sshd`` with a
private configuration on a private port of 127.0.0.1: its own host key, one client key pair
(key authentication only, no passwords, no PAM) and its own pid and log files, all in a state
directory. ``ssh_uri`` turns a lab host into an ssh URI; the ssh command libvirt runs is a
small wrapper in the state directory that keeps the host key in a private ``known_hosts`` (root's
own ``~/.ssh`` is never touched) and never prompts.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from backends.ports import free_port

SSHD = Path("/usr/sbin/sshd")
PRIVILEGE_SEPARATION_DIR = Path("/run/sshd")

SSHD_CONFIG = """Port {port}
ListenAddress 127.0.0.1
HostKey {root}/host_ed25519
PidFile {root}/sshd.pid
AuthorizedKeysFile {root}/authorized_keys
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UsePAM no
StrictModes no
"""

SSH_WRAPPER = """#!/bin/sh
# libvirt's ssh transport runs this instead of ssh: a private known_hosts, never a prompt.
exec ssh -o UserKnownHostsFile={root}/known_hosts -o StrictHostKeyChecking=accept-new \\
    -o BatchMode=yes -o LogLevel=ERROR -o IdentitiesOnly=yes -i {root}/client_ed25519 "$@"
"""


class SshdError(RuntimeError):
    """The private sshd could not start (openssh-server missing, port taken, ...)."""


@dataclass
class LoopbackSshd:
    root: Path
    port: int = 0

    @property
    def ssh_command(self) -> Path:
        return self.root / "ssh"

    @property
    def pid_file(self) -> Path:
        return self.root / "sshd.pid"

    def start(self, timeout_s: float = 10.0) -> LoopbackSshd:
        if not SSHD.exists():
            raise SshdError(f"{SSHD} is missing: install openssh-server (scripts/test installs it)")
        self.root.mkdir(parents=True, exist_ok=True)
        PRIVILEGE_SEPARATION_DIR.mkdir(mode=0o755, exist_ok=True)
        self.port = self.port or free_port()
        for key in ("host_ed25519", "client_ed25519"):
            if not (self.root / key).exists():
                subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(self.root / key)],
                               check=True, capture_output=True)
        shutil.copyfile(self.root / "client_ed25519.pub", self.root / "authorized_keys")
        (self.root / "sshd_config").write_text(SSHD_CONFIG.format(port=self.port, root=self.root))
        self.ssh_command.write_text(SSH_WRAPPER.format(root=self.root))
        self.ssh_command.chmod(0o755)
        done = subprocess.run([str(SSHD), "-f", str(self.root / "sshd_config"), "-E", str(self.root / "sshd.log")],
                              capture_output=True, text=True)
        if done.returncode != 0:
            raise SshdError(f"sshd failed to start: {done.stderr.strip()[-300:]}")
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", self.port)) == 0:
                    return self
            time.sleep(0.05)
        raise SshdError(f"sshd did not listen on 127.0.0.1:{self.port} within {timeout_s:g} s")

    def stop(self) -> None:
        try:
            pid = int(self.pid_file.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGTERM)
        self.pid_file.unlink(missing_ok=True)

    def ssh_uri(self, socket_path: Path, user: str = "root") -> str:
        """``qemu+ssh://`` to the libvirtd listening on ``socket_path`` of this (loopback) host."""
        return (f"qemu+ssh://{user}@127.0.0.1:{self.port}/system?socket={quote(str(socket_path))}"
                f"&command={quote(str(self.ssh_command))}&no_tty=1")

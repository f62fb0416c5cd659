"""N real PBFT replica processes on loopback (``python -m backends.bft.process``): tests and benchmarks.

Each replica gets a free port and a data directory under ``base_dir``; its output goes to
``r<id>.log`` there. ``close()`` SIGKILLs every process it started, so a failing test leaves
nothing running.
"""

from __future__ import annotations

import signal
import subprocess
import sys
from pathlib import Path

from backends.manager.localcluster import REPO_ROOT
from backends.ports import free_ports


class LocalBftCluster:
    def __init__(self, base_dir: Path, n: int = 4, *, key_seed: int = 21) -> None:
        self.base_dir = base_dir
        self.key_seed = key_seed
        base_dir.mkdir(parents=True, exist_ok=True)
        ports = free_ports(n)
        self.peers = {i: ("127.0.0.1", ports[i - 1]) for i in range(1, n + 1)}
        self.processes: dict[int, subprocess.Popen[bytes]] = {}

    def start(self, replica: int, byzantine: str = "") -> None:
        peers = ",".join(f"{i}={h}:{p}" for i, (h, p) in self.peers.items())
        args = [sys.executable, "-m", "backends.bft.process", "--id", str(replica), "--peers", peers,
                "--data-dir", str(self.base_dir / f"r{replica}"), "--key-seed", str(self.key_seed)]
        if byzantine:
            args += ["--byzantine", byzantine]
        log = (self.base_dir / f"r{replica}.log").open("ab")
        self.processes[replica] = subprocess.Popen(args, cwd=REPO_ROOT, stdout=log, stderr=subprocess.STDOUT)
        log.close()

    def start_all(self) -> None:
        for replica in self.peers:
            self.start(replica)

    def kill(self, replica: int) -> None:
        process = self.processes.pop(replica)
        process.send_signal(signal.SIGKILL)
        process.wait(10)

    def close(self) -> None:
        for replica in list(self.processes):
            self.kill(replica)

    def logs(self) -> str:
        return "\n".join(f"--- replica {p.stem} ---\n{p.read_text()[-2000:]}"
                         for p in sorted(self.base_dir.glob("r*.log")))

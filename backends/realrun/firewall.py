"""A partition of real managers on loopback, with nftables (LAB.md: no ``tc netem`` here).

Each manager listens and dials from its own loopback address (``127.0.0.<id>``,
``LocalCluster(distinct_addresses=True)``), so a private ``ip`` table of the run can drop the Raft
traffic between one manager and the others -- both directions: a symmetric partition -- while
the client ports stay reachable. ``heal`` deletes the table; so does ``close`` (idempotent), so a
failed run leaves no rule behind. Needs root and ``nft``.
"""

from __future__ import annotations

import os
import shutil
import subprocess

from novacron.config import ConfigError


def require_nft(key: str) -> None:
    if os.geteuid() != 0 or shutil.which("nft") is None:
        raise ConfigError(f"{key} > 0 with --runtime real needs root and nft (apt-get install nftables); "
                          "allowed: 0 without them")


class LoopbackPartition:
    def __init__(self) -> None:
        self.table = f"novacron_realrun_{os.getpid()}"
        self.active = False

    def isolate(self, address: tuple[str, int], others: list[tuple[str, int]]) -> None:
        host, port = address
        other_hosts = ", ".join(h for h, _ in others)
        other_ports = ", ".join(str(p) for _, p in others)
        script = (f"table ip {self.table} {{\n  chain output {{\n"
                  "    type filter hook output priority 0; policy accept;\n"
                  f"    ip saddr {host} tcp dport {{ {other_ports} }} drop\n"
                  f"    ip saddr {{ {other_hosts} }} ip daddr {host} tcp dport {port} drop\n  }}\n}}\n")
        subprocess.run(["nft", "-f", "-"], input=script, text=True, check=True, capture_output=True)
        self.active = True

    def heal(self) -> None:
        if self.active:
            subprocess.run(["nft", "delete", "table", "ip", self.table], capture_output=True)
            self.active = False

    def close(self) -> None:
        self.heal()

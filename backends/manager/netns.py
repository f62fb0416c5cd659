"""Network namespaces for real managers: one namespace each, veth pairs into a bridge, nftables faults.

Theory of operation
-------------------
``NetnsRig`` builds, as root, one hub namespace holding a Linux bridge and one namespace per
member (each manager, plus one for the clients). Every member gets a veth pair: ``eth0`` inside
the member with an address in ``SUBNET`` (a private /24 that exists only inside these
namespaces -- nothing is ever routed to or from the host's own networks), the other end a port
of the bridge. Nothing is added to the root namespace.

Faults below TCP are nftables rules in each manager's ``inet novacron_nemesis`` table (LAB.md:
this kernel has no ``tc netem``):

- ``cut(src, dst)``: drop every packet from ``src``'s address arriving at ``dst`` -- a one-way
  cut; both directions make a partition. Because TCP needs its ACKs, a one-way cut also stalls
  the reverse connection once its window is full, as it would on a real network.
- ``set_loss(percent)``: ``numgen random mod 100 < percent drop`` on manager-to-manager packets
  (TCP retransmits them, so it shows as delay and stalls, not as lost messages).
- ``heal()``: flush the rules.

Delay, jitter, reordering and duplication are done per frame by ``linkstage`` (a userspace
stage), since netem is missing. Namespace names carry the owning process id
(``ncmf<pid>...``); ``down()`` removes them, and ``up()`` first removes leftovers of a dead
process with the same prefix (a run killed before its cleanup).
"""

from __future__ import annotations

import os
import re
import subprocess
from collections.abc import Sequence

SUBNET = "10.251.73"
"""An unusual private /24, used only inside the rig's namespaces."""
PREFIX = "ncmf"
CLIENT_ID = 0
HUB_BRIDGE = "br0"
NFT_TABLE = "novacron_nemesis"


class RigUnavailable(RuntimeError):
    """Namespaces, veths or nftables could not be set up here (not root, no nft, ...)."""


def address(member: int) -> str:
    """Member 0 is the clients' namespace; managers 1..N are ``SUBNET.11``, ``.12``, ..."""
    return f"{SUBNET}.{2 if member == CLIENT_ID else 10 + member}"


def run(argv: Sequence[str], *, input_text: str | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(list(argv), input=input_text, capture_output=True, text=True, timeout=30)
    if check and done.returncode != 0:
        raise RigUnavailable(f"{' '.join(argv)}: {done.stderr.strip() or done.stdout.strip()}")
    return done


class NetnsRig:
    def __init__(self, manager_ids: Sequence[int], tag: str | None = None) -> None:
        self.manager_ids = list(manager_ids)
        self.tag = tag or str(os.getpid())
        self.hub = f"{PREFIX}{self.tag}h"
        self.created: list[str] = []

    def namespace(self, member: int) -> str:
        return f"{PREFIX}{self.tag}{'c' if member == CLIENT_ID else f'm{member}'}"

    def exec_argv(self, member: int, argv: Sequence[str]) -> list[str]:
        """``argv`` run inside ``member``'s namespace (``ip netns exec`` execs it: same pid)."""
        return ["ip", "netns", "exec", self.namespace(member), *argv]

    # -- building and removing -------------------------------------------------------------------

    def up(self) -> None:
        if os.geteuid() != 0:
            raise RigUnavailable("network namespaces need root")
        remove_stale_namespaces()
        try:
            self._add_namespace(self.hub)
            run(["ip", "-n", self.hub, "link", "add", HUB_BRIDGE, "type", "bridge"])
            run(["ip", "-n", self.hub, "link", "set", HUB_BRIDGE, "up"])
            for member in [CLIENT_ID, *self.manager_ids]:
                self._add_member(member)
            for manager_id in self.manager_ids:
                self._nft(manager_id, f"add table inet {NFT_TABLE}\n"
                                      f"add chain inet {NFT_TABLE} input {{ type filter hook input priority 0; }}\n")
        except (RigUnavailable, FileNotFoundError) as exc:
            self.down()
            raise RigUnavailable(str(exc)) from None

    def _add_namespace(self, name: str) -> None:
        run(["ip", "netns", "add", name])
        self.created.append(name)
        run(["ip", "-n", name, "link", "set", "lo", "up"])

    def _add_member(self, member: int) -> None:
        ns = self.namespace(member)
        self._add_namespace(ns)
        hub_end = f"v{member}"
        run(["ip", "-n", self.hub, "link", "add", hub_end, "type", "veth", "peer", "name", "eth0", "netns", ns])
        run(["ip", "-n", self.hub, "link", "set", hub_end, "master", HUB_BRIDGE, "up"])
        run(["ip", "-n", ns, "addr", "add", f"{address(member)}/24", "dev", "eth0"])
        run(["ip", "-n", ns, "link", "set", "eth0", "up"])

    def down(self) -> None:
        for name in reversed(self.created):
            run(["ip", "netns", "del", name], check=False)
        self.created.clear()

    # -- faults ----------------------------------------------------------------------------------

    def _nft(self, manager_id: int, script: str) -> None:
        run(self.exec_argv(manager_id, ["nft", "-f", "-"]), input_text=script)

    def cut(self, src: int, dst: int) -> None:
        """Drop every packet from manager ``src`` arriving at manager ``dst`` (one way)."""
        self._nft(dst, f"add rule inet {NFT_TABLE} input ip saddr {address(src)} drop\n")

    def partition(self, side: Sequence[int]) -> None:
        """Cut ``side`` from the other managers in both directions."""
        other = [m for m in self.manager_ids if m not in side]
        for a in side:
            for b in other:
                self.cut(a, b)
                self.cut(b, a)

    def set_loss(self, percent: int) -> None:
        peers = ", ".join(address(m) for m in self.manager_ids)
        for manager_id in self.manager_ids:
            self._nft(manager_id, f"add rule inet {NFT_TABLE} input ip saddr {{ {peers} }} "
                                  f"numgen random mod 100 < {percent} drop\n")

    def heal(self) -> None:
        for manager_id in self.manager_ids:
            self._nft(manager_id, f"flush chain inet {NFT_TABLE} input\n")

    def rules(self, manager_id: int) -> str:
        return run(self.exec_argv(manager_id, ["nft", "list", "table", "inet", NFT_TABLE])).stdout


def remove_stale_namespaces() -> None:
    """Delete rig namespaces whose creating process is gone (a run killed before ``down``)."""
    listed = run(["ip", "netns", "list"], check=False).stdout
    for line in listed.splitlines():
        name = line.split()[0] if line.split() else ""
        match = re.fullmatch(rf"{PREFIX}(\d+)(h|c|m\d+)", name)
        if match and not os.path.exists(f"/proc/{match.group(1)}"):
            run(["ip", "netns", "del", name], check=False)

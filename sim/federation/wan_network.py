"""The federation's network: one ``NetworkModel`` whose links follow the WAN matrix.

Node ``c + 1`` is cluster ``c``'s representative (its federation Raft member and the end point of
its gossip and delegation messages). Links between clusters of different datacenters get the
matrix's round trip, a jitter of ``wan_jitter_pct`` of it and the WAN bandwidth; links inside a
datacenter are LAN. Bytes sent across datacenters are counted per sending datacenter (the
report's cross-datacenter traffic). A datacenter partition blocks every link between its
clusters and the others', both ways.
"""

from __future__ import annotations

from random import Random

from novacron.federation.config import FederationSection
from novacron.federation.wan import LAN_RTT_MS, WanMatrix
from sim.network import LinkProfile, NetworkModel

LAN = LinkProfile("dc-lan", rtt_ms=LAN_RTT_MS, jitter_ms=0.05, bandwidth_mbit_s=10_000.0)


class WanNetwork(NetworkModel):
    def __init__(self, section: FederationSection, matrix: WanMatrix, rng: Random) -> None:
        self.dc_of_node = {c + 1: c // section.clusters_per_datacenter for c in range(section.cluster_count)}
        links: dict[tuple[int, int], LinkProfile] = {}
        for a, dc_a in self.dc_of_node.items():
            for b, dc_b in self.dc_of_node.items():
                if a != b and dc_a != dc_b:
                    rtt = matrix.rtt(dc_a, dc_b)
                    links[(a, b)] = LinkProfile(f"wan-{dc_a}-{dc_b}", rtt_ms=rtt,
                                                jitter_ms=rtt * section.wan_jitter_pct / 100,
                                                bandwidth_mbit_s=matrix.bandwidth_mbit_s)
        super().__init__(LAN, rng, links)
        self.wan_sent_bytes = [0] * len(matrix.datacenters)
        self.cut: set[int] = set()

    def transmit(self, src: int, dst: int, size_bytes: int, now_s: float) -> list[float]:
        deliveries = super().transmit(src, dst, size_bytes, now_s)
        src_dc = self.dc_of_node.get(src)
        if deliveries and src_dc is not None and src_dc != self.dc_of_node.get(dst):
            self.wan_sent_bytes[src_dc] += size_bytes * len(deliveries)
        return deliveries

    def nodes_of(self, datacenter: int) -> list[int]:
        return [n for n, dc in self.dc_of_node.items() if dc == datacenter]

    def cut_off(self, datacenter: int) -> None:
        self.cut.add(datacenter)
        self._block_cut()

    def reconnect(self, datacenter: int) -> None:
        self.cut.discard(datacenter)
        self.heal()
        self._block_cut()

    def _block_cut(self) -> None:
        for dc in sorted(self.cut):
            inside = self.nodes_of(dc)
            self.partition([inside, [n for n in self.dc_of_node if n not in inside]])

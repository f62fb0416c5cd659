"""The ``[control]`` scenario section: which decisions go through Byzantine fault tolerance."""

from __future__ import annotations

from dataclasses import dataclass

from novacron.config import spec

CRITICAL_OPS = ("none", "bft")
BFT_NETWORK_PROFILES = ("lan", "wan30", "wan80", "wan150")


@dataclass(frozen=True, slots=True, kw_only=True)
class ControlSection:
    critical_ops: str = spec("none", choices=CRITICAL_OPS,
                             doc="'bft': critical operations (evicting a crashed host's VMs, destroying a VM) are "
                                 "committed by simulated PBFT replicas first, and their latency is reported; "
                                 "ordinary decisions stay direct or on Raft ([raft] control_plane)")
    bft_replicas: int = spec(4, min=4, max=7, doc="PBFT replicas (n = 3f + 1: 4 or 7 are the efficient sizes)")
    bft_network: str = spec("lan", choices=BFT_NETWORK_PROFILES, doc="the PBFT replicas' network profile")

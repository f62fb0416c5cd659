"""The manager network: per-link latency, loss, duplication, reordering, bandwidth, partitions.

Theory of operation
-------------------
Each directed link ``(src, dst)`` has a ``LinkProfile``. A message sent at time ``t`` first
waits for the link to be free (a FIFO serialiser at ``bandwidth_mbit_s``: size * 8 / bandwidth
seconds per message), then flies for a one-way latency drawn from a shifted gamma
distribution: at least ``rtt_ms / 2 - jitter_ms``, mean ``rtt_ms / 2``, a right tail like the
queueing delays measured on real paths. Because every message draws its own latency,
jittered links reorder messages; ``reorder`` adds an extra delay of up to one RTT to a fraction
of messages to reorder more. ``loss`` drops a message, ``duplicate`` delivers a second copy
with its own latency.

Partitions block directed pairs: ``partition(groups)`` blocks every pair across groups in both
directions (symmetric), ``partition(groups, symmetric=False)`` only from the first group to the
others (the "one-way link" failures that CheckQuorum and PreVote must survive). A blocked
message is dropped when it is sent; messages already in flight still arrive. Partitions may
overlap: ``heal_partition`` lifts one of them (what another still blocks stays blocked),
``heal`` lifts them all.

Profiles: ``lan`` (0.2 ms RTT), ``wan30``/``wan80``/``wan150`` (30/80/150 ms RTT with jitter
of 10 % of the RTT, 100 Mbit/s), and ``fig16`` -- the Raft paper's Figure 16 setup, where the
broadcast time (send to all and hear back) is about 15 ms.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from random import Random
from types import MappingProxyType


@dataclass(frozen=True, slots=True)
class LinkProfile:
    """How one link between managers behaves, in netem's terms."""

    name: str
    rtt_ms: float
    """Round trip; each direction takes half."""
    jitter_ms: float
    """Spread of the one-way delay, at most half the round trip."""
    loss: float = 0.0
    """Probability that a message is dropped."""
    duplicate: float = 0.0
    reorder: float = 0.0
    """Probability that a message overtakes the ones sent before it."""
    bandwidth_mbit_s: float = 1000.0

    def __post_init__(self) -> None:
        if self.rtt_ms <= 0 or self.jitter_ms < 0 or self.jitter_ms > self.rtt_ms / 2:
            raise ValueError(f"profile {self.name}: need rtt_ms > 0 and 0 <= jitter_ms <= rtt_ms / 2")
        for name in ("loss", "duplicate", "reorder"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"profile {self.name}: {name} must be a probability")
        if self.bandwidth_mbit_s <= 0:
            raise ValueError(f"profile {self.name}: bandwidth_mbit_s must be > 0")

    def with_faults(self, *, loss: float = 0.0, duplicate: float = 0.0, reorder: float = 0.0) -> LinkProfile:
        return replace(self, loss=loss, duplicate=duplicate, reorder=reorder)


PROFILES: Mapping[str, LinkProfile] = MappingProxyType({
    "lan": LinkProfile("lan", rtt_ms=0.2, jitter_ms=0.05, bandwidth_mbit_s=10_000.0),
    "wan30": LinkProfile("wan30", rtt_ms=30.0, jitter_ms=3.0, bandwidth_mbit_s=100.0),
    "wan80": LinkProfile("wan80", rtt_ms=80.0, jitter_ms=8.0, bandwidth_mbit_s=100.0),
    "wan150": LinkProfile("wan150", rtt_ms=150.0, jitter_ms=15.0, bandwidth_mbit_s=100.0),
    "fig16": LinkProfile("fig16", rtt_ms=14.0, jitter_ms=0.5, bandwidth_mbit_s=1000.0),
})

GAMMA_SHAPE = 2.0


class NetworkModel:
    """Decides when (and whether) each message arrives. Pure bookkeeping: no clock, no I/O."""

    def __init__(self, default: LinkProfile, rng: Random,
                 links: dict[tuple[int, int], LinkProfile] | None = None) -> None:
        self.default = default
        self.links = dict(links or {})
        self._rng = rng
        self._blocked: set[tuple[int, int]] = set()
        self._partitions: dict[int, set[tuple[int, int]]] = {}
        """The partitions not healed yet, by number: their pairs, blocked until each one's own heal."""
        self._partitions_made = 0
        self._link_free_s: dict[tuple[int, int], float] = {}
        self.sent = 0
        self.dropped = 0
        self.duplicated = 0

    def profile(self, src: int, dst: int) -> LinkProfile:
        return self.links.get((src, dst), self.default)

    def set_profile(self, profile: LinkProfile) -> None:
        self.default = profile
        self.links.clear()

    def transmit(self, src: int, dst: int, size_bytes: int, now_s: float) -> list[float]:
        """Delivery times of the message (none if lost or blocked, two if duplicated)."""
        self.sent += 1
        link = (src, dst)
        profile = self.links.get(link, self.default)
        rng = self._rng
        if link in self._blocked or (profile.loss and rng.random() < profile.loss):
            self.dropped += 1
            return []
        start = max(now_s, self._link_free_s.get(link, 0.0))
        leave = start + size_bytes * 8 / (profile.bandwidth_mbit_s * 1e6)
        self._link_free_s[link] = leave
        deliveries = [leave + self._latency_s(profile)]
        if profile.duplicate and rng.random() < profile.duplicate:
            self.duplicated += 1
            deliveries.append(leave + self._latency_s(profile))
        return deliveries

    def link_free_s(self, src: int, dst: int) -> float:
        """When the link's serialiser has sent everything queued on it so far."""
        return self._link_free_s.get((src, dst), 0.0)

    def _latency_s(self, profile: LinkProfile) -> float:
        one_way_ms = profile.rtt_ms / 2
        floor_ms = one_way_ms - profile.jitter_ms
        latency_ms = floor_ms
        if profile.jitter_ms:
            latency_ms += self._rng.gammavariate(GAMMA_SHAPE, profile.jitter_ms / GAMMA_SHAPE)
        if profile.reorder and self._rng.random() < profile.reorder:
            latency_ms += self._rng.uniform(0.0, profile.rtt_ms)
        return latency_ms / 1000.0

    # -- partitions ------------------------------------------------------------------------------

    def partition(self, groups: Sequence[Iterable[int]], *, symmetric: bool = True) -> int:
        """Block traffic across ``groups``; asymmetric blocks only from ``groups[0]`` outwards.
        Returns the partition's number, for ``heal_partition``."""
        sets = [set(g) for g in groups]
        pairs: set[tuple[int, int]] = set()
        for i, a in enumerate(sets):
            for j, b in enumerate(sets):
                if i == j or (not symmetric and i != 0):
                    continue
                pairs.update((x, y) for x in a for y in b)
        self._blocked.update(pairs)
        self._partitions_made += 1
        self._partitions[self._partitions_made] = pairs
        return self._partitions_made

    def isolate(self, node: int, others: Iterable[int]) -> None:
        self.partition([[node], [o for o in others if o != node]])

    def heal(self) -> None:
        """Lift every partition."""
        self._blocked.clear()
        self._partitions.clear()

    def heal_partition(self, number: int) -> None:
        """Lift one partition (``partition``'s number); what another partition blocks stays blocked."""
        if self._partitions.pop(number, None) is not None:
            self._blocked = set().union(*self._partitions.values())

    def is_partitioned(self) -> bool:
        return bool(self._blocked)

    def blocked(self, src: int, dst: int) -> bool:
        return (src, dst) in self._blocked

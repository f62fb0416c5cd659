"""The WAN between datacenters: round-trip times and bandwidth per pair, built in or the user's.

Theory of operation
-------------------
A federation's datacenters are coupled only through WAN links. Each unordered pair has a
round-trip time and a bandwidth; a runtime turns them into link models (``sim.network``'s
``LinkProfile``: one-way delay half the RTT with jitter, a FIFO serialiser at the bandwidth).
Clusters inside one datacenter talk over the datacenter LAN.

Built-in profiles:

- ``aws-2017``: average round-trip times between six AWS regions, from the table "Latency
  Between AWS Global Regions" as reproduced in "AWS Regions" (acomputerscientistlearnsaws.
  blogspot.com, April 2017). The table lists each direction; the two directions differ by at
  most 2 ms and are averaged here (rounded to 0.1 ms).
- ``uniform``: every pair at ``wan_uniform_rtt_ms`` (the issue's "3 regions at 150 ms").
- ``matrix``: the scenario's own ``wan_rtt_ms`` (square, symmetric, zero diagonal).

The smallest one-way delay of the matrix is the lookahead a runner that partitions a federated
run by datacenter may use (nothing one datacenter does reaches another sooner).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType

AWS_2017_SOURCE = ("'Latency Between AWS Global Regions' as tabulated in 'AWS Regions', "
                   "acomputerscientistlearnsaws.blogspot.com (April 2017), both directions averaged")

AWS_2017_RTT_MS: Mapping[frozenset[str], float] = MappingProxyType({
    frozenset(pair): rtt for pair, rtt in (
        (("us-east-1", "us-west-1"), 72.2),
        (("us-east-1", "us-west-2"), 87.8),
        (("us-east-1", "eu-west-1"), 80.5),
        (("us-east-1", "eu-central-1"), 88.6),
        (("us-east-1", "ap-northeast-1"), 145.3),
        (("us-west-1", "us-west-2"), 19.3),
        (("us-west-1", "eu-west-1"), 153.2),
        (("us-west-1", "eu-central-1"), 166.6),
        (("us-west-1", "ap-northeast-1"), 102.5),
        (("us-west-2", "eu-west-1"), 137.0),
        (("us-west-2", "eu-central-1"), 159.5),
        (("us-west-2", "ap-northeast-1"), 89.1),
        (("eu-west-1", "eu-central-1"), 19.6),
        (("eu-west-1", "ap-northeast-1"), 212.4),
        (("eu-central-1", "ap-northeast-1"), 236.6),
    )
})
AWS_2017_REGIONS: tuple[str, ...] = ("us-east-1", "us-west-1", "us-west-2", "eu-west-1", "eu-central-1",
                                     "ap-northeast-1")
WAN_PROFILES = ("aws-2017", "uniform", "matrix")
LAN_RTT_MS = 0.5
"""Between two clusters of one datacenter (same campus)."""


@dataclass(frozen=True, slots=True)
class WanMatrix:
    """Round-trip times (ms) and bandwidth (Mbit/s) between every pair of datacenters."""

    datacenters: tuple[str, ...]
    rtt_ms: tuple[tuple[float, ...], ...]
    bandwidth_mbit_s: float
    source: str

    def rtt(self, a: int, b: int) -> float:
        return LAN_RTT_MS if a == b else self.rtt_ms[a][b]

    @property
    def max_rtt_ms(self) -> float:
        return max((max(row) for row in self.rtt_ms), default=0.0)

    @property
    def min_rtt_ms(self) -> float:
        off = [self.rtt_ms[a][b] for a in range(len(self.rtt_ms)) for b in range(len(self.rtt_ms)) if a != b]
        return min(off, default=LAN_RTT_MS)


def build_matrix(profile: str, datacenters: Sequence[str], *, uniform_rtt_ms: float,
                 user_rtt_ms: Sequence[Sequence[float]], bandwidth_mbit_s: float) -> WanMatrix:
    """The matrix a scenario asks for (its section validated the names and shapes already)."""
    n = len(datacenters)
    if profile == "aws-2017":
        rows = tuple(tuple(0.0 if a == b else AWS_2017_RTT_MS[frozenset((datacenters[a], datacenters[b]))]
                           for b in range(n)) for a in range(n))
        return WanMatrix(tuple(datacenters), rows, bandwidth_mbit_s, AWS_2017_SOURCE)
    if profile == "uniform":
        rows = tuple(tuple(0.0 if a == b else uniform_rtt_ms for b in range(n)) for a in range(n))
        return WanMatrix(tuple(datacenters), rows, bandwidth_mbit_s, f"uniform {uniform_rtt_ms:g} ms")
    rows = tuple(tuple(float(x) for x in row) for row in user_rtt_ms)
    return WanMatrix(tuple(datacenters), rows, bandwidth_mbit_s, "scenario wan_rtt_ms")


def matrix_problem(rtt_ms: Sequence[Sequence[float]], n: int) -> str | None:
    """Why a user matrix cannot be a WAN between ``n`` datacenters, or None."""
    if len(rtt_ms) != n or any(len(row) != n for row in rtt_ms):
        return f"needs {n} rows of {n} numbers (one per datacenter)"
    for a in range(n):
        for b in range(n):
            value = rtt_ms[a][b]
            if a == b and value != 0:
                return f"row {a + 1} column {b + 1} = {value:g}: the diagonal must be 0"
            if a != b and not 0 < value <= 10_000:
                return f"row {a + 1} column {b + 1} = {value:g}: a round trip must be > 0 and <= 10000 ms"
            if value != rtt_ms[b][a]:
                return f"row {a + 1} column {b + 1} = {value:g} differs from row {b + 1} column {a + 1}: " \
                       "the matrix must be symmetric"
    return None

"""Durability in closed form: a birth-death Markov chain per stripe, and field failure rates.

Theory of operation
-------------------
A stripe is n shards on n distinct disks (n copies for replication; k + m for RS(k, m)) that
survives up to ``tolerated`` lost shards (n - 1 and m). The classic model (Gibson, "Redundant
disk arrays", 1991, ch. 5; used for distributed stripes by Ford et al., "Availability in
globally distributed storage systems", OSDI 2010, section 5) is a birth-death chain on i, the
number of shards lost: disks fail independently at rate lambda, so i -> i+1 at rate
``b_i = (n - i) * lambda``; repairs complete at rate mu each, at most ``repair_slots`` at a time,
so i -> i-1 at rate ``d_i = min(i, repair_slots) * mu``. Data is lost on the step
``tolerated -> tolerated + 1``.

Two exact answers of the chain, both from its unnormalised stationary weights
``w_0 = 1, w_i = w_(i-1) * b_(i-1) / d_i`` (Karlin and Taylor, "A first course in stochastic
processes", 1975, ch. 4, birth and death processes):

* ``mttdl_h``: the mean first-passage time from a new stripe (i = 0) to the first loss, with the
  chain cut at ``tolerated + 1``: ``sum over i <= tolerated of (sum_(j <= i) w_j) / (w_i * b_i)``.
  For mu >> lambda it tends to the textbook approximation
  ``mu**t * t! / (n (n-1) ... (n-t) * lambda**(t+1))`` with t = tolerated and parallel repair
  (``approx_mttdl_h``).
* ``loss_rate_per_h``: the long-run rate of loss events of one stripe whose lost shards keep
  being repaired (the chain on 0..n, not cut): ``pi_t * b_t``. A pool of S stripes loses data
  ``S * loss_rate_per_h`` times per hour on average, by linearity, however the stripes share
  disks, and each stripe's marginal is exactly this chain when disk failures and repairs are
  independent and exponential, which is what the simulation checks (``sim.storage_durability``).
  ``1 / loss_rate_per_h`` is slightly below ``mttdl_h`` (a stripe just repaired from ``t + 1`` is
  closer to the next loss than a new one).

Both assume what correlated failures break: a rack, power or datacenter event takes many shards
at once and floods repair bandwidth. ``annual_loss_probability`` treats loss events as Poisson.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

HOURS_PER_YEAR = 8766.0  # 365.25 days

DISK_AFR = 0.0170
DISK_AFR_SOURCE = ("Backblaze Drive Stats for 2023: 4,189 failures among 269,756 data drives, "
                   "annualised failure rate 1.70 % (2022: 1.37 %, 2021: 1.01 %)")
"""Default disk annualised failure rate, from published field data."""


def rate_per_h_from_afr(afr: float) -> float:
    """The exponential failure rate whose probability of failing within a year is ``afr``."""
    if not 0 < afr < 1:
        raise ValueError(f"afr={afr!r}; allowed: a fraction in (0, 1), e.g. 0.017 for 1.7 %")
    return -math.log1p(-afr) / HOURS_PER_YEAR


@dataclass(frozen=True, slots=True, kw_only=True)
class StripeChain:
    """The birth-death chain of one stripe: ``shards`` disks, ``tolerated`` losses survivable."""

    shards: int
    tolerated: int
    failure_rate_per_h: float
    repair_rate_per_h: float
    repair_slots: int | None = None
    """Repairs in progress at once per stripe; None: all lost shards at once (distributed repair)."""

    def __post_init__(self) -> None:
        if not 0 <= self.tolerated < self.shards:
            raise ValueError(f"tolerated={self.tolerated!r}; allowed: 0 <= tolerated < shards={self.shards}")
        if not (self.failure_rate_per_h > 0 and self.repair_rate_per_h > 0):
            raise ValueError(f"rates failure={self.failure_rate_per_h!r}/h repair={self.repair_rate_per_h!r}/h; "
                             "allowed: numbers > 0")

    def birth(self, lost: int) -> float:
        return (self.shards - lost) * self.failure_rate_per_h

    def death(self, lost: int) -> float:
        slots = self.shards if self.repair_slots is None else self.repair_slots
        return min(lost, slots) * self.repair_rate_per_h

    def weights(self, top: int) -> list[float]:
        """Unnormalised stationary weights w_0..w_top."""
        weights = [1.0]
        for lost in range(1, top + 1):
            weights.append(weights[-1] * self.birth(lost - 1) / self.death(lost))
        return weights

    def mttdl_h(self) -> float:
        """Mean time from a new stripe to its first data loss (first passage to tolerated + 1)."""
        weights = self.weights(self.tolerated)
        total, below = 0.0, 0.0
        for lost, weight in enumerate(weights):
            below += weight
            total += below / (weight * self.birth(lost))
        return total

    def loss_rate_per_h(self) -> float:
        """Long-run loss events per hour of one stripe whose losses keep being repaired."""
        weights = self.weights(self.shards)
        return weights[self.tolerated] / sum(weights) * self.birth(self.tolerated)


def approx_mttdl_h(chain: StripeChain) -> float:
    """The closed-form approximation for mu >> lambda with parallel repair (see the module doc)."""
    t = chain.tolerated
    falling = math.prod(chain.shards - i for i in range(t + 1))
    return chain.repair_rate_per_h ** t * math.factorial(t) / (falling * chain.failure_rate_per_h ** (t + 1))


def annual_loss_probability(loss_events_per_h: float) -> float:
    """Probability of at least one loss event in a year, for Poisson loss events at the given rate."""
    return -math.expm1(-loss_events_per_h * HOURS_PER_YEAR)


def scheme_shape(scheme: str) -> tuple[int, int, int]:
    """(shards, tolerated losses, read amplification of one repair) of ``replicationN`` or ``rsK+M``."""
    if scheme.startswith("replication") and scheme.removeprefix("replication").isdigit():
        copies = int(scheme.removeprefix("replication"))
        if copies >= 1:
            return copies, copies - 1, 1
    if scheme.startswith("rs") and "+" in scheme:
        k, _, m = scheme.removeprefix("rs").partition("+")
        if k.isdigit() and m.isdigit() and int(k) >= 1 and int(m) >= 1:
            return int(k) + int(m), int(m), int(k)
    raise ValueError(f"scheme={scheme!r}; allowed: replicationN or rsK+M (e.g. replication3, rs6+3, rs10+4)")


def pool_loss_rate_per_h(*, nodes: int, shards: int, tolerated: int, stripes: float, failure_rate_per_h: float,
                         repair_rate_per_h: float) -> float:
    """Data-loss events per hour of a whole pool: node failures that make at least one stripe
    lose more than it tolerates.

    Losses in a pool come in clumps (every stripe on the same ``t + 1`` dead nodes dies at once),
    so the pool's rate is not ``stripes`` times a stripe's rate. The nodes follow the same chain
    (all N of them, independent, repaired in parallel: k down with probability pi_k). A stripe
    placed at random on n of the N nodes crosses from t to t + 1 lost shards at a failure that
    hits one of its nodes while exactly t others are down; with k nodes down that is
    ``C(k, t) * C(N - k - 1, n - t - 1) / C(N, n)`` per stripe, so ``m_k`` = S times it stripes
    in expectation, and at least one (Poisson over stripes) with probability ``1 - exp(-m_k)``.
    The rate is ``sum over k >= t of pi_k * (N - k) * lambda * (1 - exp(-m_k))``. At k = t this is
    the rate of t + 1 coincident failures times the copyset coverage
    ``1 - exp(-S * C(n, t + 1) / C(N, t + 1))`` (Cidon et al., "Copysets: reducing the frequency
    of data loss in cloud storage", USENIX ATC 2013); the terms above t matter only when many
    nodes are down at once (accelerated rates).
    """
    if shards > nodes:
        raise ValueError(f"shards={shards} > nodes={nodes}; allowed: at most one shard per node")
    chain = StripeChain(shards=nodes, tolerated=tolerated, failure_rate_per_h=failure_rate_per_h,
                        repair_rate_per_h=repair_rate_per_h)
    weights = chain.weights(nodes)
    total = sum(weights)
    placements = math.comb(nodes, shards)
    rate = 0.0
    for down in range(tolerated, nodes):
        if weights[down] == 0.0:
            break  # underflow: the chain never gets this far
        ways = math.comb(down, tolerated) * math.comb(nodes - down - 1, shards - tolerated - 1)
        crossing = stripes * ways / placements
        rate += weights[down] / total * chain.birth(down) * -math.expm1(-crossing)
    return rate


@dataclass(frozen=True, slots=True, kw_only=True)
class PoolEstimate:
    """Closed-form durability of a pool of ``nodes`` one-disk nodes holding ``raw_tb`` in total."""

    nodes: int
    raw_tb: float
    scheme: str
    usable_tb: float
    rebuild_h: float
    annual_loss_probability: float

    @property
    def nines(self) -> float:
        return math.inf if self.annual_loss_probability <= 0 else -math.log10(self.annual_loss_probability)


def estimate_pool(nodes: int, raw_tb: float, scheme: str, *, afr: float = DISK_AFR, shard_mib: float = 64.0,
                  rebuild_write_mib_s: float = 100.0, repair_share_of_nic: float = 0.1, nic_mib_s: float = 1192.0,
                  detect_h: float = 0.25) -> PoolEstimate:
    """Usable capacity, rebuild time of one full node and annual loss probability at field AFR.

    A rebuild writes one node's data at the spare's ``rebuild_write_mib_s`` while reading
    ``amplification`` times as much over the network, of which the pool gives repair
    ``repair_share_of_nic`` of every node's NIC (10 GbE = 1192 MiB/s; the rest is client I/O and
    migrations); it starts ``detect_h`` after the failure (GFS's 15-minute timeout, Ford et al.).
    """
    shards, tolerated, amplification = scheme_shape(scheme)
    data_fraction = 1 / shards if scheme.startswith("replication") else (shards - tolerated) / shards
    node_mib = raw_tb / nodes * 1e12 / 2**20
    traffic_mib_s = min(rebuild_write_mib_s * amplification, repair_share_of_nic * nic_mib_s * nodes)
    rebuild_h = detect_h + node_mib * amplification / traffic_mib_s / 3600
    usable_tb = raw_tb * data_fraction
    stripes = usable_tb * 1e12 / 2**20 / (shard_mib * shards * data_fraction)
    rate = pool_loss_rate_per_h(nodes=nodes, shards=shards, tolerated=tolerated, stripes=stripes,
                                failure_rate_per_h=rate_per_h_from_afr(afr), repair_rate_per_h=1 / rebuild_h)
    return PoolEstimate(nodes=nodes, raw_tb=raw_tb, scheme=scheme, usable_tb=usable_tb, rebuild_h=rebuild_h,
                        annual_loss_probability=annual_loss_probability(rate))

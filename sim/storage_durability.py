"""Durability by simulation: disks, hosts, racks and datacenters failing under a placed pool of stripes.

Theory of operation
-------------------
A pool is a tree of disks (``novacron.storage.domains.topology``); ``stripes`` objects are
placed by rendezvous hashing under a failure-domain rule (by default every shard on a distinct
rack), one shard per disk. Failures are Poisson processes: each disk dies at ``disk_rate``, and
each host, rack or datacenter at its own rate, destroying every disk in it at that instant
(permanent, correlated loss: a power surge, a fire; transient outages do not lose data and are
not modelled). Optionally, latent sector errors: a rebuild that reads an unreadable sector of a
stripe with no redundancy left loses it. A stripe whose count of lost shards goes from
``tolerated`` to ``tolerated + 1`` is a loss event. A dead disk is rebuilt onto a spare:

* ``repair="exponential"``: after an exponential time of mean ``mean_repair_h``, independently
  of everything else: exactly the Markov model's assumption (``novacron.storage.durability``);
* ``repair="bandwidth"``: its shards are recomputed over the network, reading ``amplification``
  shards per shard rebuilt (1 for replication, k for RS(k, m)); concurrent rebuilds share
  ``repair_bandwidth_mib_s`` equally (what is left of the network after client I/O and
  migrations), each capped at its spare disk's write speed ``rebuild_write_mib_s`` (times the
  amplification in network traffic). A disk holds ``disk_data_gib``. Repairs then slow down
  exactly when many disks are down (a rack event queues eight rebuilds at once; RS(10,4)'s
  tenfold traffic saturates the budget with three): the dependence the closed form, whose
  repairs are independent, does not see.

The loop is a heap of timestamped events plus the processor-sharing rebuilds, not SimPy
processes: nothing here waits on anything else, and a failure touches a few thousand stripes
at once through numpy index arrays, so the long horizons that rare losses need stay cheap.
The loss rate is reported with a 95 % interval from batch means (the horizon cut into 20
batches): loss events are clumped (stripes share disks), so a Poisson interval would be too
narrow. Deterministic for a seed.

    python -m sim.storage_durability [--quick]     # the table in benchmarks/RESULTS_storage.md
"""

from __future__ import annotations

import argparse
import heapq
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from novacron.seeding import RunSeeds
from novacron.storage.domains import PlacementRule, place, topology
from novacron.storage.durability import DISK_AFR, DISK_AFR_SOURCE, StripeChain, estimate_pool, scheme_shape
from novacron.storage.hashing import Rendezvous

LEVELS = ("host", "rack", "datacenter")
BATCHES = 20


@dataclass(frozen=True, slots=True, kw_only=True)
class PoolConfig:
    scheme: str = "replication3"
    datacenters: int = 1
    racks: int = 15
    hosts_per_rack: int = 4
    disks_per_host: int = 2
    stripes: int = 5000
    rule_level: str = "rack"
    max_per_domain: int = 1
    disk_rate_per_h: float = 1 / 500
    host_rate_per_h: float = 0.0
    rack_rate_per_h: float = 0.0
    datacenter_rate_per_h: float = 0.0
    repair: str = "exponential"
    mean_repair_h: float = 10.0
    disk_data_gib: float = 4000.0
    """Data on one disk (a full 4 TB drive): what a rebuild writes."""
    rebuild_write_mib_s: float = 100.0
    """One spare disk's write speed: a rebuild's ceiling (its network traffic is this times the amplification)."""
    repair_bandwidth_mib_s: float = 2000.0
    latent_errors_per_bit: float = 0.0
    """Unrecoverable read errors per bit read by a rebuild (0: none; spec sheets give 1e-14 to 1e-15)."""
    horizon_h: float = 100_000.0
    seed: int = 1

    def __post_init__(self) -> None:
        if self.repair not in ("exponential", "bandwidth"):
            raise ValueError(f"repair={self.repair!r}; allowed: exponential, bandwidth")


@dataclass(frozen=True, slots=True, kw_only=True)
class DurabilityResult:
    config: PoolConfig
    loss_events: int
    stripe_hours: float
    loss_rate_per_h: float
    """Loss events per stripe-hour."""
    rate_ci95: float
    """Half-width of the 95 % interval of ``loss_rate_per_h`` (batch means)."""
    disk_failures: int
    pool_loss_events: int
    """Disk deaths after which at least one stripe had lost more than it tolerates (clumps count once)."""
    mean_repair_h: float
    """Mean time from a disk's death to the end of its rebuild, as simulated."""

    @property
    def mttdl_h(self) -> float:
        return math.inf if self.loss_events == 0 else 1 / self.loss_rate_per_h


@dataclass(slots=True)
class _Pool:
    """Mutable state of one run."""

    config: PoolConfig
    stripes_of: list[np.ndarray]
    members: dict[str, list[np.ndarray]]
    tolerated: int
    amplification: int
    rng: np.random.Generator
    latent_rng: np.random.Generator
    """Its own stream, so runs with and without latent errors see the same failures."""
    lost: np.ndarray = field(init=False)
    dead: np.ndarray = field(init=False)
    died_at: np.ndarray = field(init=False)
    generation: np.ndarray = field(init=False)
    events: list[tuple[float, int, str, int, int]] = field(default_factory=list)
    rebuilding: dict[int, float] = field(default_factory=dict)
    now: float = 0.0
    sequence: int = 0
    batch_losses: list[int] = field(default_factory=lambda: [0] * BATCHES)
    disk_failures: int = 0
    pool_loss_events: int = 0
    repair_hours: float = 0.0
    repairs: int = 0

    def __post_init__(self) -> None:
        disks = len(self.stripes_of)
        self.lost = np.zeros(self.config.stripes, dtype=np.int16)
        self.dead = np.zeros(disks, dtype=bool)
        self.died_at = np.zeros(disks)
        self.generation = np.zeros(disks, dtype=np.int64)

    def schedule(self, delay_h: float, kind: str, index: int, generation: int = 0) -> None:
        self.sequence += 1
        heapq.heappush(self.events, (self.now + delay_h, self.sequence, kind, index, generation))

    def kill(self, disk: int) -> None:
        if self.dead[disk]:
            return
        self.dead[disk] = True
        self.died_at[disk] = self.now
        self.generation[disk] += 1
        self.disk_failures += 1
        touched = self.stripes_of[disk]
        before = self.lost[touched]
        self.lost[touched] = before + 1
        batch = min(BATCHES - 1, int(self.now / self.config.horizon_h * BATCHES))
        crossed = int(np.count_nonzero(before == self.tolerated))
        self.batch_losses[batch] += crossed
        self.pool_loss_events += crossed > 0
        if self.config.repair == "exponential":
            self.schedule(float(self.rng.exponential(self.config.mean_repair_h)), "repaired", disk)
        else:
            self.rebuilding[disk] = self.config.disk_data_gib * 1024 * self.amplification

    def revive(self, disk: int) -> None:
        if self.config.latent_errors_per_bit > 0:
            self._latent_errors(disk)
        self.dead[disk] = False
        self.lost[self.stripes_of[disk]] -= 1
        self.repair_hours += self.now - self.died_at[disk]
        self.repairs += 1
        self.schedule(float(self.rng.exponential(1 / self.config.disk_rate_per_h)), "disk", disk,
                      int(self.generation[disk]))

    def _latent_errors(self, disk: int) -> None:
        """A stripe rebuilt with no redundancy left (``tolerated`` shards lost, this one included)
        is lost if any shard the rebuild reads has an unreadable sector. Counted as a loss event;
        the stripe's shard count is not changed (which shard failed is not tracked)."""
        touched = self.stripes_of[disk]
        critical = int(np.count_nonzero(self.lost[touched] == self.tolerated))
        if critical == 0:
            return
        shard_bits = self.config.disk_data_gib * 2**30 * 8 / len(touched)
        unreadable = -math.expm1(-self.config.latent_errors_per_bit * shard_bits * self.amplification)
        lost = int(self.latent_rng.binomial(critical, unreadable))
        batch = min(BATCHES - 1, int(self.now / self.config.horizon_h * BATCHES))
        self.batch_losses[batch] += lost
        self.pool_loss_events += lost > 0

    def rebuild_rate_mib_h(self) -> float:
        share = self.config.repair_bandwidth_mib_s / len(self.rebuilding)
        return min(share, self.config.rebuild_write_mib_s * self.amplification) * 3600.0

    def advance(self, until_h: float) -> None:
        """Run the processor-sharing rebuilds up to ``until_h``, reviving disks as they finish."""
        while self.rebuilding:
            rate = self.rebuild_rate_mib_h()
            disk, remaining = min(self.rebuilding.items(), key=lambda item: item[1])
            finish = self.now + remaining / rate
            if finish > until_h:
                break
            self._spend(rate * (finish - self.now))
            self.now = finish
            del self.rebuilding[disk]
            self.revive(disk)
        if self.rebuilding:
            self._spend(self.rebuild_rate_mib_h() * (until_h - self.now))
        self.now = until_h

    def _spend(self, mib: float) -> None:
        for disk in self.rebuilding:
            self.rebuilding[disk] -= mib


def _place(config: PoolConfig) -> tuple[list[np.ndarray], dict[str, list[np.ndarray]], int, int]:
    shards, tolerated, amplification = scheme_shape(config.scheme)
    nodes = topology(config.datacenters, 1, config.racks, config.hosts_per_rack, config.disks_per_host)
    index = {node.name: i for i, node in enumerate(nodes)}
    placement = Rendezvous(nodes)
    rule = PlacementRule(count=shards, level=config.rule_level, max_per_domain=config.max_per_domain)
    matrix = np.array([[index[name] for name in place(placement, f"stripe-{s}", rule)]
                       for s in range(config.stripes)], dtype=np.int64)
    stripes_of = [np.nonzero((matrix == disk).any(axis=1))[0] for disk in range(len(nodes))]
    members: dict[str, list[np.ndarray]] = {}
    for level in LEVELS:
        domains: dict[str, list[int]] = {}
        for node in nodes:
            domains.setdefault(node.domain(level), []).append(index[node.name])
        members[level] = [np.array(disks) for disks in domains.values()]
    return stripes_of, members, tolerated, amplification


def simulate(config: PoolConfig) -> DurabilityResult:
    stripes_of, members, tolerated, amplification = _place(config)
    seeds = RunSeeds(config.seed)
    pool = _Pool(config, stripes_of, members, tolerated, amplification,
                 seeds.numpy(f"storage-durability-{config.scheme}"), seeds.numpy(f"storage-latent-{config.scheme}"))
    for disk in range(len(stripes_of)):
        pool.schedule(float(pool.rng.exponential(1 / config.disk_rate_per_h)), "disk", disk)
    rates = {"host": config.host_rate_per_h, "rack": config.rack_rate_per_h, "datacenter": config.datacenter_rate_per_h}
    for level, rate in rates.items():
        for domain in range(len(members[level]) if rate > 0 else 0):
            pool.schedule(float(pool.rng.exponential(1 / rate)), level, domain)
    while pool.events and pool.events[0][0] < config.horizon_h:
        at_h, _, kind, index, generation = heapq.heappop(pool.events)
        pool.advance(at_h)
        if kind == "repaired":
            pool.revive(index)
        elif kind == "disk":
            if generation == pool.generation[index]:  # else: the disk died with its domain meanwhile
                pool.kill(index)
        else:
            for disk in members[kind][index]:
                pool.kill(int(disk))
            pool.schedule(float(pool.rng.exponential(1 / rates[kind])), kind, index)
    return _result(pool)


def _result(pool: _Pool) -> DurabilityResult:
    config = pool.config
    batch_stripe_hours = config.stripes * config.horizon_h / BATCHES
    batch_rates = np.array(pool.batch_losses) / batch_stripe_hours
    losses = sum(pool.batch_losses)
    ci95 = 2.093 * float(batch_rates.std(ddof=1)) / math.sqrt(BATCHES)  # Student t, 19 degrees of freedom
    return DurabilityResult(config=config, loss_events=losses, stripe_hours=config.stripes * config.horizon_h,
                            loss_rate_per_h=losses / (config.stripes * config.horizon_h), rate_ci95=ci95,
                            disk_failures=pool.disk_failures, pool_loss_events=pool.pool_loss_events,
                            mean_repair_h=pool.repair_hours / pool.repairs if pool.repairs else math.nan)


def markov_chain(config: PoolConfig, mean_repair_h: float | None = None) -> StripeChain:
    """The chain the closed form would use for this pool: every way a disk dies, as one
    independent rate (a disk also dies with its host, rack and datacenter)."""
    shards, tolerated, _ = scheme_shape(config.scheme)
    disk_rate = (config.disk_rate_per_h + config.host_rate_per_h + config.rack_rate_per_h
                 + config.datacenter_rate_per_h)
    return StripeChain(shards=shards, tolerated=tolerated, failure_rate_per_h=disk_rate,
                       repair_rate_per_h=1 / (mean_repair_h or config.mean_repair_h))


def compare_row(label: str, config: PoolConfig) -> str:
    result = simulate(config)
    chain = markov_chain(config, None if config.repair == "exponential" else result.mean_repair_h)
    markov_rate = chain.loss_rate_per_h()
    error = result.loss_rate_per_h / markov_rate - 1
    return (f"| {label} | {config.scheme} | {result.loss_events:,} | {result.mttdl_h:,.0f} "
            f"| ±{result.rate_ci95 / result.loss_rate_per_h * 100 if result.loss_events else math.inf:.0f} % "
            f"| {1 / markov_rate:,.0f} | {chain.mttdl_h():,.0f} | {error * 100:+.1f} % | {result.mean_repair_h:.1f} |")


SCHEMES = ("replication3", "rs6+3", "rs10+4")


def scenarios(quick: bool) -> list[tuple[str, PoolConfig]]:
    scale = 0.1 if quick else 1.0
    base = PoolConfig(horizon_h=2_000_000 * scale)
    independent = [("independent, exponential repair", replace(base, scheme=s)) for s in SCHEMES]
    slow = replace(base, disk_rate_per_h=1 / 2000, repair="bandwidth", horizon_h=4_000_000 * scale)
    bandwidth = [("independent, bandwidth-limited repair", replace(slow, scheme=s)) for s in SCHEMES]
    correlated = []
    for s in SCHEMES:
        racky = replace(slow, scheme=s, rack_rate_per_h=1 / 20_000)
        correlated.append(("rack events, shards on distinct racks", racky))
        correlated.append(("rack events, shards on distinct hosts only", replace(racky, rule_level="host")))
    latent = [("bandwidth-limited repair, latent sector errors 1e-14/bit", replace(slow, scheme=s,
                                                                                latent_errors_per_bit=1e-14))
              for s in SCHEMES]
    return independent + bandwidth + latent + correlated


POOLS = ((3, 3.0), (10, 10.0), (100, 100.0), (1000, 1000.0))
"""The analysis' storage pools: nodes and raw TB (3 TB on 3 nodes to 1 PB on 1000)."""


def pool_table() -> list[str]:
    lines = [f"Disk AFR {DISK_AFR:.2%} ({DISK_AFR_SOURCE}).", "",
             "| nodes | raw TB | scheme | usable TB | rebuild of one node h | annual loss probability | nines |",
             "|---|---|---|---|---|---|---|"]
    for nodes, raw_tb in POOLS:
        for scheme in SCHEMES:
            shards = scheme_shape(scheme)[0]
            if shards > nodes:
                lines.append(f"| {nodes} | {raw_tb:,.0f} | {scheme} | - | - | needs {shards} nodes | - |")
                continue
            pool = estimate_pool(nodes, raw_tb, scheme)
            lines.append(f"| {nodes} | {raw_tb:,.0f} | {scheme} | {pool.usable_tb:,.1f} | {pool.rebuild_h:.2f} "
                         f"| {pool.annual_loss_probability:.2e} | {pool.nines:.1f} |")
    return lines


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Durability simulation against the Markov model")
    parser.add_argument("--quick", action="store_true", help="a tenth of the horizon (CI smoke)")
    parser.add_argument("--pools", action="store_true", help="the closed-form table of the analysis' pools")
    args = parser.parse_args(argv)
    if args.pools:
        print("\n".join(pool_table()))
        return
    print("| scenario | scheme | loss events | sim MTTDL h (1/rate) | sim 95 % | Markov 1/rate h "
          "| Markov first-loss MTTDL h | sim vs Markov rate | mean repair h (sim) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for label, config in scenarios(args.quick):
        print(compare_row(label, config), flush=True)


if __name__ == "__main__":
    main()

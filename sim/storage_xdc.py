"""Cross-datacenter replication of the storage pool in simulation, over the federation's WAN.

Theory of operation
-------------------
Clients write objects into the pool of the primary datacenter as a Poisson stream (one draw
per run, shared by both modes, so sync and async see the same writes). Each write is shipped
to the replica datacenter through ``sim.network``'s link model: a FIFO serialiser at the WAN
bandwidth times ``xdc_wan_share`` (the replication stream's share of the link), then a one-way
delay of half the pair's round trip from the federation's matrix (``novacron.federation.wan``)
with its jitter (``wan_jitter_pct``). In sync mode the replica's small acknowledgement flies
back the same way and acknowledges the client; in async mode the client is acknowledged after
the local commit. The arithmetic -- latency percentiles, data at risk, RPO -- is
``novacron.storage.xdc``'s. Each mode draws its WAN delays from its own random stream seeded
alike, so the two modes differ only by what the mode changes.

The writes of a run are computed when it starts (nothing in them waits on the rest of the
model); the assessment is emitted when the federation loses the primary (or replica)
datacenter, or at the start of the run when no outage is scripted.

    python -m sim.storage_xdc [--quick]     # the table in benchmarks/RESULTS_storage.md
"""

from __future__ import annotations

import argparse
import dataclasses
from collections.abc import Generator
from dataclasses import dataclass
from random import Random
from typing import Any

from novacron.federation.config import FederationSection
from novacron.federation.wan import WanMatrix
from novacron.storage.config import StorageConfig
from novacron.storage.events import StorageReplicationAssessed
from novacron.storage.xdc import (
    MIB,
    MODES,
    ModeResult,
    ReplicatedWrite,
    at_risk,
    latency_percentiles_ms,
    overload_rpo_s,
    sync_latency_floor_ms,
)
from sim.context import SimContext
from sim.network import LinkProfile, NetworkModel

ACK_BYTES = 64
PRIMARY, REPLICA = 1, 2


@dataclass(frozen=True, slots=True, kw_only=True)
class XdcLink:
    """The replication stream between the two datacenters, and the client writes."""

    rtt_ms: float
    jitter_ms: float
    bandwidth_mbit_s: float
    wan_share: float
    local_write_ms: float
    object_bytes: int
    write_bytes_s: float

    def profile(self) -> LinkProfile:
        return LinkProfile("xdc", rtt_ms=self.rtt_ms, jitter_ms=self.jitter_ms,
                           bandwidth_mbit_s=self.bandwidth_mbit_s * self.wan_share)


def write_times(link: XdcLink, start_s: float, end_s: float, rng: Random) -> list[float]:
    """Poisson arrivals of whole objects at the mean write rate."""
    rate_per_s = link.write_bytes_s / link.object_bytes
    times: list[float] = []
    if rate_per_s <= 0:
        return times
    t = start_s + rng.expovariate(rate_per_s)
    while t < end_s:
        times.append(t)
        t += rng.expovariate(rate_per_s)
    return times


def replicate(link: XdcLink, times: list[float], mode: str, rng: Random) -> list[ReplicatedWrite]:
    """Every write's shipping, landing and acknowledgement in ``mode``."""
    network = NetworkModel(link.profile(), rng)
    local_s = link.local_write_ms / 1000
    writes = []
    for written in times:
        # the write is committed locally before it is shipped (the primary's copy exists first)
        (landed,) = network.transmit(PRIMARY, REPLICA, link.object_bytes, written + local_s)
        shipped = network.link_free_s(PRIMARY, REPLICA)
        if mode == "sync":
            (acked,) = network.transmit(REPLICA, PRIMARY, ACK_BYTES, landed)
        else:
            acked = written + local_s
        writes.append(ReplicatedWrite(written_s=written, size_bytes=link.object_bytes, shipped_s=shipped,
                                      landed_s=landed, acked_s=acked))
    return writes


@dataclass(frozen=True, slots=True)
class Pair:
    primary: int
    replica: int


def datacenter_pair(storage: StorageConfig, federation: FederationSection, matrix: WanMatrix) -> Pair:
    """The primary (named, else the outage's, else the first) and the replica (named, else nearest)."""
    names = federation.datacenters
    primary_name = storage.xdc_primary_datacenter or federation.outage_datacenter or names[0]
    primary = names.index(primary_name)
    if storage.xdc_replica_datacenter:
        return Pair(primary, names.index(storage.xdc_replica_datacenter))
    others = [dc for dc in range(len(names)) if dc != primary]
    return Pair(primary, min(others, key=lambda dc: (matrix.rtt(primary, dc), dc)))


def link_of(storage: StorageConfig, federation: FederationSection, matrix: WanMatrix, pair: Pair) -> XdcLink:
    rtt = matrix.rtt(pair.primary, pair.replica)
    return XdcLink(rtt_ms=rtt, jitter_ms=rtt * federation.wan_jitter_pct / 100,
                   bandwidth_mbit_s=matrix.bandwidth_mbit_s, wan_share=storage.xdc_wan_share,
                   local_write_ms=storage.xdc_local_write_ms, object_bytes=max(1, round(storage.xdc_object_kib * 1024)),
                   write_bytes_s=storage.xdc_write_mib_s * MIB)


def assess_mode(link: XdcLink, times: list[float], mode: str, seed: int, *, lost_at_s: float | None,
                primary_lost: bool) -> ModeResult:
    """One mode over the writes issued before the loss (all of them without one)."""
    writes = replicate(link, times, mode, Random(seed))
    p50, p99 = latency_percentiles_ms(writes, (50, 99))
    risk = at_risk(writes, lost_at_s, primary_lost=primary_lost) if lost_at_s is not None else None
    return ModeResult(mode=mode, writes=len(writes), written_mib=sum(w.size_bytes for w in writes) / MIB,
                      write_p50_ms=p50, write_p99_ms=p99, max_lag_s=max((w.lag_s for w in writes), default=0.0),
                      at_risk_objects=risk.objects if risk else 0, at_risk_mib=risk.bytes / MIB if risk else 0.0,
                      rpo_s=risk.rpo_s if risk else 0.0)


def start(ctx: SimContext) -> None:
    """A ``sim.storage`` step: nothing unless the scenario asks for cross-datacenter replication."""
    storage, federation = ctx.scenario.storage, ctx.scenario.federation
    if not storage.xdc_replication:
        return
    matrix = federation.matrix()
    pair = datacenter_pair(storage, federation, matrix)
    link = link_of(storage, federation, matrix, pair)
    lost = federation.outage_datacenter if federation.outage_at_s > 0 else ""
    lost_at_s = federation.outage_at_s if lost else None
    end_s = lost_at_s if lost_at_s is not None else ctx.scenario.duration_s
    times = write_times(link, storage.xdc_start_s, end_s, ctx.seeds.python("storage-xdc-writes"))
    wan_seed = ctx.seeds.integer("storage-xdc-wan")
    primary_lost = lost == federation.datacenters[pair.primary]
    results = [assess_mode(link, times, mode, wan_seed, lost_at_s=lost_at_s, primary_lost=primary_lost)
               for mode in MODES]
    fields = {"primary_datacenter": federation.datacenters[pair.primary],
              "replica_datacenter": federation.datacenters[pair.replica], "lost_datacenter": lost,
              "rtt_ms": link.rtt_ms}
    ctx.env.process(_report(ctx, results, storage.xdc_replication, fields, lost_at_s or 0.0))


def _report(ctx: SimContext, results: list[ModeResult], selected: str, fields: dict[str, Any],
            at_s: float) -> Generator[Any, Any, None]:
    yield ctx.env.timeout(at_s)
    for r in results:
        ctx.recorder.emit(StorageReplicationAssessed, source="storage", selected=r.mode == selected,
                          **dataclasses.asdict(r), **fields)


def sweep_rows(rates_mib_s: list[float], *, rtt_ms: float, bandwidth_mbit_s: float, wan_share: float,
               loss_at_s: float, seed: int) -> list[tuple[float, ModeResult, ModeResult]]:
    """Both modes at each write rate, the primary lost at ``loss_at_s`` (the RESULTS table)."""
    rows = []
    for rate in rates_mib_s:
        link = XdcLink(rtt_ms=rtt_ms, jitter_ms=rtt_ms * 0.05, bandwidth_mbit_s=bandwidth_mbit_s, wan_share=wan_share,
                       local_write_ms=1.0, object_bytes=MIB, write_bytes_s=rate * MIB)
        times = write_times(link, 0.0, loss_at_s, Random(seed))
        sync, async_ = (assess_mode(link, times, mode, seed + 1, lost_at_s=loss_at_s, primary_lost=True)
                        for mode in MODES)
        rows.append((rate, sync, async_))
    return rows


def fluid_rpo(rate_mib_s: float, share_mib_s: float, overload_s: float) -> float:
    return overload_rpo_s(write_bytes_s=rate_mib_s, share_bytes_per_s=share_mib_s, overload_s=overload_s)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="a 120 s horizon instead of 600 s")
    args = parser.parse_args(argv)
    loss_at_s = 120.0 if args.quick else 600.0
    share_mib_s = 1000 * 1e6 / 8 * 0.2 / MIB
    print(f"us-east-1 -> us-west-2 (aws-2017, 87.8 ms RTT), 1000 Mbit/s WAN, replication share 0.2 "
          f"({share_mib_s:.1f} MiB/s), 1 MiB objects, primary lost at {loss_at_s:g} s")
    floor_ms = sync_latency_floor_ms(local_write_ms=1.0, rtt_ms=87.8, size_bytes=MIB, bandwidth_mbit_s=1000.0,
                                     wan_share=0.2)
    print(f"sync latency floor (idle stream, closed form): {floor_ms:.1f} ms")
    print("| write MiB/s | sync p50 ms | sync p99 ms | sync at risk MiB | async p50 ms | async p99 ms "
          "| async max lag s | async at risk MiB (objects) | async RPO s | fluid RPO s |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for rate, s, a in sweep_rows([5.0, 15.0, 22.0, 25.0, 30.0], rtt_ms=87.8, bandwidth_mbit_s=1000.0,
                                 wan_share=0.2, loss_at_s=loss_at_s, seed=1):
        print(f"| {rate:g} | {s.write_p50_ms:.1f} | {s.write_p99_ms:.1f} | {s.at_risk_mib:.0f} | {a.write_p50_ms:.1f} "
              f"| {a.write_p99_ms:.1f} | {a.max_lag_s:.2f} | {a.at_risk_mib:.0f} ({a.at_risk_objects}) "
              f"| {a.rpo_s:.2f} | {fluid_rpo(rate, share_mib_s, loss_at_s):.2f} |")


if __name__ == "__main__":
    main()

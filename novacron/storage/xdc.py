"""Cross-datacenter replication of a storage pool: write latency, replication lag, data at risk.

Theory of operation
-------------------
A pool in a primary datacenter keeps one up-to-date copy of every object in a replica
datacenter, shipped over the federation's WAN (``novacron.federation.wan``: the pair's round
trip and the link bandwidth, of which replication may use ``wan_share``). Every write goes
through one FIFO replication stream: it waits for the stream to be free, takes
``size * 8 / share_bandwidth`` to serialise, then flies one way (half the round trip, jittered
by the runtime). The remote copy is durable when it lands.

* ``sync``: the client's write is acknowledged when the remote acknowledgement comes back:
  at least ``local_write_ms + rtt_ms + transfer``, more while the stream is busy. An
  acknowledged write therefore always has its remote copy: losing either datacenter loses no
  acknowledged data (only writes still in flight, never acknowledged).
* ``async``: acknowledged after the local write; the stream ships behind. The replication lag
  of a write is how long it waited plus its transfer. When the write rate ``r`` exceeds the
  stream's share ``s``, the backlog grows at ``r - s`` and the lag by ``(r / s - 1)`` seconds
  per second of overload; below it the lag stays near one transfer. After ``T`` seconds of
  overload the stream has shipped what was written in the first ``T * s / r`` seconds, so the
  oldest unshipped write is ``T * (1 - s / r)`` old: the RPO (fluid limit), below the newest
  write's lag ``T * (r / s - 1)``.

When the primary datacenter is lost at ``t``, the data at risk is every acknowledged write
whose remote copy had not landed by ``t`` (its only up-to-date copy was in the lost
datacenter); the RPO is the age of the oldest of them. For an at-risk write ``w``,
``t < landed_w = written_w + lag_w + one_way_w``, so the RPO is below the largest lag plus the
largest one-way delay: the bound the property tests check. Losing the replica datacenter loses
nothing (the primary still holds every write). Each write is a new object (no overwrites), so
objects and writes are counted alike.

Pure arithmetic: the runtime (``sim.storage_xdc``) draws the writes and the WAN delays.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

MODES = ("sync", "async")
MIB = 1024 * 1024


@dataclass(frozen=True, slots=True)
class ReplicatedWrite:
    """One object written in the primary datacenter and copied to the replica."""

    written_s: float
    size_bytes: int
    shipped_s: float
    """when its last byte left the replication stream"""
    landed_s: float
    """when the remote copy became durable"""
    acked_s: float
    """when the client's write was acknowledged"""

    @property
    def lag_s(self) -> float:
        return self.shipped_s - self.written_s


@dataclass(frozen=True, slots=True)
class AtRisk:
    """Acknowledged writes whose only up-to-date copy was in the lost datacenter."""

    objects: int
    bytes: int
    rpo_s: float
    """age of the oldest at-risk write when the datacenter was lost (0 when none)"""


@dataclass(frozen=True, kw_only=True)
class ModeResult:
    """One replication mode's writes, assessed at the loss. The one owner of these fields: the
    runtime records them as ``StorageReplicationAssessed``, an event declared from this record (not
    slotted, so an event may inherit its fields beside ``Event``'s slots)."""

    mode: str
    writes: int
    written_mib: float
    write_p50_ms: float
    write_p99_ms: float
    max_lag_s: float
    at_risk_objects: int
    at_risk_mib: float
    rpo_s: float


def share_bytes_s(bandwidth_mbit_s: float, wan_share: float) -> float:
    """What the replication stream may use of a WAN link, in bytes per second."""
    return bandwidth_mbit_s * 1e6 / 8 * wan_share


def transfer_s(size_bytes: int, bandwidth_mbit_s: float, wan_share: float) -> float:
    return size_bytes / share_bytes_s(bandwidth_mbit_s, wan_share)


def sync_latency_floor_ms(*, local_write_ms: float, rtt_ms: float, size_bytes: int, bandwidth_mbit_s: float,
                          wan_share: float) -> float:
    """A synchronous write on an idle stream: the local write, the transfer and one round trip."""
    return local_write_ms + rtt_ms + 1000 * transfer_s(size_bytes, bandwidth_mbit_s, wan_share)


def overload_lag_s(*, write_bytes_s: float, share_bytes_per_s: float, overload_s: float) -> float:
    """Lag after ``overload_s`` of writing at ``write_bytes_s`` into a stream of ``share_bytes_per_s``
    (fluid limit: the backlog over the drain rate; 0 when the stream keeps up)."""
    return max(0.0, write_bytes_s - share_bytes_per_s) * overload_s / share_bytes_per_s


def overload_rpo_s(*, write_bytes_s: float, share_bytes_per_s: float, overload_s: float) -> float:
    """Age of the oldest unshipped write after ``overload_s`` of overload (fluid limit)."""
    if write_bytes_s <= share_bytes_per_s:
        return 0.0
    return overload_s * (1 - share_bytes_per_s / write_bytes_s)


def acked(write: ReplicatedWrite, at_s: float) -> bool:
    return write.acked_s <= at_s


def at_risk(writes: Sequence[ReplicatedWrite], lost_at_s: float, *, primary_lost: bool) -> AtRisk:
    """What losing a datacenter at ``lost_at_s`` loses of the acknowledged writes."""
    if not primary_lost:
        return AtRisk(0, 0, 0.0)
    lost = [w for w in writes if w.acked_s <= lost_at_s < w.landed_s]
    oldest = min((w.written_s for w in lost), default=lost_at_s)
    return AtRisk(len(lost), sum(w.size_bytes for w in lost), lost_at_s - oldest)


def latency_percentiles_ms(writes: Sequence[ReplicatedWrite], percentiles: Sequence[float]) -> list[float]:
    """Write latency (issue to acknowledgement) at each percentile; zeros without writes."""
    if not writes:
        return [0.0 for _ in percentiles]
    latencies = np.array([1000 * (w.acked_s - w.written_s) for w in writes])
    return [float(np.percentile(latencies, p, method="nearest")) for p in percentiles]

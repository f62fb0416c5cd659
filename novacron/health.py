"""Node health: a 0-100 score from connectivity, resource pressure and error history.

Theory of operation
-------------------
The analysis asks for a connectivity-quality score of 0-100 per node. ``HealthTracker`` folds what
either runtime observes about one node -- heartbeat round trips and losses, CPU and memory
samples, errors and crashes -- and ``score(now_s)`` weighs three parts (the weights are points):

- **connectivity** (40): the heartbeat loss rate ``p`` and the typical round trip, both smoothed
  exponentially (``ewma_weight`` per heartbeat). ``40 * (1 - p)^2 * f(rtt)``: squaring makes a
  5 % loss cost ~10 % of the part (loss triggers retransmissions and election timeouts), and
  ``f`` falls linearly from 1 at ``good_rtt_ms`` to 0 at ``bad_rtt_ms`` -- by default the Raft
  election timeout's lower bound (150 ms), where a follower starts suspecting its leader.
- **pressure** (30): CPU against the 80 % peak target and memory against 85 % (the SLO
  catalogue): full points up to the target less ``headroom_pct``, none at 100 %, linear in
  between; the worse of the two counts.
- **reliability** (30): each error costs ``error_points`` and each crash ``crash_points``,
  decaying with ``half_life_s`` (a node that crashed an hour ago is half as suspect), capped at 30.

Time is the injected ``now_s`` of the caller (simulated or monotonic seconds): no clock here.
A runtime that counts heartbeats in windows (the simulation's host agents, one window per
telemetry sample) folds a window with ``heartbeat_window``: the same exponential smoothing as
that many single heartbeats with the window's loss spread evenly over it.

``leadership_target`` is the Raft leadership preference both runtimes apply: a leader scoring
below ``min_score`` hands leadership (Raft's own transfer, dissertation 3.10, so safety is the
transfer's) to the healthiest other voter, if that one scores at least ``min_score`` and
``margin`` points more -- the margin keeps two similar nodes from passing leadership back and
forth on noise.
A node with no heartbeat yet scores its connectivity as unknown: half the part, so a new node is
neither preferred nor excluded.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

CONNECTIVITY_POINTS, PRESSURE_POINTS, RELIABILITY_POINTS = 40.0, 30.0, 30.0
CPU_TARGET_PCT, MEMORY_TARGET_PCT = 80.0, 85.0
"""The peak CPU and memory targets (DESIGN.md, the SLO catalogue)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class HealthScore:
    """The total (0-100) and its three parts."""

    total: float
    connectivity: float
    pressure: float
    reliability: float


@dataclass(slots=True)
class HealthTracker:
    """One node's health inputs, folded as they arrive (see the module docstring)."""

    good_rtt_ms: float = 10.0
    bad_rtt_ms: float = 150.0
    ewma_weight: float = 0.1
    headroom_pct: float = 10.0
    error_points: float = 3.0
    crash_points: float = 15.0
    half_life_s: float = 3600.0
    _loss: float = field(init=False, default=0.0)
    _rtt_ms: float | None = field(init=False, default=None)
    _heartbeats: int = field(init=False, default=0)
    _cpu_pct: float = field(init=False, default=0.0)
    _memory_pct: float = field(init=False, default=0.0)
    _penalty: float = field(init=False, default=0.0)
    _penalty_t_s: float = field(init=False, default=0.0)

    def __post_init__(self) -> None:
        if not 0.0 < self.good_rtt_ms < self.bad_rtt_ms:
            raise ValueError(f"good_rtt_ms {self.good_rtt_ms}, bad_rtt_ms {self.bad_rtt_ms}: need 0 < good < bad")
        if not 0.0 < self.ewma_weight <= 1.0 or self.half_life_s <= 0.0:
            raise ValueError("ewma_weight must be in (0, 1] and half_life_s above 0")

    def heartbeat(self, rtt_ms: float | None) -> None:
        """A heartbeat's round trip, or ``None`` when it was lost (no answer within its timeout)."""
        w = self.ewma_weight if self._heartbeats else 1.0
        self._heartbeats += 1
        self._loss += w * ((1.0 if rtt_ms is None else 0.0) - self._loss)
        if rtt_ms is not None:
            self._rtt_ms = rtt_ms if self._rtt_ms is None else self._rtt_ms + self.ewma_weight * (rtt_ms - self._rtt_ms)

    def heartbeat_window(self, *, sent: int, lost: int, rtt_ms: float | None) -> None:
        """``sent`` heartbeats of which ``lost`` went unanswered; ``rtt_ms`` the mean round trip of
        the answered ones (``None`` when none was). Equal to ``sent`` calls of ``heartbeat`` with
        the losses spread evenly (closed form of the smoothing, ``1 - (1 - w)^n``)."""
        if not 0 <= lost <= sent:
            raise ValueError(f"lost={lost} of sent={sent} heartbeats: allowed: 0 <= lost <= sent")
        if sent == 0:
            return
        w = 1.0 - (1.0 - self.ewma_weight) ** sent if self._heartbeats else 1.0
        self._heartbeats += sent
        self._loss += w * (lost / sent - self._loss)
        if rtt_ms is not None and lost < sent:
            self._rtt_ms = rtt_ms if self._rtt_ms is None else self._rtt_ms + w * (rtt_ms - self._rtt_ms)

    def resources(self, *, cpu_pct: float, memory_pct: float) -> None:
        self._cpu_pct, self._memory_pct = cpu_pct, memory_pct

    def error(self, now_s: float) -> None:
        self._add_penalty(now_s, self.error_points)

    def crash(self, now_s: float) -> None:
        self._add_penalty(now_s, self.crash_points)

    def score(self, now_s: float) -> HealthScore:
        connectivity = self._connectivity()
        pressure = PRESSURE_POINTS * min(_headroom(self._cpu_pct, CPU_TARGET_PCT - self.headroom_pct),
                                         _headroom(self._memory_pct, MEMORY_TARGET_PCT - self.headroom_pct))
        reliability = RELIABILITY_POINTS - min(RELIABILITY_POINTS, self._decayed_penalty(now_s))
        return HealthScore(total=connectivity + pressure + reliability, connectivity=connectivity,
                           pressure=pressure, reliability=reliability)

    def _connectivity(self) -> float:
        if self._heartbeats == 0:
            return CONNECTIVITY_POINTS / 2.0
        if self._rtt_ms is None:  # every heartbeat so far was lost
            return 0.0
        span = self.bad_rtt_ms - self.good_rtt_ms
        rtt_factor = min(1.0, max(0.0, (self.bad_rtt_ms - self._rtt_ms) / span))
        return CONNECTIVITY_POINTS * (1.0 - self._loss) ** 2 * rtt_factor

    def _decayed_penalty(self, now_s: float) -> float:
        elapsed_s = max(0.0, now_s - self._penalty_t_s)
        return self._penalty * math.pow(0.5, elapsed_s / self.half_life_s)

    def _add_penalty(self, now_s: float, points: float) -> None:
        self._penalty = self._decayed_penalty(now_s) + points
        self._penalty_t_s = max(now_s, self._penalty_t_s)


def _headroom(used_pct: float, comfortable_pct: float) -> float:
    """1 up to ``comfortable_pct``, 0 at 100 %, linear in between."""
    if used_pct <= comfortable_pct:
        return 1.0
    return max(0.0, (100.0 - used_pct) / (100.0 - comfortable_pct))


def leadership_target(scores: Mapping[int, float], leader: int, *, min_score: float, margin: float) -> int | None:
    """The voter leadership should move to, or None (module docstring). ``scores`` by node id,
    the leader's included; a node without a score is not a candidate."""
    own = scores.get(leader)
    if own is None or own >= min_score:
        return None
    others = sorted(((-score, node) for node, score in scores.items() if node != leader))
    if not others:
        return None
    best_score, best = -others[0][0], others[0][1]
    return best if best_score >= min_score and best_score >= own + margin else None

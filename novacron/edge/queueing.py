"""Request latency of one interval in closed form: an M/G/c queue with the Whitt approximation.

Theory of operation
-------------------
A service with ``c`` cores receives Poisson arrivals at rate ``lam`` within an interval (bursts
and traces change the rate from one interval to the next, not within one) and serves each request
in a time ``S`` of mean ``1/mu`` and coefficient of variation ``cs``. Simulating each request
costs a million heap operations per simulated minute at the analysis' rates; instead each
interval's latency distribution is computed in closed form and the run's percentiles are read
from the mixture of the intervals' distributions, weighted by the requests each served.

- Probability of waiting: Erlang's C formula for M/M/c at offered load ``a = lam / mu``, computed
  with the Erlang-B recursion ``B_k = a B_{k-1} / (k + a B_{k-1})``, ``C = B / (1 - rho (1 - B))``
  (numerically stable for thousands of servers).
- Waiting time: exponential conditional on waiting, with mean ``(1 + cs^2) / 2 / (c mu - lam)``:
  the M/M/c conditional wait scaled by the Allen-Cunneen / Lee-Longton factor
  ``(ca^2 + cs^2) / 2`` with ``ca = 1`` (Poisson). This is the approximation of W. Whitt,
  "Approximations for the GI/G/m queue", Production and Operations Management 2(2), 1993,
  eqs. (2.19)-(2.24) (P(W > 0) from M/M/c, conditional wait exponential), exact for M/M/c.
- Response time: ``R = W + S`` with W independent of S (FCFS), its CDF on a uniform grid by
  convolving W's (atom at 0 plus exponential) with S's discretised density (numpy FFT).
- Service time: lognormal with the given mean and CV (or exponential, or deterministic at CV 0).

``tests/test_edge.py`` checks the p95 of this model against a per-request FCFS simulation of the
same queue within 5 %. Overload (``rho >= 1``) cannot be held in a steady state: the interval
serves ``c mu`` requests/s and sheds the rest (admission control), and the served requests see the
queue at ``RHO_MAX``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

FloatArray = npt.NDArray[np.float64]

RHO_MAX = 0.99
"""Utilisation at which an overloaded interval's served requests are assumed to queue."""
GRID_POINTS = 4096
TAIL_PROBABILITY = 1e-6
"""The grid reaches the point where both W and S exceed it with at most this probability."""


def erlang_c(servers: int, offered: float) -> float:
    """Probability that an arrival waits in M/M/c (``offered`` = lam / mu, in Erlangs, < servers)."""
    if offered <= 0.0:
        return 0.0
    b = 1.0
    for k in range(1, servers + 1):
        b = offered * b / (k + offered * b)
    rho = offered / servers
    return b / (1.0 - rho * (1.0 - b))


@dataclass(frozen=True, slots=True)
class ServiceTime:
    """The service-time distribution of one request (ms)."""

    mean_ms: float
    cv: float
    distribution: str = "lognormal"

    @property
    def scv(self) -> float:
        """Squared coefficient of variation."""
        return 1.0 if self.distribution == "exponential" else self.cv ** 2

    def quantile_bound_ms(self) -> float:
        """A time S exceeds with probability below ``TAIL_PROBABILITY`` (Chebyshev-safe for any law used)."""
        if self.distribution == "exponential":
            return self.mean_ms * -math.log(TAIL_PROBABILITY)
        if self.cv == 0.0:
            return self.mean_ms * 1.01
        sigma = math.sqrt(math.log1p(self.cv ** 2))
        mu = math.log(self.mean_ms) - sigma ** 2 / 2
        return math.exp(mu + 4.8 * sigma)  # z(1 - 1e-6) = 4.75

    def mass(self, edges_ms: FloatArray) -> FloatArray:
        """Probability of S in each grid cell ``[edges[i], edges[i+1])`` (sums to ~1)."""
        if self.distribution == "exponential":
            cdf = -np.expm1(-edges_ms / self.mean_ms)
        elif self.cv == 0.0:
            cdf = (edges_ms >= self.mean_ms).astype(np.float64)
        else:
            cdf = _lognormal_cdf(edges_ms, self.mean_ms, self.cv)
        mass: FloatArray = np.diff(cdf)
        return mass


def _lognormal_cdf(x_ms: FloatArray, mean_ms: float, cv: float) -> FloatArray:
    sigma = math.sqrt(math.log1p(cv ** 2))
    mu = math.log(mean_ms) - sigma ** 2 / 2
    z = (np.log(np.maximum(x_ms, 1e-300)) - mu) / (sigma * math.sqrt(2.0))
    cdf: FloatArray = 0.5 * (1.0 + _erf(z))
    return np.where(x_ms > 0, cdf, 0.0)


def _erf(x: FloatArray) -> FloatArray:
    """Vectorised ``math.erf`` (numpy has none; ``math.erf`` is exact to double precision)."""
    out: FloatArray = np.asarray(np.frompyfunc(math.erf, 1, 1)(x), dtype=np.float64)
    return out


@dataclass(frozen=True, slots=True)
class IntervalQueue:
    """One interval of one service: arrivals, servers, and what the queue does with them."""

    rate_ops_s: float
    servers: int
    service: ServiceTime

    @property
    def capacity_ops_s(self) -> float:
        return self.servers * 1000.0 / self.service.mean_ms

    @property
    def served_ops_s(self) -> float:
        return min(self.rate_ops_s, RHO_MAX * self.capacity_ops_s) if self.overloaded else self.rate_ops_s

    @property
    def overloaded(self) -> bool:
        return self.rate_ops_s >= RHO_MAX * self.capacity_ops_s

    def wait(self) -> tuple[float, float]:
        """P(wait > 0) and the mean of the conditional (exponential) wait in ms."""
        lam = self.served_ops_s / 1000.0  # per ms
        mu = 1.0 / self.service.mean_ms
        if lam <= 0.0:
            return 0.0, 0.0
        p_wait = erlang_c(self.servers, lam / mu)
        return p_wait, (1.0 + self.service.scv) / 2.0 / (self.servers * mu - lam)

    def horizon_ms(self) -> float:
        """How far the latency grid must reach."""
        p_wait, wait_mean_ms = self.wait()
        wait_bound = wait_mean_ms * max(math.log(max(p_wait, 1e-300) / TAIL_PROBABILITY), 0.0)
        return self.service.quantile_bound_ms() + wait_bound


def response_cdf(queue: IntervalQueue, edges_ms: FloatArray) -> FloatArray:
    """P(W + S <= t) at each grid edge ``t`` (a uniform grid starting at 0)."""
    step_ms = float(edges_ms[1] - edges_ms[0])
    service_mass = queue.service.mass(np.append(edges_ms, edges_ms[-1] + step_ms))
    p_wait, wait_mean_ms = queue.wait()
    wait_mass = np.zeros_like(service_mass)
    if p_wait > 0.0:
        wait_cdf = -np.expm1(-np.append(edges_ms, edges_ms[-1] + step_ms) / wait_mean_ms)
        wait_mass = p_wait * np.diff(wait_cdf)
    wait_mass[0] += 1.0 - p_wait
    n = service_mass.size
    size = 1 << int(2 * n - 1).bit_length()
    total = np.fft.irfft(np.fft.rfft(service_mass, size) * np.fft.rfft(wait_mass, size), size)[:n]
    cdf: FloatArray = np.clip(np.cumsum(np.maximum(total, 0.0)), 0.0, 1.0)
    return cdf


def percentile_ms(cdf: FloatArray, edges_ms: FloatArray, q: float) -> float:
    """The ``q``-th percentile of a distribution given as its CDF at grid edges (right edge of the cell)."""
    total = float(cdf[-1])
    if total <= 0.0:
        return float("nan")
    index = int(np.searchsorted(cdf, q / 100.0 * total, side="left"))
    step = float(edges_ms[1] - edges_ms[0])
    return float(edges_ms[min(index, edges_ms.size - 1)] + step)


def grid_ms(horizon_ms: float, points: int = GRID_POINTS) -> FloatArray:
    """A uniform grid from 0 to ``horizon_ms``."""
    edges: FloatArray = np.linspace(0.0, horizon_ms, points)
    return edges


class LatencyMixture:
    """The run's latency distribution of one service: intervals' distributions weighted by requests.

    One grid per service (reaching the worst interval's horizon plus the largest network delay),
    so the service-time density is transformed once and each interval costs one FFT pair.
    """

    def __init__(self, service: ServiceTime, horizon_ms: float, points: int = GRID_POINTS) -> None:
        self.edges_ms = grid_ms(horizon_ms, points)
        self.step_ms = float(self.edges_ms[1] - self.edges_ms[0])
        self._size = 1 << int(2 * points - 1).bit_length()
        bounds = np.append(self.edges_ms, self.edges_ms[-1] + self.step_ms)
        self._service_fft = np.fft.rfft(service.mass(bounds), self._size)
        self._bounds = bounds
        self.mass: FloatArray = np.zeros(points)
        self.requests = 0.0

    def add(self, queue: IntervalQueue, requests: float, shift_ms: float) -> None:
        """``requests`` served in an interval with this queue, each also delayed by ``shift_ms``."""
        if requests <= 0.0:
            return
        p_wait, wait_mean_ms = queue.wait()
        wait_mass = np.zeros(self.edges_ms.size)
        if p_wait > 0.0:
            wait_mass = p_wait * np.diff(-np.expm1(-self._bounds / wait_mean_ms))
        wait_mass[0] += 1.0 - p_wait
        total = np.fft.irfft(self._service_fft * np.fft.rfft(wait_mass, self._size), self._size)[:self.edges_ms.size]
        cells = min(round(shift_ms / self.step_ms), self.edges_ms.size - 1)
        self.mass[cells:] += requests * np.maximum(total[:self.edges_ms.size - cells], 0.0)
        self.requests += requests

    def percentile_ms(self, q: float) -> float:
        """The ``q``-th percentile over every request added (NaN when none was)."""
        return percentile_ms(np.cumsum(self.mass), self.edges_ms, q)

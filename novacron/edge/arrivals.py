"""Request arrivals per aggregation interval: Poisson, a two-state MMPP, or a rate trace.

Theory of operation
-------------------
The latency model (``queueing``) needs, per interval, the number of requests that arrived; within
an interval they are taken as Poisson. Across intervals:

- ``poisson``: a constant rate; each interval's count is Poisson(rate x interval).
- ``mmpp``: a two-state Markov-modulated Poisson process (Fischer and Meier-Hellstern, "The
  Markov-modulated Poisson process (MMPP) cookbook", Performance Evaluation 18, 1993): a calm state
  at ``rate`` and a burst state at ``rate x burst_rate_factor``, with exponential sojourns of means
  ``calm_mean_s`` and ``burst_mean_s``. The chain is simulated in continuous time; an interval's
  rate is the time-weighted mean of the states it spent time in (exact for the count's mean; the
  count is then Poisson, which ignores the extra variance of a switch inside an interval: keep
  the interval well below the sojourns).
- ``trace``: interval ``i`` has rate ``rate_trace_ops_s[i mod len]``; the count is Poisson.

Every draw comes from the generator passed in (one per service, derived from the run seed).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from novacron.edge.config import EdgeServiceConfig

FloatArray = npt.NDArray[np.float64]


def interval_counts(service: EdgeServiceConfig, intervals: int, interval_s: float,
                    rng: np.random.Generator) -> FloatArray:
    """Requests arriving in each interval."""
    mean_rates = interval_rates(service, intervals, interval_s, rng)
    counts: FloatArray = rng.poisson(mean_rates * interval_s).astype(np.float64)
    return counts


def interval_rates(service: EdgeServiceConfig, intervals: int, interval_s: float,
                   rng: np.random.Generator) -> FloatArray:
    """The mean arrival rate (requests/s) of each interval."""
    if service.arrival == "trace":
        trace = np.asarray(service.rate_trace_ops_s, dtype=np.float64)
        rates: FloatArray = trace[np.arange(intervals) % trace.size]
        return rates
    if service.arrival == "mmpp":
        burst = burst_fraction(intervals, interval_s, service.calm_mean_s, service.burst_mean_s, rng)
        mmpp: FloatArray = service.rate_ops_s * (1.0 + (service.burst_rate_factor - 1.0) * burst)
        return mmpp
    return np.full(intervals, service.rate_ops_s)


def burst_fraction(intervals: int, interval_s: float, calm_mean_s: float, burst_mean_s: float,
                   rng: np.random.Generator) -> FloatArray:
    """Share of each interval the two-state chain spends bursting (starts calm)."""
    horizon_s = intervals * interval_s
    switches: list[float] = []
    t, bursting = 0.0, False
    while t < horizon_s:
        t += float(rng.exponential(burst_mean_s if bursting else calm_mean_s))
        switches.append(min(t, horizon_s))
        bursting = not bursting
    # Cumulative burst time at any instant, by integrating the on/off signal piecewise.
    times = np.concatenate(([0.0], np.asarray(switches)))
    on = np.arange(times.size - 1) % 2 == 1  # segments alternate calm, burst, calm...
    burst_cum = np.concatenate(([0.0], np.cumsum(np.where(on, np.diff(times), 0.0))))
    edges = np.arange(intervals + 1) * interval_s
    at_edges = np.interp(edges, times, burst_cum)
    fraction: FloatArray = np.clip(np.diff(at_edges) / interval_s, 0.0, 1.0)  # float sums may overshoot 1 by an ulp
    return fraction


def mean_rate_ops_s(service: EdgeServiceConfig) -> float:
    """The long-run mean rate (what the placement sizes for)."""
    if service.arrival == "trace":
        return float(np.mean(service.rate_trace_ops_s))
    if service.arrival == "mmpp":
        calm, burst = service.calm_mean_s, service.burst_mean_s
        return service.rate_ops_s * (calm + service.burst_rate_factor * burst) / (calm + burst)
    return service.rate_ops_s

"""What the aggregated edge latency model saves: one simulated hour of the built-in ``edge``
scenario's three services (about 58 million requests) through the per-interval M/G/c model, against
the per-request FCFS simulation of one million requests of its IoT service, timed in the same run.

    python -m benchmarks.edge_cost

Prints both times and the ratio per request; quote it with the load average beside it
(``benchmarks/RESULTS_edge.md``).
"""

from __future__ import annotations

import os
import time

import numpy as np

from novacron.edge.arrivals import interval_counts
from novacron.edge.placement import place_services, service_time
from novacron.edge.service import SiteOutages, measure
from novacron.scenario import resolve_scenario
from sim.edge import latency_budgets_ms, per_request_latencies_ms

PER_REQUEST = 1_000_000


def main() -> None:
    scenario = resolve_scenario("edge")[0]
    config, intervals = scenario.edge, round(3600 / scenario.edge.interval_s)
    placed = {p.service: p for p in place_services(config, latency_budgets_ms(scenario), np.random.default_rng(0))}
    started, requests = time.perf_counter(), 0.0
    for name, svc in config.services():
        counts = interval_counts(svc, intervals, config.interval_s, np.random.default_rng(1))
        requests += measure(config, svc, placed[name], counts, SiteOutages.none(intervals)).requests_arrived
    aggregated_s = time.perf_counter() - started
    started = time.perf_counter()
    per_request_latencies_ms(config.iot.rate_ops_s, config.iot.cores, service_time(config.iot), PER_REQUEST,
                             np.random.default_rng(0))
    per_request_s = time.perf_counter() - started
    ratio = (per_request_s / PER_REQUEST) / (aggregated_s / requests)
    print(f"aggregated: {requests / 1e6:.1f} M requests in {aggregated_s:.2f} s; "
          f"per request: {PER_REQUEST / 1e6:.0f} M in {per_request_s:.2f} s; "
          f"per-request cost ratio {ratio:.0f}x; load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()

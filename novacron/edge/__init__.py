"""Edge computing: request-level services with latency targets, placed at edge sites or in the cloud.

``config`` is the ``[edge]`` scenario section; ``arrivals`` draws each interval's request count
(Poisson, a two-state MMPP, or a rate trace); ``queueing`` turns an interval's arrivals into a
latency distribution in closed form (M/G/c with the Allen-Cunneen / Whitt approximation);
``placement`` puts each service at an edge site or in the cloud with the placement scheduler's
filters and a latency-aware scorer; ``service`` folds a run's intervals into per-service
percentiles, throughput and uptime. ``sim.edge`` drives it in a simulated run.
"""

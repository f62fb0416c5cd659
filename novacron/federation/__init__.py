"""Federation: datacenters of clusters joined by a WAN, scheduled hierarchically.

``config`` (the ``[federation]`` section), ``wan`` (round-trip matrices), ``placement`` (the
global scheduler and the cluster scheduler it delegates to), ``gossip`` (metrics replicated
eventually), ``state`` (cluster state replicated strongly through the federation Raft group),
``events`` and ``metrics``. Pure: the simulation drives it from ``sim.federation``.
"""

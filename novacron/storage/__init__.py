"""Distributed storage, pure: placement (``hashing``, ``bounded``, ``domains``), redundancy codecs
(``codecs``), durability in closed form (``durability``), imbalance and reweighting
(``rebalance``), and the scenario's ``[storage]`` section with its event, metrics and assessment
(``config``, ``events``, ``metrics``, ``assess``). The real sharded store is
``backends.sharded_store`` (and ``backends.sharded_tier`` as a cache tier); the durability
simulation is ``sim.storage_durability``.
"""

"""The simulation runtime of ``novacron.bft``: a cluster driver, Byzantine behaviours, the Byzantine vopr."""

"""Real PBFT replicas: ``novacron.bft`` over TCP (the managers' framing) with SQLite storage."""

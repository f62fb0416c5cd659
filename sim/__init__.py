"""The SimPy runtime: a deterministic discrete-event model of a NovaCron cluster."""

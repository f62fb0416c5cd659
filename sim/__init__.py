"""The SimPy runtime: a deterministic discrete-event model of a NovaCron cluster."""

from __future__ import annotations

from typing import Any


def __getattr__(name: str) -> Any:
    # ``from sim import Simulation`` without importing the model for every ``import sim.x``.
    if name == "Simulation":
        from sim.simulation import Simulation

        return Simulation
    raise AttributeError(f"module 'sim' has no attribute {name!r}")

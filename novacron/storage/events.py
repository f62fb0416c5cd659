"""Storage events: a pool's closed-form assessment (one per run)."""

from __future__ import annotations

from novacron.events import Event, event


@event
class StoragePoolAssessed(Event):
    """The scenario's storage pool, assessed in closed form at the start of the run."""

    pool_nodes: int
    raw_tb: float
    scheme: str
    usable_tb: float
    rebuild_h: float
    """one node's rebuild, from failure (detection included) to fully re-protected"""
    annual_loss_probability: float
    durability_nines: float

"""Storage events: a pool's closed-form assessment (one per run), its cross-datacenter replication."""

from __future__ import annotations

from novacron.events import Event, event
from novacron.storage.xdc import ModeResult


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


@event
class StorageReplicationAssessed(Event, ModeResult):
    """The pool's writes replicated to another datacenter in one mode, assessed when the primary
    datacenter was lost (or at the start of the run, over its whole length, when none is); the
    mode's figures are ``ModeResult``'s fields."""

    selected: bool
    """the mode the scenario's targets check"""
    primary_datacenter: str
    replica_datacenter: str
    lost_datacenter: str
    rtt_ms: float

"""The storage pool of a simulated run: assessed at time 0 (``novacron.storage.assess``), and its
cross-datacenter replication when the scenario asks for it (``sim.storage_xdc``)."""

from __future__ import annotations

from novacron.storage.assess import assess_pool
from novacron.storage.events import StoragePoolAssessed
from sim import storage_xdc
from sim.context import SimContext


def start(ctx: SimContext) -> StoragePoolAssessed | None:
    assessed = assess_pool(ctx.scenario.storage, ctx.recorder)
    storage_xdc.start(ctx)
    return assessed

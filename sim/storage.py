"""The storage pool of a simulated run: assessed at time 0 (``novacron.storage.assess``)."""

from __future__ import annotations

from novacron.storage.assess import assess_pool
from novacron.storage.events import StoragePoolAssessed
from sim.context import SimContext


def start(ctx: SimContext) -> StoragePoolAssessed | None:
    return assess_pool(ctx.scenario.storage, ctx.recorder)

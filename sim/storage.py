"""The storage pool of a run: assessed in closed form at time 0 (``novacron.storage.config``)."""

from __future__ import annotations

import math

from novacron.storage.durability import estimate_pool
from novacron.storage.events import StoragePoolAssessed
from sim.context import SimContext


def start(ctx: SimContext) -> StoragePoolAssessed | None:
    cfg = ctx.scenario.storage
    if not cfg.enabled:
        return None
    pool = estimate_pool(cfg.nodes, cfg.nodes * cfg.disk_tb, cfg.scheme, afr=cfg.disk_afr, shard_mib=cfg.shard_mib,
                         rebuild_write_mib_s=cfg.rebuild_write_mib_s, repair_share_of_nic=cfg.repair_share_of_nic,
                         nic_mib_s=cfg.nic_mib_s, detect_h=cfg.detect_min / 60)
    nines = pool.nines if math.isfinite(pool.nines) else 99.0
    return ctx.recorder.emit(StoragePoolAssessed, source="storage", pool_nodes=cfg.nodes, raw_tb=pool.raw_tb,
                             scheme=cfg.scheme, usable_tb=pool.usable_tb, rebuild_h=pool.rebuild_h,
                             annual_loss_probability=pool.annual_loss_probability, durability_nines=nines)

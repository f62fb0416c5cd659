"""The run's storage pool assessment, shared by both runtimes: one ``StoragePoolAssessed`` event.

The pool is assessed in closed form (``durability.estimate_pool``), so the simulated and the real
runtime emit the same event for the same ``[storage]`` section, at the start of the run.
"""

from __future__ import annotations

import math

from novacron.ports import EventSink
from novacron.storage.config import StorageConfig
from novacron.storage.durability import estimate_pool
from novacron.storage.events import StoragePoolAssessed

NINES_CAP = 99.0
"""Reported instead of infinity when the loss probability underflows to 0."""


def assess_pool(cfg: StorageConfig, events: EventSink) -> StoragePoolAssessed | None:
    if not cfg.enabled:
        return None
    pool = estimate_pool(cfg.nodes, cfg.nodes * cfg.disk_tb, cfg.scheme, afr=cfg.disk_afr, shard_mib=cfg.shard_mib,
                         rebuild_write_mib_s=cfg.rebuild_write_mib_s, repair_share_of_nic=cfg.repair_share_of_nic,
                         nic_mib_s=cfg.nic_mib_s, detect_h=cfg.detect_min / 60)
    nines = pool.nines if math.isfinite(pool.nines) else NINES_CAP
    return events.emit(StoragePoolAssessed, source="storage", pool_nodes=cfg.nodes, raw_tb=pool.raw_tb,
                       scheme=cfg.scheme, usable_tb=pool.usable_tb, rebuild_h=pool.rebuild_h,
                       annual_loss_probability=pool.annual_loss_probability, durability_nines=nines)

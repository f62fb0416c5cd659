"""Catalogue metrics of the storage pool, from its ``StoragePoolAssessed`` event and its
cross-datacenter replication (``StorageReplicationAssessed``, one per mode)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from novacron.events import Event
from novacron.storage.events import StoragePoolAssessed, StorageReplicationAssessed
from novacron.streaming import Metrics
from novacron.text_table import text_table


class StorageFold:
    def __init__(self) -> None:
        self.assessed: StoragePoolAssessed | None = None
        self.replication: list[StorageReplicationAssessed] = []

    def handlers(self) -> Mapping[type[Event], Callable[[Any], None]]:
        return {StoragePoolAssessed: self._assessed, StorageReplicationAssessed: self.replication.append}

    def _assessed(self, ev: StoragePoolAssessed) -> None:
        self.assessed = ev

    def result(self) -> Metrics:
        return {**self._pool(), **self._replication()}

    def _replication(self) -> Metrics:
        m: Metrics = {}
        for ev in self.replication:
            for prefix in (f"storage.xdc_{ev.mode}_", "storage.xdc_") if ev.selected else (f"storage.xdc_{ev.mode}_",):
                m.update({f"{prefix}at_risk_mib": ev.at_risk_mib, f"{prefix}at_risk_objects": ev.at_risk_objects,
                          f"{prefix}rpo_s": ev.rpo_s, f"{prefix}max_lag_s": ev.max_lag_s})
                if ev.writes:  # no write, no latency: "not measured", not a 0 ms pass
                    m.update({f"{prefix}write_p50_ms": ev.write_p50_ms, f"{prefix}write_p99_ms": ev.write_p99_ms})
        return m

    def _pool(self) -> Metrics:
        ev = self.assessed
        if ev is None:
            return {}
        return {"storage.durability_nines": ev.durability_nines,
                "storage.annual_loss_probability": ev.annual_loss_probability,
                "storage.rebuild_h": ev.rebuild_h, "storage.usable_tb": ev.usable_tb, "storage.raw_tb": ev.raw_tb}


XDC_COLUMNS = (("write_p50_ms", "write p50 ms", "{:.1f}"), ("write_p99_ms", "write p99 ms", "{:.1f}"),
               ("at_risk_mib", "at risk MiB", "{:.1f}"), ("at_risk_objects", "at risk obj", "{:.0f}"),
               ("rpo_s", "RPO s", "{:.3g}"), ("max_lag_s", "max lag s", "{:.3g}"))


def replication_table(metrics: Mapping[str, float]) -> str:
    """Both replication modes of a run's storage pool side by side ('' without replication)."""
    modes = [mode for mode in ("sync", "async") if f"storage.xdc_{mode}_write_p50_ms" in metrics]
    if not modes:
        return ""
    rows = [(mode, [fmt.format(metrics[f"storage.xdc_{mode}_{key}"]) for key, _, fmt in XDC_COLUMNS])
            for mode in modes]
    return text_table("replication", 11, [title for _, title, _ in XDC_COLUMNS], 12, rows)

"""Catalogue metrics of the storage pool, from its ``StoragePoolAssessed`` event."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from novacron.events import Event
from novacron.storage.events import StoragePoolAssessed
from novacron.streaming import Metrics


class StorageFold:
    def __init__(self) -> None:
        self.assessed: StoragePoolAssessed | None = None

    def handlers(self) -> Mapping[type[Event], Callable[[Any], None]]:
        return {StoragePoolAssessed: self._assessed}

    def _assessed(self, ev: StoragePoolAssessed) -> None:
        self.assessed = ev

    def result(self) -> Metrics:
        ev = self.assessed
        if ev is None:
            return {}
        return {"storage.durability_nines": ev.durability_nines,
                "storage.annual_loss_probability": ev.annual_loss_probability,
                "storage.rebuild_h": ev.rebuild_h, "storage.usable_tb": ev.usable_tb, "storage.raw_tb": ev.raw_tb}

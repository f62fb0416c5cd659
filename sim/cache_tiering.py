"""Background tier migration in the simulated hierarchy (``novacron.cache.tiering`` applied).

Theory of operation
-------------------
The workload hands every batch of requested keys to ``TierMigrator.after_batch``: the keys
heat up in an ``AccessHeat`` and are counted. Every ``tier_migration_interval_s`` the migrator
measures the request rate over the interval just ended; below ``tier_migration_below_per_s``
it plans moves under the round's byte budget and applies them to the tiers directly: a key
going up is copied into the upper tier with that tier's default TTL (the lower tier keeps its
copy, as read-through promotion does; anything the upper tier evicts goes one tier down, as
the hierarchy demotes); a key going down leaves the upper tier and is written to the lower one
unless it is there already. Bypassing the hierarchy is safe because the section allows
migration only with write-through (no dirty entry can be dropped) and a round is skipped while
any tier is down. Each round emits one ``CacheTiersMigrated`` event (zero moves when busy).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from novacron.cache.config import CacheConfig
from novacron.cache.events import CacheTiersMigrated
from novacron.cache.tiering import AccessHeat, TierMove, TierSpace, plan_moves, quiet
from novacron.ports import EventSink

if TYPE_CHECKING:  # sim.cache builds the migrator
    from sim.cache import TierModel


class TierMigrator:
    def __init__(self, cfg: CacheConfig, tiers: list[TierModel], value: bytes, events: EventSink) -> None:
        self.cfg, self.tiers, self.value, self.events = cfg, tiers, value, events
        self.heat = AccessHeat(cfg.tier_migration_half_life_s)
        self.requests = 0
        self.next_round_s = cfg.tier_migration_interval_s

    def after_batch(self, keys: list[str], now_s: float) -> None:
        self.heat.observe(keys, now_s)
        self.requests += len(keys)
        if now_s + 1e-9 < self.next_round_s:
            return
        rate = self.requests / self.cfg.tier_migration_interval_s
        self.requests = 0
        self.next_round_s += self.cfg.tier_migration_interval_s
        moves: list[TierMove] = []
        if quiet(rate, self.cfg.tier_migration_below_per_s) and all(t.up for t in self.tiers):
            moves = plan_moves([self._space(t) for t in self.tiers], lambda k: self.heat.heat(k, now_s),
                               object_bytes=self.cfg.object_bytes,
                               budget_bytes=int(self.cfg.tier_migration_budget_mib * 2**20))
            for move in moves:
                self._apply(move)
        up = sum(1 for m in moves if m.to_tier < m.from_tier)
        self.events.emit(CacheTiersMigrated, source="cache", request_rate_per_s=rate, moved_up=up,
                         moved_down=len(moves) - up, moved_bytes=len(moves) * self.cfg.object_bytes)

    def _space(self, tier: TierModel) -> TierSpace:
        inner = tier.inner
        unit = self.cfg.object_bytes if inner.bounded_by_bytes else 1
        return TierSpace(keys=inner.keys(), free_objects=max(0, (inner.capacity - inner.used) // unit))

    def _apply(self, move: TierMove) -> None:
        source, target = self.tiers[move.from_tier], self.tiers[move.to_tier]
        if move.to_tier > move.from_tier:
            source.delete(move.key)
            if not target.contains(move.key):
                target.set(move.key, self.value)
            return
        for evicted in target.set(move.key, self.value):
            below = move.to_tier + 1
            if below < len(self.tiers) and not self.tiers[below].contains(evicted.key):
                self.tiers[below].set(evicted.key, self.value)

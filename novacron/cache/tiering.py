"""Background tier migration in low-usage periods (the analysis' "tier migration patterns").

Theory of operation
-------------------
Read-through promotion fills the fast tiers with what was read last; at night, when few
requests arrive, the daytime working set expires out of L1 and L2 (their TTLs are minutes to
an hour) and the first busy hour of the next day pays the slow tiers for it. A background
migrator uses the quiet time instead: it remembers how hot each key is over a long horizon
(``AccessHeat``: request counts decayed with a half-life, a day by default, so yesterday's
working set is still hot at dawn) and, whenever the request rate is below a threshold,
plans ``TierMove``s between adjacent tiers: the hottest keys of a lower tier that the upper
tier lacks are copied up, and if the upper tier is full its coldest entries are moved down
(to the lower tier, unless it holds them already) to make room -- a swap is made only if the
key going up is hotter than the one it displaces. Every move copies one object; the plan
stops when the round's byte budget is spent, so migration never takes more than its share of
the tiers' bandwidth. When the rate is at or above the threshold it plans nothing.

Pure: time is an argument, the tiers' contents are given as lists of keys; the runtime
applies the moves (``sim.cache``) with the tiers' own default TTLs.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass


class AccessHeat:
    """Per-key request counts that halve every ``half_life_s`` (exponentially decayed)."""

    def __init__(self, half_life_s: float) -> None:
        if half_life_s <= 0:
            raise ValueError(f"half_life_s = {half_life_s!r}: must be > 0")
        self.half_life_s = half_life_s
        self._value: dict[str, tuple[float, float]] = {}

    def observe(self, keys: Iterable[str], now_s: float) -> None:
        for key in keys:
            self._value[key] = (self.heat(key, now_s) + 1.0, now_s)

    def heat(self, key: str, now_s: float) -> float:
        entry = self._value.get(key)
        if entry is None:
            return 0.0
        value, at_s = entry
        return value * math.exp2(-(now_s - at_s) / self.half_life_s)

    def __len__(self) -> int:
        return len(self._value)


@dataclass(frozen=True, slots=True)
class TierMove:
    key: str
    from_tier: int
    to_tier: int


@dataclass(frozen=True, slots=True)
class TierSpace:
    """One tier as the planner sees it: its keys and how many more objects fit."""

    keys: Sequence[str]
    free_objects: int


def quiet(request_rate_per_s: float, below_per_s: float) -> bool:
    return request_rate_per_s < below_per_s


def plan_moves(tiers: Sequence[TierSpace], heat: Callable[[str], float], *, object_bytes: int,
               budget_bytes: int) -> list[TierMove]:
    """Moves between adjacent tiers, top pair first, within ``budget_bytes`` of copying."""
    moves: list[TierMove] = []
    budget = budget_bytes
    for upper in range(len(tiers) - 1):
        spent, pair_moves = _plan_pair(tiers[upper], tiers[upper + 1], upper, heat, object_bytes, budget)
        moves.extend(pair_moves)
        budget -= spent
        if budget < object_bytes:
            break
    return moves


def _plan_pair(upper: TierSpace, lower: TierSpace, index: int, heat: Callable[[str], float], object_bytes: int,
               budget: int) -> tuple[int, list[TierMove]]:
    in_upper, in_lower = set(upper.keys), set(lower.keys)
    rising = sorted((k for k in lower.keys if k not in in_upper), key=lambda k: (-heat(k), k))
    falling = sorted(upper.keys, key=lambda k: (heat(k), k))
    moves: list[TierMove] = []
    free, spent, next_cold = upper.free_objects, 0, 0
    for key in rising:
        hot = heat(key)
        if hot <= 0:
            break
        if free > 0:
            cost = object_bytes
        else:
            if next_cold >= len(falling) or heat(falling[next_cold]) >= hot:
                break
            cold = falling[next_cold]
            cost = object_bytes if cold in in_lower else 2 * object_bytes
        if spent + cost > budget:
            break
        if free > 0:
            free -= 1
        else:
            moves.append(TierMove(falling[next_cold], index, index + 1))
            next_cold += 1
        moves.append(TierMove(key, index + 1, index))
        spent += cost
    return spent, moves

"""Run seeds: one integer per run, one independent generator per component.

Each component's generator comes from ``SeedSequence(entropy=run_seed, spawn_key=(k,))`` where
``k`` is a stable 64-bit hash of the component's name. This is what ``SeedSequence.spawn`` does
with positional keys; keying by name instead of position means adding a component never
reshuffles the streams of the others, and two runs with the same seed draw the same numbers.
"""

from __future__ import annotations

import hashlib
import math
from random import Random

import numpy as np

MAX_SEED = 2**63 - 1


def check_seed(seed: int) -> int:
    """The one rule for a run seed: an integer from 0 to ``MAX_SEED``; ``ValueError`` otherwise."""
    if not 0 <= seed <= MAX_SEED:
        raise ValueError(f"seed {seed} is out of range; allowed: 0 to {MAX_SEED}")
    return seed


def consecutive_seeds(first: int, count: int, *, max_count: int, count_field: str = "--seeds",
                      first_field: str = "the first seed") -> list[int]:
    """``count`` seeds from ``first`` on (``first``, ``first + 1``, ...); ``ValueError`` naming
    ``count_field`` (and ``first_field``, where the first seed leaves less room) when the count is
    outside 1..``max_count`` or the last seed would pass ``MAX_SEED``."""
    check_seed(first)
    allowed = min(max_count, MAX_SEED - first + 1)
    if not 1 <= count <= allowed:
        beyond = (f" (from {first_field} {first} the last seed may be at most {MAX_SEED})"
                  if allowed < max_count else "")
        raise ValueError(f"{count_field} {count}: allowed: an integer from 1 to {allowed}{beyond}")
    return list(range(first, first + count))


def log_uniform(rng: Random, low: float, high: float) -> float:
    """A draw uniform in log space between ``low`` and ``high`` (one ``rng.uniform`` call)."""
    return math.exp(rng.uniform(math.log(low), math.log(high)))


def component_key(component: str) -> int:
    return int.from_bytes(hashlib.blake2b(component.encode(), digest_size=8).digest(), "little")


class RunSeeds:
    """Derives per-component random generators from one run seed."""

    def __init__(self, seed: int) -> None:
        self.seed = check_seed(seed)

    def sequence(self, component: str) -> np.random.SeedSequence:
        return np.random.SeedSequence(entropy=self.seed, spawn_key=(component_key(component),))

    def numpy(self, component: str) -> np.random.Generator:
        return np.random.Generator(np.random.PCG64(self.sequence(component)))

    def python(self, component: str) -> Random:
        """A ``random.Random`` for code that wants one (Raft timeouts, for example)."""
        state = self.sequence(component).generate_state(4, np.uint32)
        return Random(int.from_bytes(state.tobytes(), "little"))

    def integer(self, component: str) -> int:
        return int(self.sequence(component).generate_state(1, np.uint64)[0] % MAX_SEED)

"""Consecutive run seeds: the one rule for ``--seeds`` counts from a first seed."""

from __future__ import annotations

import pytest


def test_consecutive_seeds_stop_at_the_last_seed_and_name_the_flag() -> None:
    from novacron.seeding import MAX_SEED, consecutive_seeds

    assert consecutive_seeds(MAX_SEED - 1, 2, max_count=10) == [MAX_SEED - 1, MAX_SEED]
    assert consecutive_seeds(5, 3, max_count=3) == [5, 6, 7]
    expected = rf"--seeds 3: allowed: an integer from 1 to 2 \(from --first-seed {MAX_SEED - 1}"
    with pytest.raises(ValueError, match=expected):
        consecutive_seeds(MAX_SEED - 1, 3, max_count=10, first_field="--first-seed")
    with pytest.raises(ValueError, match=r"--runs 0: allowed: an integer from 1 to 10$"):
        consecutive_seeds(0, 0, count_field="--runs", max_count=10)
    with pytest.raises(ValueError, match="seed -1 is out of range"):
        consecutive_seeds(-1, 1, max_count=10)

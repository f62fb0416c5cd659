"""The checker's budget: a search that would run long ends with "unknown", never a false verdict."""

from __future__ import annotations

import math

from novacron.raft.linearizability import GET, PUT, Operation, check_history


def many_unfinished_writes(count: int) -> list[Operation]:
    """``count`` writes that never answered, then a read of none of them: the search must try
    many orders of the pending writes before it can place the read (here, placing none)."""
    ops = [Operation(i, "k", PUT, str(i), float(i), math.inf) for i in range(count)]
    ops.append(Operation(99, "k", GET, "absent-value", count + 1.0, count + 2.0))
    return ops


def test_an_exhausted_budget_is_unknown_not_a_pass_or_a_violation() -> None:
    result = check_history(many_unfinished_writes(16), max_explored_per_key=500)
    assert result.verdict == "unknown" and not result.ok
    assert result.undecided == ("k",) and result.key is None
    assert result.explored <= 501


def test_a_budget_large_enough_gives_the_real_verdict() -> None:
    small = many_unfinished_writes(4)
    assert check_history(small, max_explored_per_key=10_000).verdict == "violation"
    good = [Operation(1, "k", PUT, "1", 0.0, 1.0), Operation(2, "k", GET, "1", 2.0, 3.0)]
    result = check_history(good, max_explored_per_key=10)
    assert result.ok and result.verdict == "linearizable"


def test_a_violation_on_one_key_is_reported_even_after_an_undecided_key() -> None:
    stale = [Operation(1, "z", PUT, "1", 0.0, 1.0), Operation(1, "z", PUT, "2", 1.5, 2.0),
             Operation(2, "z", GET, "1", 3.0, 4.0)]
    result = check_history(many_unfinished_writes(16) + stale, max_explored_per_key=500)
    assert result.verdict == "violation" and result.key == "z" and result.undecided == ("k",)

"""The checker's budget: a search that would run long ends with "unknown", never a false verdict."""

from __future__ import annotations

from novacron.raft.linearizability import GET, PUT, Operation, check_history


def many_unfinished_writes(count: int) -> list[Operation]:
    """``count`` concurrent writes, then a read of none of them: the search must try many orders
    of the writes before it can show that no order explains the read. (Writes that never
    answered would not do: the checker drops pending writes that no read observed.)"""
    ops = [Operation(i, "k", PUT, str(i), 0.0, 100.0 + i) for i in range(count)]
    ops.append(Operation(99, "k", GET, "absent-value", 200.0, 201.0))
    return ops


def test_an_exhausted_budget_is_unknown_not_a_pass_or_a_violation() -> None:
    result = check_history(many_unfinished_writes(16), budget=500)
    assert result.verdict == "unknown"  # ok (no violation found) is no proof: the verdict says unknown
    assert result.unknown_keys == ("k",) and result.key is None
    assert result.explored <= 501


def test_a_budget_large_enough_gives_the_real_verdict() -> None:
    small = many_unfinished_writes(4)
    assert check_history(small, budget=10_000).verdict == "violation"
    good = [Operation(1, "k", PUT, "1", 0.0, 1.0), Operation(2, "k", GET, "1", 2.0, 3.0)]
    result = check_history(good, budget=10)
    assert result.ok and result.verdict == "linearizable"


def test_a_violation_on_one_key_is_reported_even_after_an_undecided_key() -> None:
    stale = [Operation(1, "z", PUT, "1", 0.0, 1.0), Operation(1, "z", PUT, "2", 1.5, 2.0),
             Operation(2, "z", GET, "1", 3.0, 4.0)]
    result = check_history(many_unfinished_writes(16) + stale, budget=500)
    assert result.verdict == "violation" and result.key == "z" and result.unknown_keys == ("k",)

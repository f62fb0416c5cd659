"""A linearizability checker for key-value histories (Wing & Gong 1993, with Lowe's memoisation).

Theory of operation
-------------------
A history is linearizable if every operation can be given a point in time between its
invocation and its response such that the operations, run one at a time in that order, give
the observed outputs (Herlihy & Wing, "Linearizability", 1990). Wing and Gong's search builds
that order: at each step, try every not-yet-linearized operation that is *minimal* (invoked
before every remaining completed operation responded), apply it to the model, and backtrack
on a mismatch. Lowe ("Testing for linearizability", 2017) made this practical by caching the
configurations (set of linearized operations, model state) already explored.

Linearizability is compositional (Herlihy & Wing, section 3.3 "locality"): a history is
linearizable iff its projection on every object is, so the checker runs one search per key
with a one-register model, which keeps each search small.

A search may be given a budget (``max_explored_per_key`` configurations): a key whose search
exhausts it is *undecided*, and the verdict is "unknown" -- neither a pass nor a violation -- so
a checker run on a long real history always ends (Knossos and Porcupine bound their searches the
same way).

Operations whose outcome is unknown (the client timed out, its manager crashed) have
``response_s = inf``: they may take effect at any point after invocation, or never. Reads whose
outcome is unknown tell nothing and should be left out of the history.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

PUT, GET = "put", "get"


@dataclass(frozen=True, slots=True)
class Operation:
    client: int
    key: str
    kind: str
    value: str | None
    """The value written (put) or read (get; ``None`` when the key was absent)."""
    invoke_s: float
    response_s: float = math.inf

    @property
    def completed(self) -> bool:
        return self.response_s != math.inf

    def describe(self) -> str:
        end = f"{self.response_s:.3f}" if self.completed else "?"
        return f"client {self.client} {self.kind}({self.key}, {self.value}) [{self.invoke_s:.3f}, {end}]"


@dataclass(frozen=True, slots=True)
class LinearizabilityResult:
    ok: bool
    """True only when every key was shown linearizable (an undecided key is not ok)."""
    key: str | None = None
    """The first key found NOT linearizable (a violation), if any."""
    history: tuple[Operation, ...] = ()
    explored: int = 0
    undecided: tuple[str, ...] = ()
    """Keys whose search ran out of budget: neither shown linearizable nor a violation."""

    @property
    def verdict(self) -> str:
        if self.key is not None:
            return "violation"
        return "unknown" if self.undecided else "linearizable"


def check_history(operations: Iterable[Operation], max_explored_per_key: int | None = None) -> LinearizabilityResult:
    by_key: dict[str, list[Operation]] = defaultdict(list)
    for op in operations:
        by_key[op.key].append(op)
    explored = 0
    undecided: list[str] = []
    for key in sorted(by_key):
        ok, count = _search(by_key[key], None, max_explored_per_key)
        explored += count
        if ok is None:
            undecided.append(key)
        elif not ok:
            return LinearizabilityResult(False, key, tuple(sorted(by_key[key], key=lambda o: o.invoke_s)), explored,
                                         tuple(undecided))
    return LinearizabilityResult(not undecided, explored=explored, undecided=tuple(undecided))


def check_register(operations: list[Operation], initial: str | None = None) -> tuple[bool, int]:
    """Is this single-key history linearizable? Returns (verdict, configurations explored)."""
    ok, explored = _search(operations, initial, None)
    return bool(ok), explored


def _search(operations: list[Operation], initial: str | None, budget: int | None) -> tuple[bool | None, int]:
    """Wing & Gong's search with Lowe's cache; ``None`` when ``budget`` configurations did not decide."""
    ops = sorted(operations, key=lambda o: o.invoke_s)
    completed_mask = 0
    for i, op in enumerate(ops):
        if op.completed:
            completed_mask |= 1 << i
    seen: set[tuple[int, str | None]] = set()
    stack: list[tuple[int, str | None]] = [(0, initial)]
    while stack:
        done, state = stack.pop()
        if done & completed_mask == completed_mask:
            return True, len(seen)
        if (done, state) in seen:
            continue
        if budget is not None and len(seen) >= budget:
            return None, len(seen)
        seen.add((done, state))
        stack.extend(_successors(ops, done, state))
    return False, len(seen)


def _successors(ops: list[Operation], done: int, state: str | None) -> list[tuple[int, str | None]]:
    deadline = math.inf
    for i, op in enumerate(ops):
        if not done >> i & 1 and op.response_s < deadline:
            deadline = op.response_s
    nexts: list[tuple[int, str | None]] = []
    for i, op in enumerate(ops):
        if done >> i & 1:
            continue
        if op.invoke_s > deadline:
            break
        if op.kind == PUT:
            nexts.append((done | 1 << i, op.value))
        elif op.value == state:
            nexts.append((done | 1 << i, state))
    return nexts

"""Lifecycles as transition tables: every legal move is listed in one place, anything else raises."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from enum import Enum
from typing import Generic, TypeVar

S = TypeVar("S", bound=Enum)


class IllegalTransition(ValueError):
    """A state change that the lifecycle's table does not allow."""


class TransitionTable(Generic[S]):
    """The legal transitions of one lifecycle (VM states, migration phases, cache entries)."""

    def __init__(self, name: str, moves: Mapping[S, Iterable[S]]) -> None:
        self.name = name
        self._moves: dict[S, frozenset[S]] = {src: frozenset(dsts) for src, dsts in moves.items()}

    def allowed(self, src: S) -> frozenset[S]:
        return self._moves.get(src, frozenset())

    def check(self, src: S, dst: S) -> S:
        """Return ``dst`` if ``src -> dst`` is legal, else raise ``IllegalTransition``."""
        if dst not in self.allowed(src):
            allowed = ", ".join(sorted(s.value for s in self.allowed(src))) or "nothing (terminal)"
            raise IllegalTransition(
                f"{self.name}: {src.value} -> {dst.value} is not allowed; from {src.value}: {allowed}"
            )
        return dst

    def is_terminal(self, state: S) -> bool:
        return not self.allowed(state)

    def states(self) -> set[S]:
        found: set[S] = set(self._moves)
        for dsts in self._moves.values():
            found |= dsts
        return found

"""Deliberately broken PBFT replicas, to show that the Byzantine vopr's checkers catch real bugs.

Each class breaks one rule; ``novacron bft-vopr --plant NAME`` runs every correct replica as one
of them (and is expected to fail). RESULTS_bft.md lists how many seeds each takes to be caught.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType

from novacron.bft.messages import PrePrepare, Signed
from novacron.bft.replica import NULL_DIGEST, Replica


class AcceptsUnsigned(Replica):
    """Takes a message with an empty signature at its word (a "trusted internal message" shortcut)."""

    def _verified(self, message: Signed) -> bool:
        return message.signature == b"" or super()._verified(message)


class QuorumOfTwoF(Replica):
    """Counts 2f votes as a quorum instead of 2f + 1 (an off-by-one in the quorum size)."""

    def quorum(self) -> int:
        return 2 * self.f


class NewViewDropsPrepared(Replica):
    """The new primary (and the backups checking it) fill every slot of the new view with the null
    batch, ignoring the prepared certificates the view changes carried (section 2.3.5's rule)."""

    def _new_view_pre_prepares(self, view: int, view_changes: Iterable[Signed]) -> tuple[int, list[PrePrepare]]:
        low, chosen = super()._new_view_pre_prepares(view, view_changes)
        return low, [PrePrepare(view, pp.seq, NULL_DIGEST, ()) for pp in chosen]


PLANTED_BUGS: Mapping[str, type[Replica]] = MappingProxyType({
    "accept-unsigned": AcceptsUnsigned,
    "quorum-2f": QuorumOfTwoF,
    "new-view-drops-prepared": NewViewDropsPrepared,
})

"""A real manager's view of its peers' health: heartbeat round trips and losses, and its own errors.

Theory of operation
-------------------
While it leads, a manager sends every peer a heartbeat each ``heartbeat_ticks`` and the peer
answers it (Raft's HeartbeatResp). Only these periodic ones count: a ReadIndex round also goes
out as heartbeats (with the read's context), as often as reads come, and timing those against
each other would count an answer still on its way as a loss. ``PeerHealth`` times the round
trips on the monotonic clock: ``sent`` when a heartbeat leaves for a peer, ``answered`` when that
peer's answer arrives (stamped when its frame is decoded, before it waits for the drive task). A heartbeat still
unanswered when the next one leaves is lost. Both feed the peer's ``novacron.health.HealthTracker``
-- the computation the simulation uses -- so the score is the same formula over real round
trips. The manager's own tracker counts its process errors (a peer connection dropped on a bad
frame or an I/O error); it cannot time its own heartbeats, so its connectivity stays "unknown"
(half the part, ``HealthTracker``) and its score is at most 80 -- a peer it measured healthy
scores up to 100. A follower sends no heartbeats and so learns nothing new about its peers: its
figures are those of its last term as leader.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from novacron.health import HealthTracker


class PeerHealth:
    def __init__(self, self_id: int, peer_ids: Iterable[int]) -> None:
        self.self_id = self_id
        self.trackers = {peer: HealthTracker() for peer in (self_id, *peer_ids)}
        self.heartbeats = dict.fromkeys(self.trackers, 0)
        self.lost = dict.fromkeys(self.trackers, 0)
        self.last_rtt_ms: dict[int, float] = {}
        self._outstanding: dict[int, float] = {}

    def sent(self, peer: int, now_s: float) -> None:
        if peer not in self.trackers:
            return
        if self._outstanding.pop(peer, None) is not None:
            self.trackers[peer].heartbeat(None)
            self.lost[peer] += 1
        self._outstanding[peer] = now_s
        self.heartbeats[peer] += 1

    def answered(self, peer: int, now_s: float) -> None:
        sent_s = self._outstanding.pop(peer, None)
        if sent_s is not None:
            self.last_rtt_ms[peer] = (now_s - sent_s) * 1000.0
            self.trackers[peer].heartbeat(self.last_rtt_ms[peer])

    def error(self, now_s: float) -> None:
        self.trackers[self.self_id].error(now_s)

    def report(self, now_s: float) -> dict[str, dict[str, Any]]:
        """Per node id: the score and its parts, and the heartbeats behind them (``status``)."""
        rows = {}
        for node, tracker in self.trackers.items():
            score = tracker.score(now_s)
            rows[str(node)] = {"score": score.total, "connectivity": score.connectivity,
                               "reliability": score.reliability, "heartbeats": self.heartbeats[node],
                               "lost": self.lost[node], "last_rtt_ms": self.last_rtt_ms.get(node)}
        return rows

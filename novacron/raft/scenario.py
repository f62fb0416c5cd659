"""The ``[raft]`` scenario section: the managers, their network, timeouts and scripted faults."""

from __future__ import annotations

from dataclasses import dataclass

from novacron.config import ConfigError, spec
from novacron.raft.node import RaftConfig, timing_error

NETWORK_PROFILES = ("lan", "wan30", "wan80", "wan150", "fig16")
RAFT = RaftConfig(node_id=1)
"""The Raft timing defaults, owned by ``RaftConfig``; the scenario starts from them."""


@dataclass(frozen=True, slots=True, kw_only=True)
class RaftSection:
    managers: int = spec(5, min=1, max=7, doc="Raft managers (voters)")
    network: str = spec("wan30", choices=NETWORK_PROFILES,
                        doc="manager network profile: lan, wan30/wan80/wan150 (RTT in ms), fig16")
    tick_ms: float = spec(10.0, min=0.1, max=1000, doc="Raft tick length")
    heartbeat_ticks: int = spec(RAFT.heartbeat_ticks, min=1, max=1000, doc="leader heartbeat interval in ticks")
    election_ticks_min: int = spec(RAFT.election_ticks_min, min=2, max=10000,
                                     doc="election timeout lower bound in ticks")
    election_ticks_max: int = spec(RAFT.election_ticks_max, min=2, max=10000,
                                     doc="election timeout upper bound in ticks")
    pre_vote: bool = spec(RAFT.pre_vote, doc="PreVote round before elections")
    check_quorum: bool = spec(RAFT.check_quorum, doc="leaders step down without a quorum; followers keep a lease")
    commit_broadcast: bool = spec(RAFT.commit_broadcast,
                                  doc="the leader sends followers an append whenever its commit index moves "
                                      "(false: they learn it from the next append or heartbeat, half the "
                                      "messages per decision; decisions are taken at the leader's apply)")
    formation_timeout_s: float = spec(120.0, min=1, max=3600, doc="give up on cluster formation after this")
    simulate_s: float = spec(30.0, min=0, max=86400, doc="how long the managers are simulated (0 = not at all)")
    leader_crash_at_s: float = spec(10.0, min=0, max=86400, doc="crash the leader at this time (0 = never)")
    restart_after_s: float = spec(5.0, min=0, max=86400, doc="restart a crashed manager after this long")
    partition_at_s: float = spec(20.0, min=0, max=86400,
                                 doc="isolate the leader from the other managers at this time (0 = never); "
                                     "with no leader then, the lowest-numbered live manager; with every "
                                     "manager down, nobody (ScriptedFaultSkipped)")
    partition_duration_s: float = spec(3.0, min=0, max=86400, doc="heal the partition after this long")
    control_plane: str = spec("direct", choices=("direct", "raft"),
                              doc="who takes the capacity model's placement/restart/migration decisions: "
                                  "'direct' (at once) or 'raft' (through these managers' log, for the whole run; "
                                  "simulate_s is then ignored)")
    leader_min_health: float = spec(0.0, min=0, max=99,
                                    doc="a leader whose health score (0-100) is below this hands leadership to "
                                        "a healthier manager (Raft leadership transfer; 0 = off)")
    leader_health_margin: float = spec(10.0, min=0, max=100,
                                       doc="the healthier manager must score this many points more than the leader")
    snapshot_every: int = spec(50, min=0, max=1_000_000, doc="compact the log every N applied entries (0 = never)")

    def __post_init__(self) -> None:
        error = timing_error(self.heartbeat_ticks, self.election_ticks_min, self.election_ticks_max)
        if error is not None:
            raise ConfigError(f"raft: {error}")
        if self.leader_min_health > 0 and self.control_plane != "raft":
            raise ConfigError(f"raft: leader_min_health = {self.leader_min_health:g} needs control_plane = 'raft' "
                              f"(got {self.control_plane!r}: the stand-alone managers read no health); "
                              "allowed: control_plane = 'raft', or leader_min_health = 0")

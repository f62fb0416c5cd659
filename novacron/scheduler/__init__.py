"""Placement scheduler: filter/score/select policies over host arrays, a decision cache, a
DRS-style rebalancer and placement quality measures. Pure: no I/O, time and randomness injected."""

from novacron.scheduler.framework import Decision, Scheduler, WeightedScorer
from novacron.scheduler.state import HostTable, PlacementRequest

__all__ = ["Decision", "HostTable", "PlacementRequest", "Scheduler", "WeightedScorer"]

"""The real runtime: a scenario on libvirt hosts, real guests, manager processes and Redis
(``novacron run SCENARIO --runtime real``); see ``backends.realrun.run``."""

from backends.realrun.run import run_real

__all__ = ["run_real"]

"""Events of the cluster autoscaler (``novacron.cluster.autoscaling``, run by ``sim/autoscaling.py``)."""

from __future__ import annotations

from novacron.events import Event, event


@event
class AutoscaleDecided(Event):
    """The autoscaler's answer at one decision: how many hosts it wants in service, and why."""

    policy: str
    desired_hosts: int
    hosts_in_service: int
    hosts_provisioning: int
    need_hosts: float
    """The cluster's load in hosts (reserved vCPUs or used CPU over one host's, whichever is more)."""


@event
class HostServiceChanged(Event):
    """A host joined service (provisioned, or uncordoned) or left it (cordoned: no new VMs)."""

    host_id: str
    in_service: bool
    reason: str

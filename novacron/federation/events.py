"""Events of a federated run: placements across datacenters, the federation group, datacenter faults.

Every datacenter-scoped event names its ``datacenter``, so a runner that partitions a run by
datacenter can route each one to its owner (cross-datacenter facts travel as WAN messages).
"""

from __future__ import annotations

from novacron.events import Event, event


@event
class FederationVMRequested(Event):
    """Users asked the federation for a VM; it is answered by ``FederationVMPlaced`` or
    ``FederationVMRejected``, or by nothing if every cluster that could answer it is lost."""

    vm_id: str
    user_datacenter: str


@event
class FederationVMPlaced(Event):
    """The federation placed a VM: the global scheduler chose the cluster, its scheduler the host.
    ``placement_latency_ms`` runs from the request to the VM running (through the WAN and, with
    synchronous replication, the federation group's commit)."""

    vm_id: str
    datacenter: str
    cluster_id: str
    host_id: str
    ha_group: str
    """The VM's HA group ('' for none): its members are placed in distinct datacenters."""
    user_datacenter: str
    user_rtt_ms: float
    attempts: int
    placement_latency_ms: float


@event
class FederationVMRejected(Event):
    vm_id: str
    user_datacenter: str
    reason: str


@event
class FederationLeaderElected(Event):
    """A cluster representative leads the federation group."""

    manager_id: int
    term: int
    datacenter: str


@event
class FederationFormed(Event):
    """The federation group's first leader committed its first entry."""

    formation_s: float


@event
class FederationLeadershipTransferred(Event):
    """The leader handed leadership to a preferred datacenter's representative (WAN-aware leadership)."""

    manager_id: int
    datacenter: str


@event
class FederationViewSampled(Event):
    """One cluster's eventually consistent view of every other cluster's metrics: how old its
    entries are (now minus the time the owner wrote them) over the clusters it can hear from."""

    cluster_id: str
    datacenter: str
    staleness_max_s: float
    staleness_mean_s: float


@event
class DatacenterFailed(Event):
    """A whole datacenter is lost (power, fire, fibre cut with no way back). ``vms_running`` VMs
    ran there; ``vms_unreplicated`` of them were never committed to the federation group (async
    replication), so nobody else knows they existed; ``rpo_s`` is the age of the oldest state
    change lost with it (0 when nothing was pending)."""

    datacenter: str
    vms_running: int
    vms_unreplicated: int
    rpo_s: float


@event
class DatacenterPartitioned(Event):
    datacenter: str


@event
class DatacenterHealed(Event):
    datacenter: str


@event
class DatacenterDeclaredLost(Event):
    """The federation leader gave up on a datacenter it has not heard from; its VMs are evacuated."""

    datacenter: str
    manager_id: int


@event
class DatacenterRejoined(Event):
    """A datacenter declared lost was heard from again (it had been cut off, not destroyed) and
    is taken back: new placements may go there; copies of VMs already restarted elsewhere are
    fenced."""

    datacenter: str
    manager_id: int


@event
class VMEvacuated(Event):
    """A VM of a lost datacenter runs again elsewhere (restarted from replicated storage)."""

    vm_id: str
    from_datacenter: str
    datacenter: str
    cluster_id: str
    host_id: str
    ha_group: str


@event
class VMFenced(Event):
    """A healed datacenter stopped its copy of a VM the federation had restarted elsewhere."""

    vm_id: str
    datacenter: str


@event
class CrossDatacenterMigrationFinished(Event):
    """A VM moved (or failed to move) to another datacenter with its disk, over the WAN link's
    migration share. ``migration_kind``: ``block-live`` or ``cold``; ``outcome``: ``completed`` or
    ``aborted`` (pre-copy would not converge, or a datacenter was lost meanwhile)."""

    vm_id: str
    from_datacenter: str
    datacenter: str
    migration_kind: str
    outcome: str
    total_time_ms: float
    downtime_ms: float
    wan_bytes: int


@event
class DatacenterUtilisationSampled(Event):
    datacenter: str
    cpu_pct: float
    memory_pct: float
    vms_running: int
    wan_sent_bytes: int
    """WAN bytes this datacenter sent since the previous sample."""

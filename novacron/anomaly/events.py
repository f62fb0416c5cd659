"""Events of injected faults, the telemetry that shows them, the detector's alerts and the actions.

- Ground truth: ``FaultInjected`` starts a labelled fault (``fault_kind`` one of ``FAULT_KINDS``)
  on a ``host_id`` (and a ``vm_id`` for a VM's fault; both empty for a manager's, whose name is
  ``fault_target``); ``FaultCleared`` ends it, ``cleared_by`` ``expired`` (its planned duration ran
  out, or the hardware was replaced) or ``remediated`` (an action removed its cause).
- Telemetry: ``HostDevicesSampled`` (memory the guests use, NIC retransmissions, disk latency) per
  host and ``ManagerHeartbeatsSampled`` per manager, every sample interval; the telemetry reducer
  turns them into series like every other sample.
- ``AnomalyDetected``: the detector's alert on one series (``metric``, the telemetry family, about
  ``subject``, a host id or a manager name), with the fault kind that metric points to
  (``diagnosis``). Whoever acts on alerts subscribes to this event.
- ``RemediationStarted`` / ``RemediationFinished``: an action an alert triggered (``action``:
  ``restart_vm``, ``throttle_vm``, ``drain_host``, ``replace_manager``), on ``subject`` and, for a
  VM's action, ``vm_id``; ``outcome`` says what it achieved.
"""

from __future__ import annotations

from novacron.events import Event, event

FAULT_KINDS = ("memory_leak", "noisy_neighbour", "degraded_nic", "slow_disk", "flapping_manager")
"""Every injected fault kind, in the order tables list them."""


@event
class FaultInjected(Event):
    fault_id: str
    fault_kind: str
    fault_target: str
    """The VM, host or manager the fault is in."""
    host_id: str
    """The host whose telemetry shows it; empty for a manager's fault."""
    vm_id: str
    """The VM at fault (a leak, a noisy neighbour); empty for a host's or a manager's fault."""
    planned_duration_s: float


@event
class FaultCleared(Event):
    fault_id: str
    fault_kind: str
    fault_target: str
    cleared_by: str
    """``expired`` or ``remediated``."""


@event
class HostDevicesSampled(Event):
    host_id: str
    memory_used_pct: float
    """Memory the guests actually use (not the reservation) over the host's memory."""
    nic_retransmit_pct: float
    disk_latency_ms: float


@event
class ManagerHeartbeatsSampled(Event):
    manager_id: int
    heartbeat_loss_pct: float
    """Heartbeats to this manager that went unanswered in the last interval."""


@event
class AnomalyDetected(Event):
    alert_id: str
    metric: str
    subject: str
    diagnosis: str
    """The fault kind the metric points to (one of ``FAULT_KINDS``)."""
    anomaly_score: float
    observed_value: float


@event
class RemediationStarted(Event):
    alert_id: str
    action: str
    subject: str
    vm_id: str


@event
class RemediationFinished(Event):
    alert_id: str
    action: str
    subject: str
    vm_id: str
    outcome: str

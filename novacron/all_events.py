"""Every module that declares events, imported once so a log can be read back into typed events.

Event classes register themselves by name when their module is imported; a reader that meets a
type name must have imported the declaring module. Add a line here when a new events module is
written (``tests/test_events.py`` checks that every ``@event`` module under ``novacron/`` is
listed).
"""

import novacron.anomaly.events
import novacron.bft.events
import novacron.cache.events
import novacron.cluster.autoscale_events
import novacron.cluster.events
import novacron.edge.events
import novacron.federation.events
import novacron.guest_health
import novacron.migration.events
import novacron.raft.events
import novacron.scheduler.events
import novacron.storage.events  # noqa: F401

EVENT_MODULES = (
    "novacron.anomaly.events",
    "novacron.bft.events",
    "novacron.cache.events",
    "novacron.cluster.autoscale_events",
    "novacron.cluster.events",
    "novacron.edge.events",
    "novacron.federation.events",
    "novacron.guest_health",
    "novacron.migration.events",
    "novacron.raft.events",
    "novacron.scheduler.events",
    "novacron.storage.events",
)

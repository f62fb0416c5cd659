"""NovaCron: the control plane of a VM cluster, written once and run in simulation or for real.

The core (this package) does no I/O: Raft, the scheduler, the cache hierarchy and the migration
algorithms are state machines driven by a runtime (``sim`` for the SimPy model, ``backends`` for
real hosts). See ``DESIGN.md`` in the shared folder and ``README.md``.
"""

__version__ = "0.1.0"

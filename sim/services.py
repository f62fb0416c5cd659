"""The run's services, built once by the composition root and carried by the run context.

Theory of operation
-------------------
A simulated run has one of each: the allocation store and the control plane that alone writes
it (direct, or through the Raft managers' log with ``[raft] control_plane = "raft"``), the
scheduler (the control plane's placer; none with first fit), the admission controller every
mover shares, the migration service (hypervisor model, QEMU model, core controller) and the move
committer. ``build`` makes them in dependency order -- each gets what it needs as an argument,
so nothing is looked up in a module-level registry -- and attaches them to the context;
``sim.run.simulate`` calls it before starting the components, and a test builds its own context
and services the same way. The scheduler's processes start in ``start`` (the rebalancer needs
the committer and the migration service, which need the control plane).

One verb per operation, everywhere in ``sim/``:

- ``request_vm``: an owner asks for a VM (``VMRequested``); ``place`` / ``restart_elsewhere``:
  the control plane's placement decisions (``VMPlaced``);
- ``request_move``: the migration batch asks for a move of a VM to a host; ``admit``: the
  admission controller lets a requested move start (``MigrationAdmitted``);
- ``claim``: a mover holds room on the destination (``MoveClaimed``);
- ``run_migration``: the service copies the VM (QEMU model, core controller, ``Migration*``
  events); ``execute_move``: one whole move, claim to commit (the rebalancer's and the batch's);
- ``commit_move``: the control plane makes a finished copy the VM's allocation (``VMMoved``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from novacron.migration.admission import AdmissionController
from sim import scheduling
from sim.allocation import AllocationStore
from sim.context import SimContext
from sim.control_plane import ControlPlane, DirectControlPlane, Placer
from sim.gpus import GpuPlacer, gpu_inventory
from sim.memory_pool import MemoryPoolPlacer
from sim.migration.commit import MoveCommitter
from sim.migration.service import MigrationService, build_admission
from sim.pools import PoolAdmission, pool_tree
from sim.raft.control_plane import RaftControlPlane
from sim.scheduling import SimScheduler

ControlPlaneFactory = Callable[[SimContext, AllocationStore, "Placer | None"], ControlPlane]
"""How a test swaps the control plane (e.g. one whose decisions lag); the default follows
``[raft] control_plane``."""


@dataclass(frozen=True)
class RunServices:
    allocations: AllocationStore
    control: ControlPlane
    scheduler: SimScheduler | None
    admission: AdmissionController
    migrations: MigrationService
    committer: MoveCommitter

    def scheduler_for(self, setting: str) -> SimScheduler:
        """The scheduler, which ``setting`` needs; a clear error when the run places without it."""
        if self.scheduler is None:
            raise ValueError(f"{setting} needs the scheduler placer; allowed: scheduler.placer = 'scheduler'")
        return self.scheduler


def default_control_plane(ctx: SimContext, store: AllocationStore, placer: Placer | None) -> ControlPlane:
    control: ControlPlane
    if ctx.scenario.raft.control_plane == "raft":
        control = RaftControlPlane(ctx, store, placer)
    else:
        control = DirectControlPlane(ctx, store, placer)
    if ctx.scenario.control.critical_ops == "bft":
        from sim.bft.control_plane import CriticalOpsControlPlane

        control = CriticalOpsControlPlane(ctx, control)
    return control


def build(ctx: SimContext, control_plane: ControlPlaneFactory = default_control_plane) -> RunServices:
    """Build the run's services, attach them to ``ctx`` and start the scheduler's processes."""
    c = ctx.scenario.cluster
    store = AllocationStore.for_cluster(ctx.recorder, hosts=c.hosts, cpu_cores=c.host_cpu_cores,
                                        cpu_overcommit=c.cpu_overcommit, memory_gib=c.host_memory_gib,
                                        network_gbps=c.host_network_gbps, disk_iops=c.host_disk_iops,
                                        hosts_per_rack=c.hosts_per_rack)
    admission = build_admission(ctx.scenario.migration, ctx.scenario.scheduler)
    scheduler = scheduling.build(ctx, store.host_ids, admission)
    migrations = MigrationService(ctx, admission, store)
    tree = pool_tree(ctx.scenario)
    placer: Placer | None = scheduler
    gpus = gpu_inventory(ctx)
    if gpus is not None:
        placer = GpuPlacer(ctx, gpus, store, placer)
    if tree is not None:
        placer = PoolAdmission(tree, store, placer)
    if ctx.scenario.memory_pool.enabled:
        placer = MemoryPoolPlacer(ctx, ctx.scenario.memory_pool.pool(c.hosts), store, placer, scheduler)
    control = control_plane(ctx, store, placer)
    committer = MoveCommitter(ctx, control)
    services = RunServices(allocations=store, control=control, scheduler=scheduler, admission=admission,
                           migrations=migrations, committer=committer)
    ctx.carry(services)
    if scheduler is not None:
        scheduling.start(ctx, scheduler, committer, migrations)
    return services

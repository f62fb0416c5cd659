"""The federation group's replicated state: which VM runs in which cluster, on which host.

Theory of operation
-------------------
Cluster state is synchronised strongly: each cluster's representative forwards its changes to
the federation leader, which appends them to the federation Raft log; every representative
applies committed commands in log order (Raft section 2). Commands carry an id, so a change
retried after a leader change is applied once. ``place`` records a VM in a cluster, ``evacuate``
moves a VM of a lost datacenter to another cluster, ``move`` a VM of a live one (a
cross-datacenter migration), ``lose`` marks a datacenter lost (its VMs
stay recorded there until evacuated), ``rejoin`` takes back a datacenter that was cut off, not
destroyed (its VMs not yet evacuated stay there). Loss and rejoin ids carry the datacenter's
generation -- how often it rejoined -- so a second loss is a new command, not a duplicate.
Every command is validated on apply, identically on every member: placing a VM twice, into a
lost datacenter or over a host's capacity, or evacuating a VM whose datacenter is not lost, is
refused and counted, never applied.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from novacron.raft.messages import Entry
from novacron.statemachine import command_of, encode_command


@dataclass(frozen=True, slots=True)
class Placement:
    cluster: int
    host: int
    cpu: float
    memory_gib: float
    group: str


class FederationStateMachine:
    def __init__(self, host_cpu: float, host_memory_gib: float, clusters_per_datacenter: int) -> None:
        self.clusters_per_datacenter = clusters_per_datacenter
        self.host_cpu = host_cpu
        self.host_memory_gib = host_memory_gib
        self.vms: dict[str, Placement] = {}
        self.lost: set[int] = set()
        self.generation: dict[int, int] = {}
        self.applied_ids: set[str] = set()
        self.refused = 0
        self.applied_index = 0
        self._used: dict[tuple[int, int], tuple[float, float]] = {}

    # -- commands ------------------------------------------------------------------------------

    @staticmethod
    def place(cmd_id: str, vm_id: str, p: Placement) -> bytes:
        return encode_command(op="place", id=cmd_id, vm=vm_id, cluster=p.cluster, host=p.host, cpu=p.cpu,
                              mem=p.memory_gib, group=p.group)

    @staticmethod
    def move(cmd_id: str, vm_id: str, from_cluster: int, cluster: int, host: int) -> bytes:
        return encode_command(op="move", id=cmd_id, vm=vm_id, src=from_cluster, cluster=cluster, host=host)

    @staticmethod
    def evacuate(cmd_id: str, vm_id: str, cluster: int, host: int) -> bytes:
        return encode_command(op="evacuate", id=cmd_id, vm=vm_id, cluster=cluster, host=host)

    def lose(self, datacenter: int) -> bytes:
        return encode_command(op="lose", id=f"lose-{datacenter}-{self.generation.get(datacenter, 0)}", dc=datacenter)

    def rejoin(self, datacenter: int) -> bytes:
        return encode_command(op="rejoin", id=f"rejoin-{datacenter}-{self.generation.get(datacenter, 0)}",
                              dc=datacenter)

    # -- StateMachine ----------------------------------------------------------------------------

    def apply(self, entry: Entry) -> object:
        self.applied_index = entry.index
        cmd = command_of(entry)
        if cmd is None:
            return None
        if cmd["id"] in self.applied_ids:
            return None
        self.applied_ids.add(cmd["id"])
        op = cmd["op"]
        if op == "lose":
            self.lost.add(int(cmd["dc"]))
            return True
        if op == "rejoin":
            dc = int(cmd["dc"])
            self.lost.discard(dc)
            self.generation[dc] = self.generation.get(dc, 0) + 1
            return True
        if op == "place":
            if cmd["vm"] in self.vms or int(cmd["cluster"]) // self.clusters_per_datacenter in self.lost:
                return self._refuse()  # a VM is placed once, and never into a datacenter given up on
            return self._put(cmd["vm"], Placement(int(cmd["cluster"]), int(cmd["host"]), float(cmd["cpu"]),
                                                  float(cmd["mem"]), str(cmd["group"])))
        if op not in ("evacuate", "move"):
            return self._refuse()  # an unknown command: refused alike on every member
        old = self.vms.get(cmd["vm"])
        if old is None or not self._may_leave(op, old, cmd):
            return self._refuse()
        self._free(old)
        del self.vms[cmd["vm"]]
        moved = Placement(int(cmd["cluster"]), int(cmd["host"]), old.cpu, old.memory_gib, old.group)
        if not self._put(cmd["vm"], moved):
            self._put(cmd["vm"], old)
            return False
        return True

    def _may_leave(self, op: str, old: Placement, cmd: dict[str, object]) -> bool:
        """An evacuation takes a VM out of a lost datacenter, once; a move takes it from the cluster
        it is recorded in to a datacenter that is not lost."""
        if op == "evacuate":
            return old.cluster // self.clusters_per_datacenter in self.lost
        destination = int(str(cmd["cluster"])) // self.clusters_per_datacenter
        return old.cluster == cmd["src"] and destination not in self.lost

    def _refuse(self) -> bool:
        self.refused += 1
        return False

    def _put(self, vm_id: str, p: Placement) -> bool:
        cpu, mem = self._used.get((p.cluster, p.host), (0.0, 0.0))
        if cpu + p.cpu > self.host_cpu + 1e-9 or mem + p.memory_gib > self.host_memory_gib + 1e-9:
            return self._refuse()
        self._used[(p.cluster, p.host)] = (cpu + p.cpu, mem + p.memory_gib)
        self.vms[vm_id] = p
        return True

    def _free(self, p: Placement) -> None:
        cpu, mem = self._used[(p.cluster, p.host)]
        self._used[(p.cluster, p.host)] = (cpu - p.cpu, mem - p.memory_gib)

    def used(self, cluster: int, host: int) -> tuple[float, float]:
        return self._used.get((cluster, host), (0.0, 0.0))

    def snapshot(self) -> bytes:
        vms = {vm: [p.cluster, p.host, p.cpu, p.memory_gib, p.group] for vm, p in sorted(self.vms.items())}
        return json.dumps({"vms": vms, "lost": sorted(self.lost),
                           "generation": sorted(self.generation.items()), "ids": sorted(self.applied_ids),
                           "refused": self.refused, "index": self.applied_index}, sort_keys=True).encode()

    def restore(self, data: bytes) -> None:
        self.vms, self.lost, self.applied_ids, self._used, self.generation = {}, set(), set(), {}, {}
        self.refused = self.applied_index = 0
        if not data:
            return
        raw = json.loads(data)
        for vm, (cluster, host, cpu, mem, group) in raw["vms"].items():
            self._put(vm, Placement(cluster, host, cpu, mem, group))
        self.lost, self.applied_ids = set(raw["lost"]), set(raw["ids"])
        self.generation = {int(dc): int(n) for dc, n in raw["generation"]}
        self.refused, self.applied_index = raw["refused"], raw["index"]

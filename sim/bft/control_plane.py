"""Critical operations through PBFT (``[control] critical_ops = "bft"``), ordinary ones unchanged.

Theory of operation
-------------------
``CriticalOpsControlPlane`` wraps the run's control plane (direct, or Raft with ``[raft]
control_plane = "raft"``) and sends the operations whose mistake is expensive through simulated
PBFT replicas (``sim.bft.cluster``) first:

- ``restart_elsewhere`` -- a crashed host's VM restarted on another host, i.e. the host is evicted
  (fenced) for that VM: the decision waits until the operation ``evict HOST VM`` is committed
  (its client got ``f + 1`` matching replies), then the wrapped control plane decides as usual;
- ``release`` -- a VM's room given back for good (it stopped: the VM is destroyed): the seam's
  contract makes it act at once, so the release happens now and ``destroy VM`` is committed in the
  background; its latency is reported all the same.

Placements and move commits stay on the wrapped control plane. Each commit is reported as a
``CriticalOpCommitted`` event (``control.critical_op_p50_ms``/``p99_ms``). Membership changes of the
managers do not occur in the capacity model's runs, so none is sent (the vopr exercises them).

The replicas run only while an operation is in flight: between operations the cluster is frozen
and resumes, shifted in time, when the next one arrives. That is sound for the same reason as the
Raft control plane's freeze (``sim.raft.control_plane``): a replica sees only ticks and messages,
and an idle PBFT cluster with nothing pending sends nothing that changes what is decided.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Generator
from dataclasses import replace
from typing import Any

import simpy

from novacron.bft.client import BftClient
from novacron.bft.crypto import SimulatedKeyring
from novacron.bft.events import CriticalOpCommitted
from novacron.bft.messages import Signed
from sim.allocation import AllocationStore, Claim, VMRequest
from sim.bft.cluster import SIM_REPLICA, BftCluster, BftSettings
from sim.context import SimContext
from sim.control_plane import ControlPlane, Decision
from sim.network import PROFILES, NetworkModel

CLIENTS = 16
CLIENT_BASE_ID = 100
RETRY_S = 1.0


class CriticalOpsControlPlane:
    def __init__(self, ctx: SimContext, inner: ControlPlane) -> None:
        section = ctx.scenario.control
        self._ctx, self._inner, self._env = ctx, inner, ctx.env
        self.store: AllocationStore = inner.store
        n = section.bft_replicas
        ids = [*range(1, n + 1), *range(CLIENT_BASE_ID, CLIENT_BASE_ID + CLIENTS)]
        keyring = SimulatedKeyring(ctx.seeds.integer("bft.keys"), ids)
        network = NetworkModel(PROFILES[section.bft_network], ctx.seeds.python("bft.network"))
        settings = BftSettings(bft=replace(SIM_REPLICA, replicas=n))
        self.cluster = BftCluster(settings, network, ctx.seeds.python("bft.cluster"), keyring, client_inbox=self._inbox)
        f = (n - 1) // 3
        self._free = deque(BftClient(c, keyring.signer(c), keyring, f, n)
                           for c in range(CLIENT_BASE_ID, CLIENT_BASE_ID + CLIENTS))
        self._busy: dict[int, tuple[BftClient, str, str, float, simpy.Event]] = {}
        self._waiting: deque[tuple[str, str, simpy.Event]] = deque()
        self._offset_s = float(self._env.now)
        """SimPy time minus cluster time (it grows while the cluster is frozen)."""
        self._driver: simpy.Process | None = None
        self.replicas = n

    # -- the seam ----------------------------------------------------------------------------------

    def place(self, vm: VMRequest) -> Decision:
        return self._inner.place(vm)

    def commit_move(self, vm: VMRequest, to_host: int, mover: str = "controller") -> Decision:
        return self._inner.commit_move(vm, to_host, mover)

    def restart_elsewhere(self, vm: VMRequest, failed_host: int) -> Decision:
        decision = self._env.event()
        committed = self._submit("evict", f"{self.store.host_ids[failed_host]} {vm.vm_id}")

        def decide(_: simpy.Event) -> None:
            inner = self._inner.restart_elsewhere(vm, failed_host)

            def decided(ev: simpy.Event) -> None:
                decision.succeed(ev.value)
            if inner.processed:
                decided(inner)
            else:
                inner.callbacks.append(decided)
        committed.callbacks.append(decide)
        return decision

    def release(self, vm_id: str) -> None:
        self._inner.release(vm_id)
        self._submit("destroy", vm_id)

    def claim_room(self, vm_id: str, host: int) -> Claim | None:
        return self._inner.claim_room(vm_id, host)

    def release_claim(self, claim: Claim) -> None:
        self._inner.release_claim(claim)

    # -- the replicas ---------------------------------------------------------------------------------

    def _submit(self, op: str, subject: str) -> simpy.Event:
        committed = self._env.event()
        self._waiting.append((op, subject, committed))
        self._dispatch()
        if self._driver is None or not self._driver.is_alive:
            self._offset_s = float(self._env.now) - self.cluster.now_s  # thaw, shifted in time
            self._driver = self._env.process(self._drive())
        return committed

    def _dispatch(self) -> None:
        while self._waiting and self._free:
            op, subject, committed = self._waiting.popleft()
            client = self._free.popleft()
            request = client.request(f"put {op} {subject}".encode())
            self._busy[client.id] = (client, op, subject, float(self._env.now), committed)
            self.cluster.send_request(client.id, request)
            self._retry_later(client.id, client.timestamp)

    def _retry_later(self, client_id: int, timestamp: int) -> None:
        def retry() -> None:
            busy = self._busy.get(client_id)
            if busy is not None and busy[0].timestamp == timestamp and busy[0].pending is not None:
                self.cluster.send_request(client_id, busy[0].pending)
                self._retry_later(client_id, timestamp)
        self.cluster.schedule(self.cluster.now_s + RETRY_S, retry)

    def _inbox(self, client_id: int, message: Signed) -> None:
        busy = self._busy.get(client_id)
        if busy is None or busy[0].on_reply(message) is None:
            return
        client, op, subject, asked_s, committed = self._busy.pop(client_id)
        latency_ms = (float(self._env.now) - asked_s) * 1000
        self._ctx.recorder.emit(CriticalOpCommitted, source="bft", op=op, subject=subject, latency_ms=latency_ms,
                                replicas=self.replicas)
        self._free.append(client)
        committed.succeed()
        self._dispatch()

    def _drive(self) -> Generator[Any, Any, None]:
        """Advance the replicas with SimPy time while an operation is in flight; then freeze them."""
        cluster = self.cluster
        while self._busy or self._waiting:
            next_s = cluster.next_time_s()
            if next_s is None:
                return
            yield self._env.timeout(max(0.0, next_s + self._offset_s - float(self._env.now)))
            # At least up to next_s: env.now - offset may round to just below it.
            cluster.run_until(max(next_s, float(self._env.now) - self._offset_s))

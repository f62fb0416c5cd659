"""``ManagerRuntime``: one real manager -- the Raft core, asyncio TCP, a log on disk and a client API.

Theory of operation
-------------------
The core (``novacron.raft.RaftNode``) does no I/O; this runtime drives it exactly as
``novacron/raft/__init__.py`` prescribes. Every input -- a frame of messages from a peer, a
client request, the 10 ms tick -- is queued and wakes ONE task, the drive task, which owns the
node: it steps the queued messages, ticks, and then works through ``Ready`` cycles, so inputs
that arrive together are handled by one ``Ready``:

1. queued client proposals are packed into one log entry and proposed (``replicated``);
2. while the node has a ``Ready``: persist it with ONE fsynced save (one record and one
   fdatasync in ``SegmentLogStore``, one transaction in ``SQLiteLogStore``) BEFORE any of its
   messages is sent -- a vote or an acknowledgement never leaves before it is durable (Raft
   paper, Figure 2) -- then send one frame per peer,
   apply the committed entries, answer the proposals whose ``(index, term)`` was applied, serve
   the ReadIndex reads (dissertation section 6.4) whose index has been applied, ``advance``.
   A leader sends its appends first and, while its disk thread saves them, applies and answers
   the committed entries that precede them (``durable_committed_count``: already fsynced on a
   majority including the leader), so an answer never waits for the next batch's fsync;
3. compact the log into a snapshot every ``snapshot_every`` entries or ``snapshot_every_bytes``
   of applied entry data (whichever comes first), and checkpoint SQLite's WAL once it has
   grown by 8 MB -- both in the disk thread, between Readies, never inside a Ready's commit.

Only the drive task touches the node, so nothing can call ``tick``/``step``/``propose`` between
``ready()`` and ``advance()``. The save (one fsync) runs in a dedicated disk
thread (``DiskThread``): while it waits for the disk the loop keeps reading sockets, decoding frames and queueing
proposals, which the next cycle handles together -- that is where the batching comes from. An
exception in the drive task (a ``RaftSafetyError``, a full disk) stops the manager.

Health: the heartbeats the leader sends and the answers it gets are timed (``PeerHealth``,
``backends.manager.health``) into each peer's health score, reported by ``status``; with
``leader_min_health`` a leader scoring below it hands leadership to the healthiest peer.

Ticks follow the monotonic clock but catch up at most ``MAX_CATCH_UP_TICKS`` after the loop was
busy: a stall of this process is no evidence that the leader died (its heartbeats are sitting
unread in our socket), and counting it would start needless elections.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import hashlib
import logging
import random
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from backends.clock import MonotonicClock
from backends.manager.clientapi import ClientApi
from backends.manager.diskthread import DiskThread
from backends.manager.eventlog import EVENTS_FILE, JsonLinesEventLog, ParquetEventLog
from backends.manager.framing import FrameDecoder, FrameTooLarge, encode_frame
from backends.manager.health import PeerHealth
from backends.manager.logstore import SQLiteLogStore
from backends.manager.peers import PeerLink
from backends.manager.replicated import ManagerStateMachine
from backends.manager.segment_log import SegmentLogCorrupt, SegmentLogStore
from novacron.health import leadership_target
from novacron.raft import LEADER, NO_NODE, Entry, Message, MessageType, RaftConfig, RaftNode, Ready, from_wire, to_wire
from novacron.raft.events import LeadershipTransferRequested, ManagerStarted
from novacron.raft.node import sent_before_durable
from novacron.raft.observer import RaftObserver

log = logging.getLogger(__name__)
LOG_STORE_PATHS = {"segment": "raft-wal", "sqlite": "raft.sqlite3"}
"""The manager log stores (``--log-store``) and what each keeps in the data directory."""
DEFAULT_LOG_STORE = "segment"
MAX_CATCH_UP_TICKS = 2
READ_CHUNK_BYTES = 1 << 18


@dataclass(frozen=True)
class ManagerConfig:
    node_id: int
    peers: dict[int, tuple[str, int]]
    """Every manager's Raft address, this one included (it is where we listen for peers)."""
    data_dir: Path
    client_host: str = "127.0.0.1"
    client_port: int = 0
    tick_ms: float = 10.0
    snapshot_every: int = 5000
    snapshot_every_bytes: int = 16 * 1024 * 1024
    """Small compactions: deleting the entries is one fsynced transaction the Ready loop waits for."""
    max_batch_bytes: int = 256 * 1024
    """Entries stay small enough that 64 of them (one AppendEntries) fit in a frame."""
    inline_save_max_bytes: int = 32 * 1024
    """A Ready with more entry bytes than this is saved in the disk thread, a smaller one on the
    loop thread (``_save_in_disk_thread``)."""
    seed: int | None = None
    events_origin_monotonic_s: float | None = None
    """``time.monotonic()`` value the event log's ``t_s`` counts from (default: process start)."""
    events_jsonl: bool = False
    """Also write ``events.jsonl`` (for tools that tail the log live); Parquet is always written."""
    metrics_port: int | None = None
    """Serve Prometheus metrics on ``client_host:metrics_port`` (``backends.manager.metrics``); None: off."""
    raft: RaftConfig = field(default_factory=lambda: RaftConfig(node_id=1))
    leader_min_health: float = 0.0
    """While leading, hand over to a healthier peer once this manager scores below this (0: off;
    ``novacron.health.leadership_target``)."""
    leader_health_margin: float = 10.0
    log_store: str | None = None
    """``segment`` or ``sqlite`` (``LOG_STORE_PATHS``) for a new data directory; None: the store the
    directory already holds, ``DEFAULT_LOG_STORE`` for a new one."""


def durable_committed_count(ready: Ready) -> int:
    """How many of ``ready.committed_entries`` a leader may apply and answer while the Ready's own
    save is still running: those before its new entries. The leader commits only through
    acknowledgements stepped after its earlier saves returned (``sent_before_durable``), so those
    entries are already fsynced on a majority including the leader; the answers leave one fsync
    sooner (etcd applies committed entries concurrently with its WAL write too). A lone voter
    commits its new entries as it appends them: they wait for the save."""
    if not ready.entries:
        return len(ready.committed_entries)
    first_new = ready.entries[0].index
    return sum(1 for entry in ready.committed_entries if entry.index < first_new)


def is_storage_failure(exc: BaseException | None) -> bool:
    """The disk failed us (SQLite's "database or disk is full", a disk I/O error, ENOSPC/EIO, a
    damaged segment)."""
    return isinstance(exc, sqlite3.Error | OSError | SegmentLogCorrupt)


def held_log_store(data_dir: Path) -> str | None:
    """The kind of log store ``data_dir`` holds (None: none yet); raises ``ValueError`` for both."""
    held = [kind for kind, name in LOG_STORE_PATHS.items() if (data_dir / name).exists()]
    if len(held) > 1:
        raise ValueError(f"{data_dir} holds both a segment log (raft-wal/) and a SQLite log (raft.sqlite3): "
                         "keep the one this manager last ran with")
    return held[0] if held else None


def open_log_store(data_dir: Path, wanted: str | None) -> SQLiteLogStore | SegmentLogStore:
    """The data directory's store: the kind it holds, else ``wanted`` (default ``DEFAULT_LOG_STORE``).
    Raises ``ValueError`` for an unknown kind or one other than the directory holds."""
    if wanted is not None and wanted not in LOG_STORE_PATHS:
        raise ValueError(f"log store {wanted!r}: allowed: {', '.join(LOG_STORE_PATHS)}")
    held = held_log_store(data_dir)
    if held is not None and wanted is not None and held != wanted:
        raise ValueError(f"{data_dir} holds a {held} log store, not {wanted}: run it with --log-store {held} "
                         "(or without --log-store), or start from an empty data directory")
    kind = held or wanted or DEFAULT_LOG_STORE
    path = data_dir / LOG_STORE_PATHS[kind]
    return SQLiteLogStore(path) if kind == "sqlite" else SegmentLogStore(path)


StateFactory = Callable[[int, ParquetEventLog], Any]
"""Builds the replicated state machine from (node id, event log): ``ManagerStateMachine`` (the
cluster's KV) by default, ``FederationReplica`` for a federation agent. It must offer ``apply``,
``get``, ``key_count``, ``snapshot``, ``restore``, ``applied_index`` and ``commands_applied``."""


class ManagerRuntime:
    def __init__(self, config: ManagerConfig, state_factory: StateFactory = ManagerStateMachine) -> None:
        if config.node_id not in config.peers:
            raise ValueError(f"manager {config.node_id} is not in --peers {sorted(config.peers)}")
        self.config = config
        self.id = config.node_id
        config.data_dir.mkdir(parents=True, exist_ok=True)
        self.store = open_log_store(config.data_dir, config.log_store)
        restarted = not self.store.is_empty()
        stored = self.store.stored() if restarted else self.store.bootstrap(tuple(sorted(config.peers)))
        mirror = (JsonLinesEventLog(config.data_dir / EVENTS_FILE, config.events_origin_monotonic_s)
                  if config.events_jsonl else None)
        self.events = ParquetEventLog(config.data_dir, config.events_origin_monotonic_s, manager_id=self.id,
                                      mirror=mirror)
        self.state = state_factory(self.id, self.events)
        self.state.restore(stored.snapshot.data, stored.snapshot.index)
        raft_config = dataclasses.replace(config.raft, node_id=self.id)
        seed = config.seed if config.seed is not None else random.SystemRandom().getrandbits(32)
        self.node = RaftNode(raft_config, random.Random(seed), stored)
        self.api = ClientApi(self)
        own_host = config.peers[self.id][0]
        self.links = {pid: PeerLink(self.id, pid, host, port, local_host=own_host)
                      for pid, (host, port) in config.peers.items() if pid != self.id}
        self._inbox: list[Message] = []
        self._ticks_due = 0
        self._applied_bytes = 0
        self._wake = asyncio.Event()
        self._closing = False
        self._disk = DiskThread(f"manager-{self.id}-disk")
        self._stop = asyncio.Event()
        self._servers: list[asyncio.Server] = []
        self.connections: set[asyncio.StreamWriter] = set()
        self.connection_tasks: set[asyncio.Task[Any]] = set()
        """The tasks serving inbound connections; ``close`` lets them end before the loop does (a
        handler still pending when ``asyncio.run`` cancels it makes asyncio 3.11 log a traceback)."""
        self._driver: asyncio.Task[None] | None = None
        self.failure: BaseException | None = None
        """Inbound peer and client connections, closed with the runtime."""
        self._tasks: list[asyncio.Task[None]] = []
        self.clock = MonotonicClock()
        self.observer = RaftObserver(self.id, term=stored.hard_state.term, now_s=self.clock.now_s())
        self.client_port = config.client_port
        self.health = PeerHealth(self.id, self.links)
        """Heartbeat round trips and losses per peer while leading, and this process's errors."""
        self._metrics: Any = None
        self.events.emit(ManagerStarted, source=self._source, manager_id=self.id, restarted=restarted)

    @property
    def _source(self) -> str:
        return f"manager-{self.id}"

    # -- lifecycle -----------------------------------------------------------------------------

    async def serve(self) -> None:
        host, port = self.config.peers[self.id]
        self._servers.append(await asyncio.start_server(self._handle_peer, host, port, reuse_address=True))
        client_server = await asyncio.start_server(self.api.handle_connection, self.config.client_host,
                                                   self.config.client_port, reuse_address=True)
        self._servers.append(client_server)
        self.client_port = client_server.sockets[0].getsockname()[1]
        if self.config.metrics_port is not None:
            from backends.manager.metrics import serve_manager_metrics

            self._metrics = serve_manager_metrics(self, self.config.client_host, self.config.metrics_port)
        for link in self.links.values():
            link.start()
        loop = asyncio.get_running_loop()
        self._tasks.append(loop.create_task(self._tick_forever(), name="tick"))
        self._driver = loop.create_task(self._drive_forever(), name="drive")
        self._driver.add_done_callback(self._driver_done)
        print(f"novacron manager {self.id}: raft {host}:{port} clients {self.config.client_host}:"
              f"{self.client_port} data {self.config.data_dir}", flush=True)
        self._schedule_drive()
        await self._stop.wait()
        await self.close()
        if self.failure is not None:
            raise self.failure

    def stop(self) -> None:
        self._stop.set()

    def _driver_done(self, task: asyncio.Task[None]) -> None:
        if not task.cancelled() and task.exception() is not None:
            # A safety violation or a storage failure: this manager must not go on. A failed save
            # (full disk, fsync error) is never retried: after a failed fsync the kernel may have
            # dropped the dirty pages and a second fsync can report success for data it lost
            # (PostgreSQL's "fsyncgate", 2018), so the Ready stays unsent and unacknowledged and
            # the process exits; ``serve`` re-raises the error for ``run_manager`` to report.
            self.failure = task.exception()
            if not is_storage_failure(self.failure):
                log.error("manager %d: stopping after an error in the Ready loop: %r", self.id, self.failure)
            self._stop.set()

    async def close(self) -> None:
        self._closing = True
        self._wake.set()
        if self._driver is not None:
            with contextlib.suppress(Exception):
                await self._driver  # finishes the Ready in progress: never close the store under a save
        for task in self._tasks:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for server in self._servers:
            server.close()
        if self._metrics is not None:
            self._metrics.close()
        for writer in list(self.connections):
            writer.close()
        if self.connection_tasks:
            await asyncio.wait(list(self.connection_tasks), timeout=1.0)
        for link in self.links.values():
            await link.close()
        with contextlib.suppress(OSError):  # a full disk must not hide the error that stopped us
            self.events.flush()
            self.events.close()
        self._disk.shutdown()
        self.store.close()

    # -- inputs --------------------------------------------------------------------------------

    async def _tick_forever(self) -> None:
        tick_s = self.config.tick_ms / 1000
        next_tick = time.monotonic() + tick_s
        while True:
            await asyncio.sleep(max(0.0, next_tick - time.monotonic()))
            due = int((time.monotonic() - next_tick) / tick_s) + 1
            next_tick += due * tick_s
            self._ticks_due = min(self._ticks_due + due, MAX_CATCH_UP_TICKS)
            self._schedule_drive()

    async def _handle_peer(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        decoder = FrameDecoder()
        peer_id = NO_NODE
        self.connections.add(writer)
        self.track_connection_task()
        try:
            while chunk := await reader.read(READ_CHUNK_BYTES):
                for frame in decoder.feed(chunk):
                    if peer_id == NO_NODE:
                        peer_id = int(frame["peer"])
                        continue
                    for wire in frame:
                        self.step(from_wire(wire))
                self._schedule_drive()
        except (FrameTooLarge, ConnectionError) as exc:
            log.warning("manager %d: dropping the connection from peer %d: %s", self.id, peer_id, exc)
            self.health.error(self.clock.now_s())
        finally:
            self.connections.discard(writer)
            self.connection_tasks.discard(asyncio.current_task())
            writer.close()

    def track_connection_task(self) -> None:
        task = asyncio.current_task()
        if task is not None:
            self.connection_tasks.add(task)

    def step(self, message: Message) -> None:
        """Queue a peer's message; the drive task steps it (never while a Ready is being persisted)."""
        if message.dst == self.id:
            if message.type == MessageType.HEARTBEAT_RESP and not message.context:
                self.health.answered(message.src, self.clock.now_s())
            self._inbox.append(message)

    def _schedule_drive(self) -> None:
        self._wake.set()

    # -- the Ready cycle -----------------------------------------------------------------------

    async def _drive_forever(self) -> None:
        while not self._closing:
            await self._wake.wait()
            self._wake.clear()
            await self._drive()

    async def _drive(self) -> None:
        inbox, self._inbox = self._inbox, []
        for message in inbox:
            self.node.step(message)
        ticks, self._ticks_due = self._ticks_due, 0
        for _ in range(ticks):
            self.node.tick()
        if ticks and self.config.leader_min_health > 0:
            self._prefer_healthier_leader()
        self.api.propose_queued()
        self.api.start_queued_reads()
        while self.node.has_ready():
            ready = self.node.ready()
            early = self._may_send_before_persisting(ready)
            if early:
                self._send(ready.messages)
            applied = 0
            if self.store.needs_sync(ready) and (early or self._save_in_disk_thread(ready)):
                # Durable (fsynced) before any message of this Ready that reveals it is sent. The
                # disk thread lets the loop keep reading and decoding meanwhile (the next batch);
                # what arrives waits, and is stepped only once this save has returned. A leader
                # whose appends already left (``early``) always saves there: clients' requests and
                # the followers' acknowledgements are read during its fsync instead of after it.
                saving = self._disk.run(self.store.save, ready)
                if early:
                    applied = self._apply(ready.committed_entries[:durable_committed_count(ready)])
                    self.api.flush()
                await saving
            elif ready.hard_state is not None or ready.entries or ready.snapshot is not None:
                # Small saves run on the loop thread: nothing can be stepped before they return
                # anyway, and a hand-over to the disk thread and back costs two thread switches
                # (and GIL hand-overs) on the commit path. A commit-index-only save is not fsynced.
                self.store.save(ready)
            if ready.snapshot is not None:
                self._install_snapshot(ready)
            if not early:
                self._send(ready.messages)
            self._apply(ready.committed_entries[applied:])
            self._observe(ready)
            self.api.reads_ready(ready.read_states)
            self.node.advance(ready)
        self.events.flush()
        self.api.flush()
        await self._maybe_compact()
        if self.store.needs_checkpoint():
            await self._disk.run(self.store.checkpoint)

    def _apply(self, entries: list[Entry]) -> int:
        """Apply committed entries and queue the answers to their proposals; returns how many."""
        for entry in entries:
            self.state.apply(entry)
            self._applied_bytes += len(entry.data)
            self.api.entry_applied(entry)
        return len(entries)

    def _prefer_healthier_leader(self) -> None:
        """A leader scoring below ``leader_min_health`` hands over to the healthiest peer (Raft's
        leadership transfer: the node refuses proposals until it completes or times out)."""
        node = self.node
        if node.role != LEADER or node.transfer_target != NO_NODE:
            return
        now_s = self.clock.now_s()
        scores = {peer: tracker.score(now_s).total for peer, tracker in self.health.trackers.items()}
        target = leadership_target(scores, self.id, min_score=self.config.leader_min_health,
                                   margin=self.config.leader_health_margin)
        if target is not None and node.transfer_leadership(target):
            log.warning("manager %d: health %.1f below %.1f: handing leadership to manager %d (%.1f)", self.id,
                        scores[self.id], self.config.leader_min_health, target, scores[target])
            self.events.emit(LeadershipTransferRequested, source=self._source, manager_id=self.id,
                             target_id=target, reason="health")

    def _may_send_before_persisting(self, ready: Ready) -> bool:
        """A leader's appends and heartbeats leave while its own copy is being fsynced
        (``novacron.raft.node.sent_before_durable`` says when that is safe)."""
        return sent_before_durable(ready, self.node.role, self.node.term, self.store.changes_term_or_vote(ready))

    def _save_in_disk_thread(self, ready: Ready) -> bool:
        """A large batch (deep pipelining) is saved in the disk thread while the loop decodes the
        next frames; a small one (a few synchronous clients) on the loop thread, unless it is a
        leader's whose appends already left (``_drive``). Measured at 16 synchronous clients: a
        leader's saves in the thread, 1.15x the throughput (median of five alternating pairs);
        every save there (followers' too), 0.86x with one client and 0.94-0.99x with 16."""
        return ready.snapshot is not None or sum(len(e.data) for e in ready.entries) > self.config.inline_save_max_bytes

    def _send(self, messages: list[Message]) -> None:
        by_peer: dict[int, list[dict[str, Any]]] = {}
        for m in messages:
            if m.type == MessageType.HEARTBEAT and not m.context:  # a ReadIndex round is timed by its reads
                self.health.sent(m.dst, self.clock.now_s())
            by_peer.setdefault(m.dst, []).append(to_wire(m))
        for peer, wires in by_peer.items():
            link = self.links.get(peer)
            if link is not None:
                link.send(encode_frame(wires))

    def _install_snapshot(self, ready: Ready) -> None:
        assert ready.snapshot is not None
        self.state.restore(ready.snapshot.data, ready.snapshot.index)
        self.api.entries_superseded(ready.snapshot.index)

    async def _maybe_compact(self) -> None:
        applied = self.node.log.applied
        if (applied - self.node.log.snapshot.index >= self.config.snapshot_every
                or self._applied_bytes >= self.config.snapshot_every_bytes):
            self._applied_bytes = 0
            snapshot = self.node.compact(applied, self.state.snapshot())
            await self._disk.run(self.store.compact, snapshot)

    def _observe(self, ready: Ready) -> None:
        """Report this node's Raft events through the core's observer (the simulation uses the same)."""
        for observed in self.observer.observe(ready, self.clock.now_s()):
            self.events.emit(observed.cls, source=self._source, **observed.fields)
        if ready.soft_state is not None:
            self.api.role_changed(ready.soft_state.role == LEADER)

    def digest(self) -> dict[str, Any]:
        return {"applied": self.node.log.applied, "keys": self.state.key_count(),
                "digest": hashlib.sha256(self.state.snapshot()).hexdigest()}

    def status(self) -> dict[str, Any]:
        node = self.node
        return {"manager_id": self.id, "role": node.role, "term": node.term, "leader": node.leader,
                "commit": node.log.committed, "applied": node.log.applied, "last_index": node.log.last_index(),
                "commands_applied": self.state.commands_applied, "health": self.health.report(self.clock.now_s())}

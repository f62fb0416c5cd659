"""The client side of a manager: propose, linearizable read and status, over framed TCP.

Theory of operation
-------------------
Requests and replies are msgpack maps in the frames of ``framing``; a client may pipeline any
number of requests on one connection and matches replies by ``id``:

- ``{"op": "propose", "id": n, "data": <command bytes>}`` is answered once the command is
  committed AND applied here: ``{"id": n, "ok": true, "index": i, "position": p}``. Proposals
  queued between two ``Ready`` cycles become one log entry; the entry's ``(index, term)`` is
  remembered, and when index ``i`` is applied with another term the proposal was overwritten by
  a new leader and is answered ``"dropped"`` (the client may retry); proposals pending when
  the leader steps down are answered ``"unknown"`` (they may still commit). A follower answers
  ``{"ok": false, "error": "not_leader", "leader": N}`` (0 when it knows no leader).
- ``{"op": "read", "id": n, "key": k}``: ReadIndex (Raft dissertation section 6.4). The leader
  records its commit index, confirms with a heartbeat round that it still leads, and answers
  ``{"ok": true, "value": v, "index": i}`` once it has applied ``i``. Reads pending when the
  leader steps down are answered ``not_leader``.
- ``{"op": "status", "id": n}``: ``manager_id``, role, term, leader, commit and applied index.
- ``{"op": "digest", "id": n}``: the applied index and a SHA-256 of the state machine's snapshot
  there (replicas at the same applied index must agree: the benchmark's equality check).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
from typing import TYPE_CHECKING, Any

from backends.manager.framing import FrameDecoder, FrameTooLarge, encode_frame
from backends.manager.replicated import encode_batch
from novacron.raft import LEADER, Entry, ReadState

if TYPE_CHECKING:
    from backends.manager.runtime import ManagerRuntime

log = logging.getLogger(__name__)
READ_CHUNK_BYTES = 1 << 20
PLANTED_BUG_ENV = "NOVACRON_PLANTED_BUG"
"""Set to ``local-reads`` only by tests that prove the Jepsen-style checker can fail."""


class ClientConnection:
    def __init__(self, conn_id: int, writer: asyncio.StreamWriter) -> None:
        self.conn_id = conn_id
        self.writer = writer
        self.outgoing: list[bytes] = []
        self.closed = False


Waiter = tuple[ClientConnection, int]


class ClientApi:
    def __init__(self, runtime: ManagerRuntime) -> None:
        self.runtime = runtime
        self.queued: list[tuple[ClientConnection, int, bytes]] = []
        self.waiters: dict[int, tuple[int, list[Waiter]]] = {}
        self.reads_queued: list[tuple[ClientConnection, int, str]] = []
        self.reads_confirming: dict[bytes, tuple[ClientConnection, int, str]] = {}
        self.reads_applying: list[tuple[int, ClientConnection, int, str]] = []
        self.was_leader = False
        self.planted_local_reads = os.environ.get(PLANTED_BUG_ENV) == "local-reads"
        self._dirty: set[ClientConnection] = set()
        self._conn_ids = itertools.count(1)
        self._read_ids = itertools.count(1)

    # -- connections ---------------------------------------------------------------------------

    async def handle_connection(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        conn = ClientConnection(next(self._conn_ids), writer)
        decoder = FrameDecoder()
        self.runtime.connections.add(writer)
        self.runtime.track_connection_task()
        try:
            while chunk := await reader.read(READ_CHUNK_BYTES):
                for request in decoder.feed(chunk):
                    self.handle_request(conn, request)
                self.runtime._schedule_drive()
        except (FrameTooLarge, ConnectionError) as exc:
            log.warning("manager %d: dropping client connection %d: %s", self.runtime.id, conn.conn_id, exc)
        finally:
            conn.closed = True
            self.runtime.connections.discard(writer)
            self.runtime.connection_tasks.discard(asyncio.current_task())
            writer.close()

    def answer(self, conn: ClientConnection, reply: dict[str, Any]) -> None:
        if not conn.closed:
            conn.outgoing.append(encode_frame(reply))
            self._dirty.add(conn)

    def flush(self) -> None:
        for conn in self._dirty:
            if not conn.closed and conn.outgoing:
                conn.writer.write(b"".join(conn.outgoing))
            conn.outgoing.clear()
        self._dirty.clear()

    def handle_request(self, conn: ClientConnection, request: Any) -> None:
        if not isinstance(request, dict) or "id" not in request:
            self.answer(conn, {"id": None, "ok": False, "error": "bad_request"})
            return
        request_id, op = request["id"], request.get("op")
        if op == "status":
            self.answer(conn, {**self.runtime.status(), "id": request_id, "ok": True})
        elif op == "digest":
            self.answer(conn, {"id": request_id, "ok": True, **self.runtime.digest()})
        elif op == "propose" and isinstance(request.get("data"), bytes):
            self.queued.append((conn, request_id, request["data"]))
        elif op == "read" and isinstance(request.get("key"), str):
            self._start_read(conn, request_id, request["key"])
        else:
            self.answer(conn, {"id": request_id, "ok": False, "error": "bad_request"})

    def _not_leader(self, conn: ClientConnection, request_id: int) -> None:
        self.answer(conn, {"id": request_id, "ok": False, "error": "not_leader", "leader": self.runtime.node.leader})

    # -- proposals -----------------------------------------------------------------------------

    def propose_queued(self) -> None:
        """Pack the proposals queued since the last ``Ready`` into entries of at most ``max_batch_bytes``."""
        queued, self.queued = self.queued, []
        start, size = 0, 0
        for end, (_, _, data) in enumerate(queued):
            size += len(data)
            if size >= self.runtime.config.max_batch_bytes:
                self._propose_batch(queued[start:end + 1])
                start, size = end + 1, 0
        if start < len(queued):
            self._propose_batch(queued[start:])

    def _propose_batch(self, batch: list[tuple[ClientConnection, int, bytes]]) -> None:
        node = self.runtime.node
        placed = node.propose(encode_batch([data for _, _, data in batch])) if node.role == LEADER else None
        if placed is None:
            for conn, request_id, _ in batch:
                self._not_leader(conn, request_id)
            return
        index, term = placed
        overwritten = self.waiters.pop(index, None)
        if overwritten is not None:  # proposed here in an earlier term, then truncated away
            for conn, request_id in overwritten[1]:
                self.answer(conn, {"id": request_id, "ok": False, "error": "dropped"})
        self.waiters[index] = (term, [(conn, request_id) for conn, request_id, _ in batch])

    def entry_applied(self, entry: Entry) -> None:
        waiting = self.waiters.pop(entry.index, None)
        if waiting is None:
            return
        term, proposals = waiting
        for position, (conn, request_id) in enumerate(proposals):
            if term == entry.term:
                self.answer(conn, {"id": request_id, "ok": True, "index": entry.index, "position": position})
            else:
                self.answer(conn, {"id": request_id, "ok": False, "error": "dropped"})

    def entries_superseded(self, index: int) -> None:
        """A snapshot replaced the log up to ``index``: their outcome is unknown here."""
        for entry_index in [i for i in self.waiters if i <= index]:
            for conn, request_id in self.waiters.pop(entry_index)[1]:
                self.answer(conn, {"id": request_id, "ok": False, "error": "unknown"})

    # -- linearizable reads (ReadIndex) --------------------------------------------------------

    def _start_read(self, conn: ClientConnection, request_id: int, key: str) -> None:
        if self.planted_local_reads:
            # PLANTED BUG (tests only): answer from this replica's state, leader or not, with no
            # ReadIndex round -- the stale read the Jepsen-style test must catch.
            self.answer(conn, {"id": request_id, "ok": True, "value": self.runtime.state.get(key),
                               "index": self.runtime.state.applied_index})
            return
        self.reads_queued.append((conn, request_id, key))

    def start_queued_reads(self) -> None:
        """Called by the Ready loop (the node may not be touched while a Ready is being persisted)."""
        queued, self.reads_queued = self.reads_queued, []
        for conn, request_id, key in queued:
            context = f"r{next(self._read_ids)}".encode()
            if self.runtime.node.role != LEADER or not self.runtime.node.read_index(context):
                self._not_leader(conn, request_id)
            else:
                self.reads_confirming[context] = (conn, request_id, key)

    def reads_ready(self, read_states: list[ReadState]) -> None:
        for state in read_states:
            pending = self.reads_confirming.pop(state.context, None)
            if pending is not None:
                self.reads_applying.append((state.index, *pending))
        applied = self.runtime.state.applied_index
        still_waiting = []
        for index, conn, request_id, key in self.reads_applying:
            if index <= applied:
                self.answer(conn, {"id": request_id, "ok": True, "value": self.runtime.state.get(key),
                                   "index": index})
            else:
                still_waiting.append((index, conn, request_id, key))
        self.reads_applying = still_waiting

    def role_changed(self, is_leader: bool) -> None:
        if self.was_leader and not is_leader:
            # Leadership lost: a pending proposal may still commit under the new leader, or be
            # overwritten; this manager may not learn which for a long time, so say so now.
            for _, proposals in self.waiters.values():
                for conn, request_id in proposals:
                    self.answer(conn, {"id": request_id, "ok": False, "error": "unknown"})
            self.waiters.clear()
            for conn, request_id, _ in self.reads_confirming.values():
                self._not_leader(conn, request_id)
            for _, conn, request_id, _ in self.reads_applying:
                self._not_leader(conn, request_id)
            self.reads_confirming.clear()
            self.reads_applying.clear()
        self.was_leader = is_leader

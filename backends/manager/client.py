"""Clients of the managers: one pipelined connection, a leader-following cluster client, status.

Theory of operation
-------------------
``ManagerClient`` holds one TCP connection to one manager and pipelines requests on it: each
request gets an id and a future, a reader task resolves futures as replies arrive (in any
order). ``ClusterClient`` knows every manager's client address, sends proposals to the manager
it believes leads, follows ``not_leader`` redirects, and on a timeout or a broken connection
tries the next manager after a short pause -- the behaviour a caller needs while a leader is
being killed and replaced. A proposal retried after a timeout may be committed twice (its first
attempt's outcome was unknown); callers that care put a unique key in the command.

``cluster_status`` asks every manager for its status concurrently; an unreachable manager is a
row saying so, not an error.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
from typing import Any

from backends.manager.framing import FrameDecoder, encode_frame


class ManagerUnavailable(ConnectionError):
    """The manager could not be reached, or the connection broke before it answered."""


class ManagerClient:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._reader, self._writer = reader, writer
        self._ids = itertools.count(1)
        self._pending: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._outgoing: list[bytes] = []
        self._task = asyncio.get_running_loop().create_task(self._read_replies())

    @classmethod
    async def connect(cls, host: str, port: int, timeout_s: float = 2.0) -> ManagerClient:
        try:
            async with asyncio.timeout(timeout_s):
                reader, writer = await asyncio.open_connection(host, port)
        except (TimeoutError, OSError) as exc:
            raise ManagerUnavailable(f"{host}:{port}: {exc or 'connect timed out'}") from None
        return cls(reader, writer)

    async def request(self, op: str, timeout_s: float | None = 5.0, **fields: Any) -> dict[str, Any]:
        if self._task.done():
            raise ManagerUnavailable("connection closed")
        request_id = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._pending[request_id] = future
        if not self._outgoing:
            # Requests made in the same loop iteration leave in one write (pipelining).
            asyncio.get_running_loop().call_soon(self._flush)
        self._outgoing.append(encode_frame({"id": request_id, "op": op, **fields}))
        try:
            async with asyncio.timeout(timeout_s):
                return await future
        finally:
            self._pending.pop(request_id, None)

    def _flush(self) -> None:
        if self._outgoing and not self._writer.is_closing():
            self._writer.write(b"".join(self._outgoing))
        self._outgoing.clear()

    async def propose(self, data: bytes, timeout_s: float | None = 5.0) -> dict[str, Any]:
        return await self.request("propose", timeout_s, data=data)

    async def read(self, key: str, timeout_s: float = 5.0) -> dict[str, Any]:
        return await self.request("read", timeout_s, key=key)

    async def status(self, timeout_s: float = 2.0) -> dict[str, Any]:
        return await self.request("status", timeout_s)

    async def close(self) -> None:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        self._writer.close()
        with contextlib.suppress(OSError):
            await self._writer.wait_closed()

    async def _read_replies(self) -> None:
        decoder = FrameDecoder()
        try:
            while chunk := await self._reader.read(1 << 18):
                for reply in decoder.feed(chunk):
                    future = self._pending.get(reply.get("id"))
                    if future is not None and not future.done():
                        future.set_result(reply)
        except (OSError, ValueError):
            pass
        finally:
            for future in self._pending.values():
                if not future.done():
                    future.set_exception(ManagerUnavailable("connection closed before the reply"))


class ClusterClient:
    """Sends to the leader, following redirects and moving on when a manager is unreachable."""

    def __init__(self, addresses: dict[int, tuple[str, int]], *, retry_pause_s: float = 0.05) -> None:
        self.addresses = addresses
        self.leader = min(addresses)
        self.retry_pause_s = retry_pause_s
        self._clients: dict[int, ManagerClient] = {}
        self._locks: dict[int, asyncio.Lock] = {}

    async def client(self, manager_id: int) -> ManagerClient:
        """The open connection to ``manager_id``; concurrent callers share one (a lock per manager)."""
        async with self._locks.setdefault(manager_id, asyncio.Lock()):
            existing = self._clients.pop(manager_id, None)
            if existing is not None:
                if not existing._task.done():
                    self._clients[manager_id] = existing
                    return existing
                await existing.close()
            host, port = self.addresses[manager_id]
            self._clients[manager_id] = await ManagerClient.connect(host, port)
            return self._clients[manager_id]

    async def call(self, op: str, deadline_s: float = 30.0, attempt_timeout_s: float = 3.0,
                   **fields: Any) -> dict[str, Any]:
        """``op`` on the leader; retried until a definite answer (ok, or an error other than
        not_leader/unreachable) or until ``deadline_s``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + deadline_s
        ids = sorted(self.addresses)
        while True:
            target = self.leader
            try:
                reply = await (await self.client(target)).request(op, attempt_timeout_s, **fields)
            except (TimeoutError, ManagerUnavailable):
                reply = {"ok": False, "error": "unreachable", "leader": 0}
            if reply.get("ok") or reply.get("error") not in ("not_leader", "unreachable"):
                return reply
            if loop.time() >= deadline:
                return reply
            hinted = int(reply.get("leader") or 0)
            if hinted in self.addresses and hinted != target:
                self.leader = hinted
                continue
            self.leader = ids[(ids.index(target) + 1) % len(ids)]
            await asyncio.sleep(self.retry_pause_s)

    async def propose(self, data: bytes, deadline_s: float = 30.0) -> dict[str, Any]:
        return await self.call("propose", deadline_s, data=data)

    async def read(self, key: str, deadline_s: float = 30.0) -> dict[str, Any]:
        return await self.call("read", deadline_s, key=key)

    async def close(self) -> None:
        for client in self._clients.values():
            await client.close()
        self._clients.clear()


async def cluster_status(addresses: dict[int, tuple[str, int]], timeout_s: float = 2.0) -> list[dict[str, Any]]:
    async def one(manager_id: int) -> dict[str, Any]:
        host, port = addresses[manager_id]
        try:
            client = await ManagerClient.connect(host, port, timeout_s)
        except ManagerUnavailable as exc:
            return {"id": manager_id, "address": f"{host}:{port}", "reachable": False, "error": str(exc)}
        try:
            status = await client.status(timeout_s)
            return {**status, "id": manager_id, "address": f"{host}:{port}", "reachable": True}
        except (TimeoutError, ManagerUnavailable) as exc:
            return {"id": manager_id, "address": f"{host}:{port}", "reachable": False, "error": str(exc) or "timeout"}
        finally:
            await client.close()

    return list(await asyncio.gather(*(one(i) for i in sorted(addresses))))


def format_status_table(rows: list[dict[str, Any]]) -> str:
    header = ("manager", "address", "role", "term", "leader", "commit", "applied")
    lines = [header]
    for row in rows:
        if row.get("reachable"):
            lines.append((str(row["id"]), row["address"], str(row["role"]), str(row["term"]),
                          str(row["leader"] or "-"), str(row["commit"]), str(row["applied"])))
        else:
            lines.append((str(row["id"]), row["address"], "unreachable", "-", "-", "-", "-"))
    widths = [max(len(line[i]) for line in lines) for i in range(len(header))]
    return "\n".join("  ".join(cell.ljust(w) for cell, w in zip(line, widths, strict=True)).rstrip()
                     for line in lines)

"""One PySyncObj node behind the managers' client protocol, for ``managers_vs_peers.py``.

The comparison drives every system with the same load generator over TCP, so PySyncObj (a
library, with no client protocol of its own) gets a front end speaking the managers' framed
protocol: ``{"op": "propose", "id": n, "data": b}`` is answered ``{"id": n, "ok": true}`` from
PySyncObj's own completion callback (``put(data, callback=...)``), i.e. once the command is
committed and applied on this node -- what the managers' ``propose`` answer means too.
``{"op": "status"}`` answers whether this node leads and its applied count and CRC (the
replicas-equal check). The front end is an asyncio server in the main thread; PySyncObj runs its
own thread (``autoTick``) and hands each completion over with ``call_soon_threadsafe``.

``--tuned`` sets ``appendEntriesUseBatch=False`` (an entry is sent when proposed rather than in
the next 100 ms batch); the journal stays in memory in both modes (PySyncObj's default): nothing
is written to disk, so no acknowledged write survives the loss of a majority's processes.
"""

from __future__ import annotations

import argparse
import asyncio
import zlib
from typing import Any

from pysyncobj import SyncObj, SyncObjConf, replicated

from backends.manager.framing import FrameDecoder, encode_frame


class Register(SyncObj):  # type: ignore[misc]
    def __init__(self, self_address: str, partners: list[str], conf: SyncObjConf) -> None:
        super().__init__(self_address, partners, conf)
        self.count = 0
        self.crc = 0

    @replicated  # type: ignore[misc]
    def put(self, payload: bytes) -> None:
        self.count += 1
        self.crc = zlib.crc32(payload, self.crc)


async def serve(node: Register, port: int) -> None:
    loop = asyncio.get_running_loop()

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        decoder = FrameDecoder()

        def reply(message: dict[str, Any]) -> None:
            if not writer.is_closing():
                writer.write(encode_frame(message))

        def done(request_id: int) -> Any:
            return lambda _result, error: loop.call_soon_threadsafe(
                reply, {"id": request_id, "ok": error == 0, "error": error})

        while chunk := await reader.read(1 << 16):
            for request in decoder.feed(chunk):
                if request["op"] == "propose":
                    node.put(request["data"], callback=done(request["id"]))
                else:
                    reply({"id": request["id"], "ok": True, "leader": bool(node._isLeader()),
                           "count": node.count, "crc": node.crc})
        writer.close()

    server = await asyncio.start_server(handle, "127.0.0.1", port)
    async with server:
        await server.serve_forever()


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--self", dest="self_address", required=True)
    parser.add_argument("--partners", required=True)
    parser.add_argument("--client-port", type=int, required=True)
    parser.add_argument("--tuned", action="store_true")
    args = parser.parse_args()
    conf = SyncObjConf(appendEntriesUseBatch=False) if args.tuned else SyncObjConf()
    node = Register(args.self_address, args.partners.split(","), conf)
    asyncio.run(serve(node, args.client_port))


if __name__ == "__main__":
    main()

"""Real NovaCron managers: the I/O-free Raft core driven over asyncio TCP with a log on disk.

Modules
-------
- ``framing``: length-prefixed msgpack frames (peer and client connections share them).
- ``segment_log``: ``SegmentLogStore``, the durable ``Stored`` state as CRC-framed records in
  preallocated segment files, one write and one fdatasync per save (the default).
- ``logstore``: ``SQLiteLogStore``, the same in SQLite (WAL, ``synchronous=FULL``; ``--log-store sqlite``).
- ``peers``: outbound links to the other managers (reconnect with backoff, never blocking).
- ``eventlog``: committed commands as events, in Parquet row groups folded into the data dir's
  ``events.parquet`` + ``summary.json`` (a run directory); ``events.jsonl`` with ``--events-jsonl``.
- ``runtime``: ``ManagerRuntime``, the Ready loop (persist, send, apply, answer) and the client API.
- ``client``: an asyncio client (propose, linearizable read, status) and ``cluster status``.
- ``cli``: the argument handling behind ``novacron manager`` and ``novacron cluster status``.
"""

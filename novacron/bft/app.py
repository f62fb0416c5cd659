"""The key-value service the PBFT replicas replicate in the simulations and the real-process tests.

Theory of operation
-------------------
Operations are ``put KEY VALUE`` (result ``ok``) and ``get KEY`` (the value, empty if unset), as
bytes. ``execute`` is deterministic, so every correct replica computes the same result and the
client's ``f + 1`` matching replies agree. The snapshot is the sorted ``key value`` lines.
"""

from __future__ import annotations


class KeyValueApp:
    """The replicated service of the simulations: ``put key value`` / ``get key``, results as bytes."""

    def __init__(self) -> None:
        self.values: dict[bytes, bytes] = {}

    def execute(self, operation: bytes) -> bytes:
        verb, _, rest = operation.partition(b" ")
        key, _, value = rest.partition(b" ")
        if verb == b"put":
            self.values[key] = value
            return b"ok"
        return self.values.get(key, b"")

    def snapshot(self) -> bytes:
        return b"\n".join(k + b" " + v for k, v in sorted(self.values.items()))

    def restore(self, data: bytes) -> None:
        self.values = {}
        for line in data.split(b"\n") if data else ():
            key, _, value = line.partition(b" ")
            self.values[key] = value

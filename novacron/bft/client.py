"""A PBFT client: signs requests and accepts a result once f + 1 replicas reply the same.

Theory of operation
-------------------
Castro and Liskov 2002, section 2.3.1. At most ``f`` replicas are faulty, so ``f + 1`` matching
replies (same timestamp and result, from distinct replicas, each signature valid) include at least
one from a correct replica -- and correct replicas only reply with the result of a committed
execution. The client numbers its requests with increasing timestamps; replicas execute each one
at most once. Resending after a timeout (to every replica) is the runtime's job: ``pending``
holds the request to resend.
"""

from __future__ import annotations

from novacron.bft.crypto import Signer, Verifier
from novacron.bft.messages import Reply, Request, Signed


class BftClient:
    def __init__(self, client_id: int, signer: Signer, verifier: Verifier, faulty: int, replicas: int) -> None:
        if client_id <= replicas:
            raise ValueError(f"client_id {client_id}: must be above the replica ids 1..{replicas}")
        self.id = client_id
        self.f = faulty
        self.replicas = replicas
        self._signer = signer
        self._verifier = verifier
        self.timestamp = 0
        self.pending: Signed | None = None
        self._replies: dict[bytes, set[int]] = {}
        self.rejected = 0

    def request(self, operation: bytes) -> Signed:
        """A new signed request (one at a time: the previous one must have completed)."""
        if self.pending is not None:
            raise RuntimeError(f"client {self.id}: request {self.timestamp} still pending")
        self.timestamp += 1
        body = Request(self.id, self.timestamp, operation)
        self.pending = Signed.of(body, self.id, self._signer.sign)
        self._replies = {}
        return self.pending

    def on_reply(self, message: Signed) -> bytes | None:
        """The result, the first time ``f + 1`` replicas agree on it; None otherwise."""
        body = message.body
        if (self.pending is None or not isinstance(body, Reply) or body.client != self.id
                or body.timestamp != self.timestamp):
            return None
        if (body.replica != message.sender or not 1 <= body.replica <= self.replicas
                or not self._verifier.verify(message.sender, message.body_bytes(), message.signature)):
            self.rejected += 1
            return None
        voters = self._replies.setdefault(body.result, set())
        voters.add(body.replica)
        if len(voters) < self.f + 1:
            return None
        self.pending = None
        return body.result

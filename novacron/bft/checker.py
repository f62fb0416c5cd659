"""The safety properties the Byzantine vopr checks after every execution on a correct replica.

Theory of operation
-------------------
PBFT's correctness (Castro and Liskov 2002, section 2.2 and appendix) with at most ``f`` faulty
replicas, stated over what correct replicas do -- faulty ones may do anything:

- agreement: no two correct replicas execute different batches (digests) at one sequence number,
  and no two make different states stable at one checkpoint;
- validity: every executed request was issued by a client (its signature came from that client's
  key, which only the client holds: the checker knows what each client issued);
- exactly once and in order: a correct replica executes sequence numbers without gaps (a jump is
  only allowed onto a stable checkpoint that agreement then covers) and a request at most once.

Liveness is the vopr's (``sim.bft.vopr``): it depends on time, which the core does not have.
"""

from __future__ import annotations

from novacron.bft.replica import Executed, StableCheckpoint


class BftSafetyViolation(AssertionError):
    pass


class BftSafetyChecker:
    def __init__(self) -> None:
        self.digests: dict[int, tuple[bytes, int]] = {}
        """The digest first executed at each sequence number, and by which replica."""
        self.states: dict[int, tuple[bytes, int]] = {}
        self.issued: set[tuple[int, int, bytes]] = set()
        self.last_seq: dict[int, int] = {}
        self.seen: dict[int, set[tuple[int, int]]] = {}
        self.checks = 0

    def issued_request(self, client: int, timestamp: int, operation: bytes) -> None:
        self.issued.add((client, timestamp, operation))

    def executed(self, replica: int, executed: Executed) -> None:
        self.checks += 1
        first = self.digests.setdefault(executed.seq, (executed.digest, replica))
        if first[0] != executed.digest:
            raise BftSafetyViolation(
                f"Agreement: replica {replica} executed digest {executed.digest.hex()[:12]} at seq {executed.seq} "
                f"(view {executed.view}), replica {first[1]} executed {first[0].hex()[:12]}")
        last = self.last_seq.get(replica, 0)
        if executed.seq != last + 1:
            raise BftSafetyViolation(f"Order: replica {replica} executed seq {executed.seq} after {last}")
        self.last_seq[replica] = executed.seq
        seen = self.seen.setdefault(replica, set())
        for request in executed.requests:
            if (request.client, request.timestamp, request.operation) not in self.issued:
                raise BftSafetyViolation(f"Validity: replica {replica} executed a request no client issued: "
                                         f"client {request.client} #{request.timestamp} {request.operation[:40]!r}")
            key = (request.client, request.timestamp)
            if key in seen:
                raise BftSafetyViolation(f"Exactly once: replica {replica} executed client {key[0]} "
                                         f"#{key[1]} twice")
            seen.add(key)

    def checkpointed(self, replica: int, checkpoint: StableCheckpoint, state_digest: bytes) -> None:
        first = self.states.setdefault(checkpoint.seq, (state_digest, replica))
        if first[0] != state_digest:
            raise BftSafetyViolation(f"Agreement: replica {replica} made state {state_digest.hex()[:12]} stable at "
                                     f"seq {checkpoint.seq}, replica {first[1]} {first[0].hex()[:12]}")
        # A jump onto a stable checkpoint (state transfer, or a restart from storage) resumes there.
        self.last_seq[replica] = max(self.last_seq.get(replica, 0), checkpoint.seq)

    def restarted(self, replica: int, checkpoint_seq: int) -> None:
        """A restart resumes from the stored checkpoint and executes the rest again."""
        self.last_seq[replica] = checkpoint_seq
        self.seen.pop(replica, None)

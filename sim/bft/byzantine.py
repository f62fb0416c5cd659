"""Byzantine replicas for the simulator: a correct core whose traffic a ``Liar`` rewrites.

Theory of operation
-------------------
A Byzantine replica runs the same ``Replica`` as everybody (so it knows what a plausible lie
looks like) and holds only its own signing key. ``Liar.outgoing`` rewrites what the core sends,
``Liar.incoming`` records what it hears (to replay it later). The kinds, any subset per replica:

- ``equivocate``: as primary, sends a different, validly signed pre-prepare (the batch without its
  last request, or the null batch) for the same ``(view, seq)`` to a random part of the replicas,
  and commits to both;
- ``conflicting-votes``: its prepares and commits go out with another digest to some replicas
  (the equivocated one if it knows it, else a made-up one);
- ``forge``: messages claiming to come from other replicas -- prepares and commits for the digest
  it equivocated with, and view changes -- carrying an empty signature, random bytes, or its own
  signature over the forged body; correct replicas must reject every one (``Replica.rejected``);
- ``replay``: re-sends messages it heard earlier (valid signatures, stale content) to random
  replicas, seconds later;
- ``silence``: drops everything to a fixed subset of replicas (maybe all of them, maybe clients);
- ``delay-view-change``: holds its view-change and new-view messages back for up to seconds;
- ``spurious-view-change``: now and then asks for a view 1-3 above the current one, with an
  empty (lying) set of prepared certificates.
"""

from __future__ import annotations

from collections import deque
from random import Random

from novacron.bft.crypto import Signer
from novacron.bft.messages import (
    Checkpoint,
    Commit,
    NewView,
    Prepare,
    PrePrepare,
    Signed,
    ViewChange,
    batch_digest,
    canonical,
)
from novacron.bft.replica import Replica
from sim.bft.cluster import Behaviour, BftCluster, Member, Stage

BYZANTINE_KINDS = ("equivocate", "conflicting-votes", "forge", "replay", "silence", "delay-view-change",
                   "spurious-view-change")
FORGERY_STYLES = ("empty", "random", "own-key")
REPLAY_MEMORY = 256


class Liar(Behaviour):
    def __init__(self, kinds: frozenset[str], rng: Random, signer: Signer, *, silent_to: frozenset[int],
                 lie_share: float, view_change_delay_s: float, trace: list[str] | None = None) -> None:
        self.kinds = kinds
        self.rng = rng
        self.signer = signer
        self.silent_to = silent_to
        self.lie_share = lie_share
        self.view_change_delay_s = view_change_delay_s
        self.heard: deque[Signed] = deque(maxlen=REPLAY_MEMORY)
        self.alternatives: dict[tuple[int, int], bytes] = {}
        """(view, seq) -> the other digest this replica equivocated with."""
        self.forged = 0
        self.lies = 0

    def _sign(self, body: object) -> Signed:
        return Signed.of(body, self.signer.identity, self.signer.sign)

    def incoming(self, stage: Stage, replica: Replica, message: Signed) -> None:
        if "replay" in self.kinds:
            self.heard.append(message)

    def outgoing(self, stage: Stage, replica: Replica,
                 messages: list[tuple[int, Signed]]) -> list[tuple[int, Signed]]:
        out: list[tuple[int, Signed]] = []
        for dst, message in messages:
            if dst in self.silent_to:
                continue
            out.extend(self._rewrite(stage, dst, message))
        if "replay" in self.kinds and self.heard and self.rng.random() < self.lie_share:
            old = self.rng.choice(self.heard)
            target = self.rng.randint(1, stage.n)
            stage.deliver_later(stage.now_s + self.rng.uniform(0.0, 2.0), target, old)
        spurious = "spurious-view-change" in self.kinds and self.rng.random() < self.lie_share / 4
        if spurious:
            r = replica
            vc = self._sign(ViewChange(r.view + self.rng.randint(1, 3), r.stable.seq, r.stable.proof, (), r.id))
            out.extend((d, vc) for d in range(1, stage.n + 1) if d != r.id and d not in self.silent_to)
        return out

    def _rewrite(self, stage: Stage, dst: int, message: Signed) -> list[tuple[int, Signed]]:
        body = message.body
        if isinstance(body, ViewChange | NewView) and "delay-view-change" in self.kinds:
            delay_s = self.rng.uniform(0.0, self.view_change_delay_s)
            stage.deliver_later(stage.now_s + delay_s, dst, message)
            return []
        lying = self.rng.random() < self.lie_share
        if isinstance(body, PrePrepare) and "equivocate" in self.kinds and lying:
            return self._equivocate(stage, dst, body)
        if isinstance(body, Prepare | Commit) and "conflicting-votes" in self.kinds and lying:
            other = self.alternatives.get((body.view, body.seq)) or self.rng.randbytes(32)
            self.lies += 1
            return [(dst, self._sign(type(body)(body.view, body.seq, other, body.replica)))]
        return [(dst, message)]

    def _equivocate(self, stage: Stage, dst: int, pp: PrePrepare) -> list[tuple[int, Signed]]:
        batch = pp.batch[:-1] if self.rng.random() < 0.5 else ()
        digest = batch_digest(batch)
        self.alternatives[(pp.view, pp.seq)] = digest
        self.lies += 1
        me = self.signer.identity
        out = [(dst, self._sign(PrePrepare(pp.view, pp.seq, digest, batch))),
               (dst, self._sign(Commit(pp.view, pp.seq, digest, me)))]
        if "forge" in self.kinds:
            for other in range(1, stage.n + 1):
                if other not in (me, dst):
                    out.append((dst, self._forge(Prepare(pp.view, pp.seq, digest, other), other)))
                    out.append((dst, self._forge(Commit(pp.view, pp.seq, digest, other), other)))
        return out

    def _forge(self, body: object, as_replica: int) -> Signed:
        """``body`` claiming to come from ``as_replica``: a signature that must not verify."""
        self.forged += 1
        style = self.rng.choice(FORGERY_STYLES)
        if style == "empty":
            signature = b""
        elif style == "random":
            signature = self.rng.randbytes(len(self.signer.sign(b"")))
        else:
            signature = self.signer.sign(canonical(body))
        return Signed(body, as_replica, signature)

    def forge_noise(self, cluster: BftCluster, member: Member) -> None:
        """Forged checkpoints and view changes in another's name, even when there is nothing to equivocate."""
        replica = member.replica
        if replica is None or "forge" not in self.kinds:
            return
        victim = self.rng.choice([i for i in range(1, cluster.n + 1) if i != replica.id])
        target = self.rng.choice([i for i in range(1, cluster.n + 1) if i != replica.id])
        if self.rng.random() < 0.5:
            body: object = Checkpoint(replica.executed, self.rng.randbytes(32), victim)
        else:
            body = ViewChange(replica.view + 1, replica.stable.seq, replica.stable.proof, (), victim)
        cluster.deliver_later(cluster.now_s + self.rng.uniform(0.0, 0.05), target, self._forge(body, victim))

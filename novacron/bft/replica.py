"""The PBFT replica: an I/O-free state machine driven by ``tick``, ``step``, ``ready`` and ``advance``.

Theory of operation
-------------------
Castro and Liskov, "Practical Byzantine Fault Tolerance and Proactive Recovery" (TOCS 2002), with
signatures (the paper's section 2 variant). ``n >= 3f + 1`` replicas, ids ``1..n``; the primary
of view ``v`` is replica ``v mod n + 1``. Quorums are ``q = ceil((n + f + 1) / 2)`` -- ``2f + 1``
when ``n = 3f + 1`` -- so any two intersect in ``f + 1`` replicas, at least one correct, and
``n - f >= q`` correct ones can always form one. (With 5 replicas, ``2f + 1 = 3`` is not enough:
two sets of 3 out of 5 may share only the faulty primary. The vopr found that, seed 28.) Below,
"2f" and "2f + 1" stand for ``q - 1`` and ``q``.

- Normal case (2.3.3). Clients send signed requests to every replica. The primary orders a batch
  of them at sequence number ``n`` with a PRE-PREPARE; a backup accepts it if it is in view, from
  the primary, inside the watermarks ``(h, h + L]``, its digest matches and it has not accepted a
  different one for ``(v, n)``, then multicasts PREPARE. ``prepared(v, n, d)``: the pre-prepare
  plus ``2f`` matching prepares from distinct backups -- no two correct replicas prepare different
  digests at ``(v, n)``. A prepared replica multicasts COMMIT; ``committed-local``: prepared plus
  ``2f + 1`` matching commits. Batches execute in sequence-number order; each request at most
  once (per client, increasing timestamps); each execution sends a signed REPLY to the client,
  who accepts a result once ``f + 1`` replicas sent the same one (``novacron.bft.client``).
- Checkpoints and garbage collection (2.3.4). Every ``K`` executions a replica multicasts
  CHECKPOINT(n, state digest); ``2f + 1`` matching ones make it stable: the log up to ``n`` is
  dropped and the watermarks move.
- View changes (2.3.5). A backup that has an unexecuted request for ``view_change_ticks`` sends
  VIEW-CHANGE(v + 1) carrying its stable checkpoint's proof and a prepared certificate for every
  prepared sequence number above it. Its timer for the new view starts once ``2f + 1`` replicas
  asked for that view or a later one (a later one left this view too), and doubles for each
  further view (the pacemaker); it joins the smallest higher view that ``f + 1`` others already
  asked for. The new primary collects ``2f + 1`` VIEW-CHANGEs and sends NEW-VIEW with them and the pre-prepares they
  imply (for each ``n`` between the highest stable checkpoint and the highest prepared ``n``: the
  batch of the highest-view certificate, or the null batch). Backups recompute and check that
  choice before entering the view, so a Byzantine primary cannot drop a committed request. A
  replica whose stable checkpoint is below the NEW-VIEW's lowest sequence number takes that
  checkpoint's proof from it (section 4.4), or fetches the state if it has not executed that far.
- Retransmission and state transfer. A replica resends its own messages for unfinished slots
  every ``resend_ticks``, and multicasts STATUS(view, executed) every ``status_ticks``; a replica
  that is further answers with its NEW-VIEW (a laggard joins the view) and a CATCH-UP: a stable
  checkpoint's proof with the state it certifies, then a commit certificate per sequence number.
  Certificates carry their signatures, so one reply from anybody is enough to trust them.
- Every input is verified before it is looked at: its signature (cached, see ``crypto``), that the
  signer is who the body says sent it, and the message's own rules. A message failing any of it is
  dropped and counted (``rejected``).
- Durability (``Ready``). A replica persists what it signs, the pre-prepares and NEW-VIEWs it
  accepted and its prepared certificates *before* sending anything, and replays them after a
  restart, so a restarted correct replica never contradicts what it said before.

Between ``ready()`` and ``advance()`` the runtime must not call ``tick``, ``step`` or ``submit``.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Protocol

from novacron.bft.crypto import CachingVerifier, Signer, Verifier
from novacron.bft.messages import (
    CatchUp,
    Checkpoint,
    Commit,
    NewView,
    Prepare,
    PreparedProof,
    PrePrepare,
    Reply,
    Request,
    Signed,
    Status,
    ViewChange,
    batch_digest,
)
from novacron.bft.snapshot import decode_snapshot, encode_snapshot

NORMAL, VIEW_CHANGE = "normal", "view-change"
NULL_DIGEST = batch_digest(())
MIN_REPLICAS, MAX_REPLICAS = 4, 7


class Application(Protocol):
    """The replicated service: deterministic, so every correct replica computes the same result."""

    def execute(self, operation: bytes) -> bytes: ...

    def snapshot(self) -> bytes: ...

    def restore(self, data: bytes) -> None: ...


@dataclass(frozen=True, slots=True)
class BftConfig:
    replica_id: int
    replicas: int = 4
    checkpoint_interval: int = 8
    log_window: int = 32
    max_batch: int = 8
    view_change_ticks: int = 50
    resend_ticks: int = 20
    status_ticks: int = 25
    max_backoff_doublings: int = 3
    """The view-change timeout doubles per failed view up to this many times (then stays)."""

    def __post_init__(self) -> None:
        if not MIN_REPLICAS <= self.replicas <= MAX_REPLICAS:
            raise ValueError(f"replicas {self.replicas}: allowed: {MIN_REPLICAS} to {MAX_REPLICAS} (n = 3f + 1)")
        if not 1 <= self.replica_id <= self.replicas:
            raise ValueError(f"replica_id {self.replica_id}: allowed: 1 to {self.replicas}")
        if self.checkpoint_interval < 1 or self.log_window < 2 * self.checkpoint_interval:
            raise ValueError("need checkpoint_interval >= 1 and log_window >= 2 * checkpoint_interval, got "
                             f"{self.checkpoint_interval} and {self.log_window}")

    @property
    def faulty(self) -> int:
        """f: the most Byzantine replicas ``replicas`` tolerate."""
        return (self.replicas - 1) // 3


@dataclass(frozen=True, slots=True)
class Executed:
    """One batch executed at ``seq`` (what checkers and observers read)."""

    seq: int
    view: int
    digest: bytes
    requests: tuple[Request, ...]


@dataclass(frozen=True, slots=True)
class StableCheckpoint:
    seq: int = 0
    state: bytes = b""
    proof: tuple[Signed, ...] = ()


@dataclass(slots=True)
class Ready:
    """What the replica wants done, in this order: persist, send, report; then ``advance``.

    1. Persist ``log`` (append) and, if set, ``checkpoint`` (the last of ``checkpoints``: it
       replaces the stored one; logged messages at or below its sequence number may then be
       dropped), durably.
    2. Send each ``(destination, message)`` of ``messages`` (replica ids or client ids).
    3. ``executed`` lists the batches applied to the application since the last Ready.
    """

    log: list[Signed] = field(default_factory=list)
    checkpoints: list[StableCheckpoint] = field(default_factory=list)
    """Checkpoints that became stable, in order (a state transfer may add one before executing on)."""
    messages: list[tuple[int, Signed]] = field(default_factory=list)
    executed: list[Executed] = field(default_factory=list)

    @property
    def checkpoint(self) -> StableCheckpoint | None:
        return self.checkpoints[-1] if self.checkpoints else None

    def is_empty(self) -> bool:
        return not (self.log or self.checkpoints or self.messages or self.executed)


@dataclass(slots=True)
class Stored:
    """What a replica hands back after a restart: its stable checkpoint and its log since."""

    checkpoint: StableCheckpoint = field(default_factory=StableCheckpoint)
    log: list[Signed] = field(default_factory=list)


Votes = dict[tuple[int, bytes], dict[int, Signed]]
"""A slot's prepares or commits: by (view, digest), the first signed vote from each replica."""


@dataclass(slots=True)
class Slot:
    pre_prepare: Signed | None = None
    """The pre-prepare accepted in the current view."""
    prepares: Votes = field(default_factory=dict)
    commits: Votes = field(default_factory=dict)
    prepared: PreparedProof | None = None
    """The highest-view prepared certificate (kept across views: view changes carry it)."""
    committed: tuple[Signed, tuple[Signed, ...]] | None = None
    """A commit certificate (pre-prepare, 2f + 1 commits) once committed-local."""


def log_seq(message: Signed) -> int | None:
    """The sequence number a logged message belongs to (None: view-change traffic)."""
    body = message.body
    if isinstance(body, PreparedProof):
        body = body.pre_prepare.body
    return body.seq if isinstance(body, PrePrepare | Prepare | Commit | Checkpoint) else None


def state_digest(state: bytes) -> bytes:
    return hashlib.sha256(state).digest()


class Replica:
    def __init__(self, config: BftConfig, signer: Signer, verifier: Verifier, app: Application,
                 stored: Stored | None = None) -> None:
        self.config = config
        self.id = config.replica_id
        self.n = config.replicas
        self.f = config.faulty
        self._signer = signer
        self.verifier = CachingVerifier(verifier)
        self.app = app
        self.view = 0
        self.status = NORMAL
        self.slots: dict[int, Slot] = {}
        self.executed = 0
        self.stable = StableCheckpoint()
        self.client_table: dict[int, tuple[int, bytes]] = {}
        self.pending: dict[tuple[int, int], Signed] = {}
        """Requests received and not executed (the view-change timer runs while there are any)."""
        self.assigned: set[tuple[int, int]] = set()
        self.next_seq = 1
        self.checkpoints: dict[int, dict[int, Signed]] = {}
        self.own_states: dict[int, bytes] = {}
        self.view_changes: dict[int, dict[int, Signed]] = {}
        self.new_view: Signed | None = None
        self.timer = 0
        self.view_change_attempts = 0
        self.resend_elapsed = 0
        self.status_elapsed = 0
        self.seen_seq = 0
        """The highest sequence number an authentic message mentioned (a hint that we are behind)."""
        self.rejected = 0
        self.signed = 0
        self._recovering = False
        self._just_started = True
        """A (re)started replica says where it is once: the others may have moved on while it was down."""
        self._ready = Ready()
        self._restore(stored or Stored())

    # -- quorums (overridden by planted bugs only) ------------------------------------------------------

    def quorum(self) -> int:
        """``ceil((n + f + 1) / 2)``: 2f + 1 when n = 3f + 1; with 5 or 6 replicas (f = 1) two quorums
        of 2f + 1 would meet only in one replica, maybe the faulty one, so they need 4."""
        return (self.n + self.f + 2) // 2

    def primary(self, view: int) -> int:
        return view % self.n + 1

    @property
    def is_primary(self) -> bool:
        return self.primary(self.view) == self.id

    # -- the runtime interface -------------------------------------------------------------------------

    def tick(self) -> None:
        cfg = self.config
        self.resend_elapsed += 1
        self.status_elapsed += 1
        # A view change's own timer starts only once 2f + 1 replicas asked for the view (2.3.5):
        # a replica that timed out alone waits for the others instead of running away. One that
        # asked for a higher view has left this one too, so it counts: a peer moves on and resends
        # only its newest VIEW-CHANGE, so an older one lost in a partition never comes back, and
        # counting exact views alone left replicas waiting for a quorum that could not form
        # (vopr seed 6482: the faulty primary of view 1 silent to two correct replicas).
        if self.status == VIEW_CHANGE:
            waiting = self._asked_for_view_or_higher() >= self.quorum()
        else:
            waiting = bool(self.pending)
        self.timer = self.timer + 1 if waiting else 0
        if self.timer >= cfg.view_change_ticks << min(self.view_change_attempts, cfg.max_backoff_doublings):
            self._start_view_change(self.view + 1)
        if self.resend_elapsed >= cfg.resend_ticks:
            self.resend_elapsed = 0
            self._resend()
        stuck = self.status == VIEW_CHANGE or bool(self.pending) or self.seen_seq > self.executed
        if self.status_elapsed >= cfg.status_ticks and (stuck or self._just_started):
            self.status_elapsed = 0
            self._just_started = False
            self._broadcast(Status(self.view, self.executed, self.id), log=False)

    def _asked_for_view_or_higher(self) -> int:
        """How many replicas (this one included) sent a valid VIEW-CHANGE for the current view or a later one."""
        return len({r for view, votes in self.view_changes.items() if view >= self.view for r in votes})

    def _saw(self, seq: int) -> None:
        if isinstance(seq, int):
            self.seen_seq = max(self.seen_seq, seq)

    def step(self, message: Signed) -> None:
        """Any message from the network (a replica's, or a client's request)."""
        if not self._authentic(message):
            self.rejected += 1
            return
        handler = _HANDLERS.get(type(message.body))
        if handler is None or not handler(self, message):
            self.rejected += 1

    def has_ready(self) -> bool:
        return not self._ready.is_empty()

    def ready(self) -> Ready:
        ready, self._ready = self._ready, Ready()
        return ready

    def advance(self, ready: Ready) -> None:
        """Nothing to acknowledge today (the Ready is handed over whole); kept for the runtime contract."""

    # -- checks every message passes --------------------------------------------------------------------

    def _authentic(self, message: Signed) -> bool:
        body = message.body
        claimed = body.client if isinstance(body, Request) else getattr(body, "replica", None)
        if isinstance(body, PrePrepare | NewView):
            claimed = self.primary(body.view)
        if claimed is not None and claimed != message.sender:
            return False
        return self._verified(message)

    def _verified(self, message: Signed) -> bool:
        return self.verifier.verify(message.sender, message.body_bytes(), message.signature)

    def _valid_request(self, message: object) -> bool:
        return (isinstance(message, Signed) and isinstance(message.body, Request)
                and not 1 <= message.sender <= self.n and self._authentic(message))

    def _in_window(self, seq: int) -> bool:
        return self.stable.seq < seq <= self.stable.seq + self.config.log_window

    # -- sending ------------------------------------------------------------------------------------------

    def _sign(self, body: object) -> Signed:
        self.signed += 1
        return Signed.of(body, self.id, self._signer.sign)

    def _log(self, message: Signed) -> None:
        if not self._recovering:
            self._ready.log.append(message)

    def _send(self, dst: int, message: Signed) -> None:
        if not self._recovering:
            self._ready.messages.append((dst, message))

    def _multicast(self, message: Signed) -> None:
        for dst in range(1, self.n + 1):
            if dst != self.id:
                self._send(dst, message)

    def _broadcast(self, body: object, *, log: bool = True) -> Signed:
        message = self._sign(body)
        if log:
            self._log(message)
        self._multicast(message)
        return message

    def _slot(self, seq: int) -> Slot:
        slot = self.slots.get(seq)
        if slot is None:
            slot = self.slots[seq] = Slot()
        return slot

    # -- requests and the normal case ---------------------------------------------------------------

    def submit(self, request: Signed) -> None:
        """A client request handed over locally (same rules as one from the network)."""
        self.step(request)

    def _on_request(self, message: Signed) -> bool:
        if not self._valid_request(message):
            return False
        request: Request = message.body
        last = self.client_table.get(request.client)
        if last is not None and last[0] >= request.timestamp:
            if last[0] == request.timestamp:
                self._send(request.client, self._sign(Reply(self.view, last[0], request.client, self.id, last[1])))
            return True
        key = (request.client, request.timestamp)
        self.pending.setdefault(key, message)
        self._propose()
        return True

    def _propose(self) -> None:
        if not self.is_primary or self.status != NORMAL:
            return
        while self.next_seq <= self.stable.seq + self.config.log_window:
            batch = tuple(m for k, m in self.pending.items() if k not in self.assigned)[:self.config.max_batch]
            if not batch:
                return
            seq, self.next_seq = self.next_seq, self.next_seq + 1
            message = self._sign(PrePrepare(self.view, seq, batch_digest(batch), batch))
            self._accept_pre_prepare(message)
            self._multicast(message)

    def _on_pre_prepare(self, message: Signed) -> bool:
        pp: PrePrepare = message.body
        self._saw(pp.seq)
        if pp.view != self.view or self.status != NORMAL or not self._in_window(pp.seq):
            return True  # another view's, or outside the window: not invalid, just not now
        if not self._well_formed(pp):
            return False
        current = self._slot(pp.seq).pre_prepare
        if current is not None:
            return bool(current.body.digest == pp.digest)  # a different one is the primary equivocating
        self._accept_pre_prepare(message)
        return True

    def _well_formed(self, pp: PrePrepare) -> bool:
        return (isinstance(pp.batch, tuple) and all(self._valid_request(r) for r in pp.batch)
                and batch_digest(pp.batch) == pp.digest)

    def _accept_pre_prepare(self, message: Signed) -> None:
        pp: PrePrepare = message.body
        slot = self._slot(pp.seq)
        slot.pre_prepare = message
        self.next_seq = max(self.next_seq, pp.seq + 1)
        self._log(message)
        for request in pp.batch:
            key = (request.body.client, request.body.timestamp)
            self.assigned.add(key)
            last = self.client_table.get(key[0])
            if last is None or last[0] < key[1]:
                self.pending.setdefault(key, request)
        if not self.is_primary:
            prepare = self._broadcast(Prepare(pp.view, pp.seq, pp.digest, self.id))
            slot.prepares.setdefault((pp.view, pp.digest), {})[self.id] = prepare
        self._check_prepared(pp.seq)

    def _on_prepare(self, message: Signed) -> bool:
        p: Prepare = message.body
        if p.replica == self.primary(p.view):
            return False
        if self._kept_vote(p, message, lambda slot: slot.prepares):
            self._check_prepared(p.seq)
        return True

    def _check_prepared(self, seq: int) -> None:
        slot = self.slots.get(seq)
        if slot is None or slot.pre_prepare is None or self.status != NORMAL:
            return
        pp: PrePrepare = slot.pre_prepare.body
        if pp.view != self.view or (slot.prepared is not None and slot.prepared.pre_prepare.body.view == pp.view):
            return
        votes = slot.prepares.get((pp.view, pp.digest), {})
        if len(votes) < self.quorum() - 1:
            return
        proof = PreparedProof(slot.pre_prepare, tuple(votes[r] for r in sorted(votes)[:self.quorum() - 1]))
        slot.prepared = proof
        self._log(Signed(proof, self.id, b""))  # for the log only (replayed after a restart), never sent
        commit = self._broadcast(Commit(pp.view, seq, pp.digest, self.id))
        slot.commits.setdefault((pp.view, pp.digest), {})[self.id] = commit
        self._check_committed(seq)

    def _on_commit(self, message: Signed) -> bool:
        c: Commit = message.body
        if self._kept_vote(c, message, lambda slot: slot.commits):
            self._check_committed(c.seq)
        return True

    def _kept_vote(self, vote: Prepare | Commit, message: Signed, votes_of: Callable[[Slot], Votes]) -> bool:
        """Keep a prepare or commit if it is for the current view and within the log window (the
        first from each replica counts); whether it was kept. Any vote moves the highest sequence
        number seen."""
        self._saw(vote.seq)
        if vote.view != self.view or not self._in_window(vote.seq):
            return False
        votes_of(self._slot(vote.seq)).setdefault((vote.view, vote.digest), {}).setdefault(vote.replica, message)
        return True

    def _check_committed(self, seq: int) -> None:
        slot = self.slots.get(seq)
        if slot is None or slot.committed is not None or slot.prepared is None:
            return
        pp: PrePrepare = slot.prepared.pre_prepare.body
        if pp.view != self.view:
            return
        votes = slot.commits.get((pp.view, pp.digest), {})
        if len(votes) >= self.quorum():
            slot.committed = (slot.prepared.pre_prepare, tuple(votes[r] for r in sorted(votes)[:self.quorum()]))
            self._execute_committed()

    # -- execution, replies, checkpoints -----------------------------------------------------------------

    def _execute_committed(self) -> None:
        while (slot := self.slots.get(self.executed + 1)) is not None and slot.committed is not None:
            self._execute(slot.committed[0].body)

    def _execute(self, pp: PrePrepare) -> None:
        self.executed = pp.seq
        self.timer = self.status_elapsed = 0
        self.view_change_attempts = 0
        requests = []
        for message in pp.batch:
            request: Request = message.body
            key = (request.client, request.timestamp)
            self.pending.pop(key, None)
            self.assigned.discard(key)
            last = self.client_table.get(request.client)
            if last is not None and last[0] >= request.timestamp:
                continue  # executed already (a client retried, or two batches carried it)
            result = self.app.execute(request.operation)
            self.client_table[request.client] = (request.timestamp, result)
            requests.append(request)
            reply = self._sign(Reply(pp.view, request.timestamp, request.client, self.id, result))
            self._send(request.client, reply)
        if not self._recovering:
            self._ready.executed.append(Executed(pp.seq, pp.view, pp.digest, tuple(requests)))
        if pp.seq % self.config.checkpoint_interval == 0:
            state = encode_snapshot(self.app.snapshot(), self.client_table)
            self.own_states[pp.seq] = state
            checkpoint = self._broadcast(Checkpoint(pp.seq, state_digest(state), self.id))
            self._add_checkpoint(checkpoint)

    def _on_checkpoint(self, message: Signed) -> bool:
        self._saw(message.body.seq)
        self._add_checkpoint(message)
        return True

    def _add_checkpoint(self, message: Signed) -> None:
        cp: Checkpoint = message.body
        if cp.seq <= self.stable.seq:
            return
        votes = self.checkpoints.setdefault(cp.seq, {})
        votes.setdefault(cp.replica, message)
        matching = [m for m in votes.values() if m.body.state_digest == cp.state_digest]
        if len(matching) >= self.quorum():
            self._adopt_stable(cp.seq, cp.state_digest, tuple(matching[:self.quorum()]))

    def _adopt_stable(self, seq: int, digest: bytes, proof: tuple[Signed, ...]) -> None:
        """Checkpoint ``seq`` is proven stable (``proof``, already verified): make it ours, or fetch its state."""
        if seq <= self.stable.seq:
            return
        state = self.own_states.get(seq)
        if state is not None and state_digest(state) == digest:
            self._make_stable(StableCheckpoint(seq, state, proof))
        elif seq > self.executed:
            self._broadcast(Status(self.view, self.executed, self.id), log=False)  # behind: ask for state

    def _make_stable(self, checkpoint: StableCheckpoint) -> None:
        self.stable = checkpoint
        for table in (self.slots, self.checkpoints, self.own_states):
            for seq in [s for s in table if s <= checkpoint.seq]:
                del table[seq]
        self.next_seq = max(self.next_seq, checkpoint.seq + 1)
        if not self._recovering:
            self._ready.checkpoints.append(checkpoint)
        self._propose()

    def _valid_checkpoint_proof(self, seq: int, proof: tuple[Signed, ...]) -> bytes | None:
        """The state digest ``proof`` certifies at ``seq`` (``NULL_DIGEST`` for genesis), or None."""
        if seq == 0 and not proof:
            return NULL_DIGEST
        if not (isinstance(proof, tuple) and all(isinstance(m, Signed) and isinstance(m.body, Checkpoint)
                                                 and m.body.seq == seq for m in proof)):
            return None
        digests = {m.body.state_digest for m in proof}
        if len(digests) != 1 or len({m.sender for m in proof}) < self.quorum():
            return None
        return digests.pop() if all(self._authentic(m) for m in proof) else None

    # -- view changes -------------------------------------------------------------------------------

    def _start_view_change(self, view: int) -> None:
        if view <= self.view and self.status == VIEW_CHANGE:
            return
        self.view_change_attempts += 1 if self.status == VIEW_CHANGE else 0
        self.view, self.status, self.timer = view, VIEW_CHANGE, 0
        self.new_view = None
        prepared = tuple(slot.prepared for seq, slot in sorted(self.slots.items())
                         if slot.prepared is not None and seq > self.stable.seq)
        message = self._broadcast(ViewChange(view, self.stable.seq, self.stable.proof, prepared, self.id))
        self.view_changes.setdefault(view, {})[self.id] = message
        self._maybe_send_new_view()

    def _on_view_change(self, message: Signed) -> bool:
        vc: ViewChange = message.body
        if vc.new_view < self.view or vc.replica in self.view_changes.get(vc.new_view, {}):
            return True
        if not self._valid_view_change(vc):
            return False
        self.view_changes.setdefault(vc.new_view, {})[vc.replica] = message
        self._maybe_join()
        self._maybe_send_new_view()
        return True

    def _valid_view_change(self, vc: ViewChange) -> bool:
        if self._valid_checkpoint_proof(vc.stable_seq, vc.checkpoint_proof) is None:
            return False
        return isinstance(vc.prepared, tuple) and all(
            isinstance(p, PreparedProof) and self._valid_prepared(p, vc.new_view, vc.stable_seq) for p in vc.prepared)

    def _valid_prepared(self, proof: PreparedProof, new_view: int, stable_seq: int) -> bool:
        message = proof.pre_prepare
        if not isinstance(message, Signed) or not isinstance(message.body, PrePrepare):
            return False
        pp: PrePrepare = message.body
        if not (pp.view < new_view and stable_seq < pp.seq <= stable_seq + self.config.log_window):
            return False
        if not self._authentic(message) or not self._well_formed(pp):
            return False
        voters = {m.sender for m in proof.prepares if isinstance(m, Signed) and isinstance(m.body, Prepare)
                  and (m.body.view, m.body.seq, m.body.digest) == (pp.view, pp.seq, pp.digest)
                  and m.sender != self.primary(pp.view) and self._authentic(m)}
        return len(voters) >= self.quorum() - 1

    def _maybe_join(self) -> None:
        """Join the smallest higher view that f + 1 replicas asked for (section 2.3.5, liveness)."""
        floor = self.view
        latest: dict[int, int] = {}
        for view, votes in self.view_changes.items():
            if view > floor:
                for replica in votes:
                    if replica != self.id:
                        latest[replica] = max(latest.get(replica, 0), view)
        if len(latest) >= self.f + 1:
            target = sorted(latest.values())[-(self.f + 1)]
            self._start_view_change(max(target, floor + 1))

    def _new_view_pre_prepares(self, view: int, view_changes: Iterable[Signed]) -> tuple[int, list[PrePrepare]]:
        """The highest stable checkpoint among ``view_changes``, and the pre-prepares of ``view`` they imply."""
        bodies: list[ViewChange] = [m.body for m in view_changes]
        low = max(vc.stable_seq for vc in bodies)
        best: dict[int, PrePrepare] = {}
        for vc in bodies:
            for proof in vc.prepared:
                pp: PrePrepare = proof.pre_prepare.body
                if pp.seq > low and (pp.seq not in best or pp.view > best[pp.seq].view):
                    best[pp.seq] = pp
        high = max(best, default=low)
        chosen = []
        for seq in range(low + 1, high + 1):
            old = best.get(seq)
            digest, batch = (old.digest, old.batch) if old else (NULL_DIGEST, ())
            chosen.append(PrePrepare(view, seq, digest, batch))
        return low, chosen

    def _maybe_send_new_view(self) -> None:
        if self.status != VIEW_CHANGE or self.primary(self.view) != self.id:
            return
        votes = self.view_changes.get(self.view, {})
        if len(votes) < self.quorum():
            return
        chosen = tuple(votes[r] for r in sorted(votes)[:self.quorum()])
        _, bodies = self._new_view_pre_prepares(self.view, chosen)
        message = self._broadcast(NewView(self.view, chosen, tuple(self._sign(b) for b in bodies)))
        self._install(message)

    def _on_new_view(self, message: Signed) -> bool:
        nv: NewView = message.body
        if nv.view < self.view or (nv.view == self.view and self.status == NORMAL):
            return True
        if not self._valid_new_view(nv):
            return False
        self._log(message)
        self._install(message)
        return True

    def _valid_new_view(self, nv: NewView) -> bool:
        voters = set()
        for m in nv.view_changes:
            if not (isinstance(m, Signed) and isinstance(m.body, ViewChange) and m.body.new_view == nv.view
                    and self._authentic(m) and self._valid_view_change(m.body)):
                return False
            voters.add(m.sender)
        if len(voters) < self.quorum():
            return False
        _, expected = self._new_view_pre_prepares(nv.view, nv.view_changes)
        return (len(expected) == len(nv.pre_prepares)
                and all(isinstance(m, Signed) and m.body == body and self._authentic(m)
                        for m, body in zip(nv.pre_prepares, expected, strict=True)))

    def _install(self, message: Signed) -> None:
        nv: NewView = message.body
        self.view, self.status, self.timer, self.new_view = nv.view, NORMAL, 0, message
        for view in [v for v in self.view_changes if v < nv.view]:
            del self.view_changes[view]
        for slot in self.slots.values():
            slot.pre_prepare = None
        self.assigned.clear()
        low, _ = self._new_view_pre_prepares(nv.view, nv.view_changes)
        self.next_seq = max(low, self.stable.seq, *(m.body.seq for m in nv.pre_prepares)) + 1
        for pp in nv.pre_prepares:
            if pp.body.seq > self.stable.seq:
                self._accept_pre_prepare(pp)
        # Section 4.4 of the paper: a replica whose stable checkpoint is below the NEW-VIEW's min-s
        # takes min-s's proof (carried by a VIEW-CHANGE in it) as its own. Without that, a replica that
        # executed past a checkpoint but never saw 2f + 1 CHECKPOINTs for it (lost, a liar silent to it,
        # a peer that got there by state transfer and never signed one) keeps its old watermarks and
        # drops the new primary's pre-prepares as out of window, view after view (vopr seed 5405).
        if low > self.stable.seq:
            proof = next(m.body.checkpoint_proof for m in nv.view_changes if m.body.stable_seq == low)
            self._adopt_stable(low, proof[0].body.state_digest, proof)
        self._propose()

    # -- retransmission and state transfer -----------------------------------------------------------

    def _resend(self) -> None:
        if self.status == VIEW_CHANGE:
            own = self.view_changes.get(self.view, {}).get(self.id)
            if own is not None:
                self._multicast(own)
            return
        for seq in sorted(self.slots):
            slot = self.slots[seq]
            if seq <= self.executed and slot.committed is not None:
                continue
            if slot.pre_prepare is not None and slot.pre_prepare.sender == self.id:
                self._multicast(slot.pre_prepare)
            for votes in (slot.prepares, slot.commits):
                if slot.pre_prepare is None:
                    continue
                own = votes.get((self.view, slot.pre_prepare.body.digest), {}).get(self.id)
                if own is not None:
                    self._multicast(own)
        last = max(self.checkpoints, default=0)
        own_checkpoint = self.checkpoints.get(last, {}).get(self.id)
        if own_checkpoint is not None:
            self._multicast(own_checkpoint)

    def _on_status(self, message: Signed) -> bool:
        status: Status = message.body
        if status.view < self.view and self.status == NORMAL and self.new_view is not None:
            self._send(status.replica, self.new_view)
        if status.executed < self.executed:
            self._send_catch_up(status.replica, status.executed)
        return True

    def _send_catch_up(self, dst: int, their_executed: int) -> None:
        with_state = their_executed < self.stable.seq
        start = self.stable.seq if with_state else their_executed
        certificates = []
        for seq in range(start + 1, self.executed + 1):
            slot = self.slots.get(seq)
            if slot is None or slot.committed is None:
                break
            certificates.append(slot.committed)
        proof, state = (self.stable.proof, self.stable.state) if with_state else ((), b"")
        self._send(dst, self._sign(CatchUp(proof, state, tuple(certificates), self.id)))

    def _on_catch_up(self, message: Signed) -> bool:
        catch_up: CatchUp = message.body
        if catch_up.checkpoint_proof:
            first = catch_up.checkpoint_proof[0]
            if not (isinstance(first, Signed) and isinstance(first.body, Checkpoint)):
                return False
            seq = first.body.seq
            digest = self._valid_checkpoint_proof(seq, catch_up.checkpoint_proof)
            if digest is None or digest != state_digest(catch_up.state):
                return False
            if seq > self.executed:
                self._restore_state(StableCheckpoint(seq, catch_up.state, catch_up.checkpoint_proof))
        for certificate in catch_up.committed:
            if not self._valid_commit_certificate(certificate):
                return False
            pp: PrePrepare = certificate[0].body
            if pp.seq == self.executed + 1:
                self._slot(pp.seq).committed = certificate
                self._execute(pp)
        self._execute_committed()
        return True

    def _valid_commit_certificate(self, certificate: object) -> bool:
        if not (isinstance(certificate, tuple) and len(certificate) == 2 and isinstance(certificate[0], Signed)
                and isinstance(certificate[0].body, PrePrepare) and isinstance(certificate[1], tuple)):
            return False
        message, commits = certificate
        pp: PrePrepare = message.body
        if not (self._authentic(message) and self._well_formed(pp)):
            return False
        voters = {m.sender for m in commits if isinstance(m, Signed) and isinstance(m.body, Commit)
                  and (m.body.view, m.body.seq, m.body.digest) == (pp.view, pp.seq, pp.digest) and self._authentic(m)}
        return len(voters) >= self.quorum()

    def _restore_state(self, checkpoint: StableCheckpoint) -> None:
        app_state, self.client_table = decode_snapshot(checkpoint.state)
        self.app.restore(app_state)
        self.executed = checkpoint.seq
        for key in [k for k in self.pending if self.client_table.get(k[0], (-1,))[0] >= k[1]]:
            del self.pending[key]
        self._make_stable(checkpoint)

    def _restore(self, stored: Stored) -> None:
        """Start from the stored checkpoint and replay the log: the same messages, the same state."""
        self._recovering = True
        if stored.checkpoint.seq:
            self._restore_state(stored.checkpoint)
        view = max((m.body.view for m in stored.log if isinstance(m.body, NewView)), default=0)
        for message in stored.log:
            body = message.body
            if isinstance(body, ViewChange) and body.new_view >= max(self.view, view):
                self.view, self.status = body.new_view, VIEW_CHANGE
                self.view_changes.setdefault(body.new_view, {})[self.id] = message
            elif isinstance(body, PreparedProof):
                if body.pre_prepare.body.seq <= self.stable.seq:
                    continue
                slot = self._slot(body.pre_prepare.body.seq)
                if slot.prepared is None or slot.prepared.pre_prepare.body.view <= body.pre_prepare.body.view:
                    slot.prepared = body
            else:
                self.step(message)
        self._recovering = False


_HANDLERS = {
    Request: Replica._on_request,
    PrePrepare: Replica._on_pre_prepare,
    Prepare: Replica._on_prepare,
    Commit: Replica._on_commit,
    Checkpoint: Replica._on_checkpoint,
    ViewChange: Replica._on_view_change,
    NewView: Replica._on_new_view,
    Status: Replica._on_status,
    CatchUp: Replica._on_catch_up,
}

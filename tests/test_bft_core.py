"""The PBFT core (novacron.bft): the classic scenarios of Castro and Liskov 2002, on the sim driver.

Each test names the section of the paper it checks. The cluster runs on a LAN profile without
faults unless a test injects one, so every test is deterministic.
"""

from __future__ import annotations

from dataclasses import replace
from random import Random

import pytest

from novacron.bft.app import KeyValueApp
from novacron.bft.checker import BftSafetyChecker, BftSafetyViolation
from novacron.bft.client import BftClient
from novacron.bft.crypto import CachingVerifier, Ed25519Keyring, SimulatedKeyring, make_keyring
from novacron.bft.messages import (
    CatchUp,
    Checkpoint,
    Prepare,
    PrePrepare,
    Request,
    Signed,
    ViewChange,
    batch_digest,
    canonical,
    from_wire,
    to_wire,
)
from novacron.bft.replica import NORMAL, BftConfig, Executed, Replica, StableCheckpoint, log_seq, state_digest
from novacron.bft.snapshot import decode_snapshot, encode_snapshot
from sim.bft.byzantine import Liar
from sim.bft.cluster import SIM_REPLICA, BftCluster, BftSettings, Hook, Member
from sim.network import PROFILES, NetworkModel

CLIENT = 100


class Harness(Hook):
    """A cluster with one client and the safety checker on every correct replica."""

    def __init__(self, replicas: int = 4, *, seed: int = 1, replica_class: type[Replica] = Replica,
                 checkpoint_interval: int = 4) -> None:
        self.keyring = SimulatedKeyring(seed, [*range(1, replicas + 1), CLIENT])
        self.checker = BftSafetyChecker()
        settings = BftSettings(bft=replace(SIM_REPLICA, replicas=replicas, checkpoint_interval=checkpoint_interval,
                                           log_window=4 * checkpoint_interval))
        self.cluster = BftCluster(settings, NetworkModel(PROFILES["lan"], Random(seed)), Random(seed),
                                  self.keyring, hooks=[self], replica_class=replica_class)
        f = (replicas - 1) // 3
        self.client = BftClient(CLIENT, self.keyring.signer(CLIENT), self.keyring, f, replicas)
        self.results: list[bytes] = []
        self.cluster.client_inbox = self._inbox

    def executed(self, cluster: BftCluster, member: Member, executed: Executed) -> None:
        if not member.byzantine:
            self.checker.executed(member.replica_id, executed)

    def checkpointed(self, cluster: BftCluster, member: Member, checkpoint: StableCheckpoint) -> None:
        self.checker.checkpointed(member.replica_id, checkpoint, state_digest(checkpoint.state))

    def restarted(self, cluster: BftCluster, member: Member) -> None:
        self.checker.restarted(member.replica_id, member.storage.checkpoint.seq)

    def _inbox(self, client_id: int, message: Signed) -> None:
        result = self.client.on_reply(message)
        if result is not None:
            self.results.append(result)

    def request(self, operation: bytes, *, timeout_s: float = 10.0) -> bytes | None:
        """Send ``operation`` (resending every second) and run until f + 1 replicas agree on a result."""
        request = self.client.request(operation)
        self.checker.issued_request(CLIENT, request.body.timestamp, operation)
        done = len(self.results)
        deadline_s = self.cluster.now_s + timeout_s
        while self.cluster.now_s < deadline_s:
            self.cluster.send_request(CLIENT, request)
            if self.cluster.run_until(self.cluster.now_s + 1.0, stop=lambda: len(self.results) > done):
                return self.results[-1]
        return None

    def replica(self, replica_id: int) -> Replica:
        replica = self.cluster.members[replica_id].replica
        assert replica is not None
        return replica


def test_normal_case_commits_executes_in_order_and_the_client_accepts_f_plus_1_replies() -> None:
    """Section 2.3.3: pre-prepare, prepare, commit; every replica executes the same sequence."""
    h = Harness()
    assert h.request(b"put a 1") == b"ok"
    assert h.request(b"get a") == b"1"
    h.cluster.run_until(h.cluster.now_s + 0.5)
    assert {h.replica(i).executed for i in range(1, 5)} == {2}
    assert all(h.cluster.apps[i].values == {b"a": b"1"} for i in range(1, 5))


@pytest.mark.parametrize("replicas", [4, 5, 6, 7])
def test_every_cluster_size_commits_with_f_replicas_crashed(replicas: int) -> None:
    """n - f replicas are a quorum for n = 4..7 (q = ceil((n + f + 1) / 2))."""
    h = Harness(replicas)
    f = (replicas - 1) // 3
    for replica_id in range(replicas - f + 1, replicas + 1):
        h.cluster.crash(replica_id)
    assert h.request(b"put k v") == b"ok"


def test_primary_crash_leads_to_a_view_change_and_requests_still_commit() -> None:
    """Section 2.3.5: backups time out on a pending request, move to view 1, whose primary is 2."""
    h = Harness()
    assert h.request(b"put a 1") == b"ok"
    h.cluster.crash(1)
    assert h.request(b"put a 2") == b"ok"
    assert h.replica(2).view == 1 and h.replica(2).status == NORMAL and h.replica(2).is_primary
    h.cluster.restart(1)
    assert h.request(b"put a 3") == b"ok"
    h.cluster.run_until(h.cluster.now_s + 2.0)
    assert h.replica(1).view == 1 and h.replica(1).executed == h.replica(2).executed


def test_an_equivocating_primary_cannot_make_correct_replicas_disagree() -> None:
    """Section 2.3.3: at most one digest prepares at (v, n); the liar is replaced by a view change."""
    h = Harness()
    liar = Liar(frozenset({"equivocate", "conflicting-votes", "forge"}), Random(3), h.keyring.signer(1),
                silent_to=frozenset(), lie_share=1.0, view_change_delay_s=0.0)
    h.cluster.members[1].behaviour = liar
    for i in range(6):
        assert h.request(b"put a %d" % i) == b"ok"
    assert liar.lies > 0 and liar.forged > 0
    assert all(h.replica(i).rejected > 0 for i in (2, 3, 4)), "forged votes must be rejected"
    assert min(h.replica(i).view for i in (2, 3, 4)) >= 1


def test_a_forged_or_replayed_message_changes_nothing() -> None:
    """Section 2.1: a message verifies only under its sender's key; a replay of an old one is stale."""
    h = Harness()
    assert h.request(b"put a 1") == b"ok"
    replica = h.replica(2)
    before = (replica.view, replica.executed, replica.rejected)
    prepare = Prepare(0, 5, b"x" * 32, 3)
    forged = [Signed(prepare, 3, b""), Signed(prepare, 3, h.keyring.signer(4).sign(canonical(prepare))),
              Signed(prepare, 4, h.keyring.signer(4).sign(canonical(prepare))),  # body says replica 3
              Signed(ViewChange(9, 0, (), (), 3), 3, b"\x00" * 32)]
    for message in forged:
        replica.step(message)
    assert replica.rejected == before[2] + len(forged)
    assert (replica.view, replica.executed) == before[:2]
    assert not replica.slots.get(5)


def test_checkpoints_become_stable_and_the_log_is_garbage_collected() -> None:
    """Section 2.3.4: after 2f + 1 matching checkpoints the log up to them is dropped."""
    h = Harness(checkpoint_interval=2)
    for i in range(9):
        assert h.request(b"put a %d" % i) == b"ok"
    h.cluster.run_until(h.cluster.now_s + 0.5)
    for i in range(1, 5):
        replica = h.replica(i)
        assert replica.stable.seq == 8
        assert all(seq > 8 for seq in replica.slots)
        assert all(seq > 8 for seq in replica.checkpoints)
        stored = h.cluster.members[i].storage.log
        assert stored and all((seq := log_seq(m)) is not None and seq > 8 for m in stored), \
            "the stored log must shrink with the checkpoint (prepared certificates too)"


def test_a_replica_restarted_from_its_log_catches_up_by_state_transfer() -> None:
    """A replica down while the others checkpointed and collected garbage gets the state, with its proof."""
    h = Harness(checkpoint_interval=2)
    h.cluster.crash(4)
    for i in range(7):
        assert h.request(b"put k%d %d" % (i, i)) == b"ok"
    h.cluster.restart(4)
    h.cluster.run_until(h.cluster.now_s + 2.0)
    assert h.replica(4).executed == h.replica(1).executed == 7
    assert h.cluster.apps[4].values == h.cluster.apps[1].values


def test_a_restarted_replica_replays_its_log_and_does_not_contradict_itself() -> None:
    """Durability: what a replica signed before a crash is what it says after (no amnesia equivocation)."""
    h = Harness()
    assert h.request(b"put a 1") == b"ok"
    before = {seq: slot.prepared.pre_prepare.body.digest for seq, slot in h.replica(3).slots.items()
              if slot.prepared is not None}
    h.cluster.crash(3)
    h.cluster.restart(3)
    after = {seq: slot.prepared.pre_prepare.body.digest for seq, slot in h.replica(3).slots.items()
             if slot.prepared is not None}
    assert before and after == before


def test_f_plus_1_view_changes_pull_a_replica_into_the_higher_view() -> None:
    """Section 2.3.5 (liveness): a replica joins the smallest view f + 1 others asked for, not fewer."""
    h = Harness()
    replica = h.replica(4)
    for sender, view in ((2, 3), (3, 2)):
        body = ViewChange(view, 0, (), (), sender)
        replica.step(Signed.of(body, sender, h.keyring.signer(sender).sign))
        if sender == 2:
            assert replica.view == 0, "one replica alone must not move anybody"
    assert replica.view == 2


def test_the_client_needs_f_plus_1_matching_signed_replies() -> None:
    from novacron.bft.messages import Reply

    keyring = SimulatedKeyring(1, [1, 2, 3, 4, CLIENT])
    client = BftClient(CLIENT, keyring.signer(CLIENT), keyring, 1, 4)
    client.request(b"get a")

    def reply(replica: int, result: bytes, signer: int | None = None) -> Signed:
        return Signed.of(Reply(0, 1, CLIENT, replica, result), replica, keyring.signer(signer or replica).sign)

    assert client.on_reply(reply(1, b"lie")) is None
    assert client.on_reply(reply(2, b"v", signer=1)) is None  # forged: not counted
    assert client.on_reply(reply(3, b"v")) is None
    assert client.rejected == 1
    assert client.on_reply(reply(4, b"v")) == b"v"


def test_wire_round_trip_and_malformed_messages_are_rejected() -> None:
    keyring = SimulatedKeyring(1, [1, CLIENT])
    request = Signed.of(Request(CLIENT, 1, b"put a 1"), CLIENT, keyring.signer(CLIENT).sign)
    pp = PrePrepare(0, 1, batch_digest((request,)), (request,))
    message = Signed.of(pp, 1, keyring.signer(1).sign)
    assert from_wire(to_wire(message)) == message
    with pytest.raises(ValueError):
        from_wire(["S", [3, "zero", 1, b"d", 2], 2, b"sig"])  # a Prepare whose view is a string
    with pytest.raises(ValueError):
        from_wire(["S", [99], 2, b"sig"])


def test_canonical_encoding_is_injective_across_types() -> None:
    assert len({canonical(v) for v in (1, "1", b"1", (1,), True, None, (b"1",))}) == 7
    state = encode_snapshot(b"app", {101: (3, b"ok"), 100: (1, b"")})
    assert decode_snapshot(state) == (b"app", {100: (1, b""), 101: (3, b"ok")})


def test_ed25519_signatures_verify_and_reject_tampering() -> None:
    keyring = Ed25519Keyring(7, [1, 2])
    signature = keyring.signer(1).sign(b"hello")
    assert len(signature) == 64 and keyring.verify(1, b"hello", signature)
    assert not keyring.verify(2, b"hello", signature)
    assert not keyring.verify(1, b"hellO", signature)
    assert not keyring.verify(1, b"hello", b"")
    verifier = CachingVerifier(keyring)
    assert verifier.verify(1, b"hello", signature) and verifier.verify(1, b"hello", signature)
    assert (verifier.verified, verifier.cache_hits) == (1, 1)
    with pytest.raises(ValueError, match="allowed: simulated, ed25519"):
        make_keyring("rsa", 1, [1])


def test_a_real_ed25519_cluster_commits() -> None:
    h = Harness()
    keyring = Ed25519Keyring(1, [1, 2, 3, 4, CLIENT])
    h.keyring = keyring
    h.cluster = BftCluster(h.cluster.settings, NetworkModel(PROFILES["lan"], Random(1)), Random(1), keyring,
                           hooks=[h])
    h.cluster.client_inbox = h._inbox
    h.client = BftClient(CLIENT, keyring.signer(CLIENT), keyring, 1, 4)
    assert h.request(b"put a 1") == b"ok"


@pytest.mark.parametrize("bad", [dict(replica_id=1, replicas=3), dict(replica_id=5, replicas=4),
                                 dict(replica_id=1, replicas=8),
                                 dict(replica_id=1, checkpoint_interval=8, log_window=8)])
def test_bad_configurations_are_refused_with_the_allowed_range(bad: dict[str, int]) -> None:
    with pytest.raises(ValueError, match=r"allowed|need"):
        BftConfig(**bad)


def test_the_checker_catches_disagreement_invalid_requests_and_gaps() -> None:
    checker = BftSafetyChecker()
    checker.issued_request(CLIENT, 1, b"put a 1")
    ok = Executed(1, 0, b"d1", (Request(CLIENT, 1, b"put a 1"),))
    checker.executed(1, ok)
    with pytest.raises(BftSafetyViolation, match="Agreement"):
        checker.executed(2, Executed(1, 0, b"d2", ()))
    with pytest.raises(BftSafetyViolation, match="Validity"):
        checker.executed(3, Executed(1, 0, b"d1", (Request(CLIENT, 2, b"put a 2"),)))
    with pytest.raises(BftSafetyViolation, match="Order"):
        checker.executed(1, Executed(3, 0, b"d3", ()))
    checker.checkpointed(1, StableCheckpoint(4, b"s"), b"s1")
    with pytest.raises(BftSafetyViolation, match="Agreement"):
        checker.checkpointed(2, StableCheckpoint(4, b"t"), b"s2")


@pytest.mark.parametrize("replicas", [4, 5, 6, 7])
def test_quorums_intersect_in_a_correct_replica_and_the_correct_ones_form_one(replicas: int) -> None:
    """Regression (bft-vopr seed 28, 5 replicas): 2f + 1 = 3 of 5 let two quorums share only the
    faulty primary, and two correct replicas executed different batches at one sequence number."""
    keyring = SimulatedKeyring(1, range(1, replicas + 1))
    replica = Replica(BftConfig(1, replicas), keyring.signer(1), keyring, KeyValueApp())
    q, f = replica.quorum(), replica.f
    assert 2 * q - replicas >= f + 1, "two quorums must share at least one correct replica"
    assert replicas - f >= q, "the correct replicas alone must make a quorum"
    from sim.bft.vopr import run_seed

    if replicas == 5:
        assert run_seed(28).ok


class _CheckpointsLost(Replica):
    """A correct replica whose incoming CHECKPOINTs and state transfers (the messages that carry
    checkpoint proofs) the network loses while ``losing`` is set."""

    losing = False

    def step(self, message: Signed) -> None:
        if not (self.losing and isinstance(message.body, Checkpoint | CatchUp)):
            super().step(message)


def test_a_replica_that_missed_the_checkpoint_votes_takes_the_new_views_stable_checkpoint() -> None:
    """Section 4.4: a backup whose stable checkpoint is below the NEW-VIEW's min-s adopts min-s's proof.

    Replica 3 is down, so 1, 2 and 4 are the only quorum. Replica 4 executes up to seq 8 but every
    CHECKPOINT (and state transfer) sent to it is lost, so its watermarks stay at (0, 8] while 1 and 2 make 8 stable and
    garbage-collect it (nobody resends it). Seq 9 is then out of 4's window: without adopting the
    proof carried by the view change it drops every new primary's pre-prepare, view after view, and
    the request never commits (vopr seed 5405, with a liar silent to the laggards, on 5 replicas).
    """
    h = Harness(checkpoint_interval=2, replica_class=_CheckpointsLost)
    h.cluster.crash(3)
    laggard = h.replica(4)
    laggard.losing = True
    for i in range(8):
        assert h.request(b"put a %d" % i) == b"ok"
    h.cluster.run_until(h.cluster.now_s + 0.5)
    assert (h.replica(1).stable.seq, laggard.stable.seq, laggard.executed) == (8, 0, 8)
    laggard.losing = False
    assert h.request(b"put a 8") == b"ok", "the laggard's stale watermarks must not stall the quorum"
    assert laggard.view >= 1 and laggard.stable.seq >= 8 and laggard.executed == 9


def test_a_view_change_for_a_later_view_counts_toward_starting_the_view_change_timer() -> None:
    """Section 2.3.5 (liveness): the view-change timer runs once 2f + 1 replicas left the view.

    Scripted from vopr seed 6482 (4 replicas, wan80, replica 2 Byzantine and silent to 3 and 4).
    Replicas 3 and 4 asked for view 1, whose primary is the silent replica 2. Replica 1's
    VIEW-CHANGE(1) to them was lost in a partition; 1 heard 2's, timed out on view 1 and now resends
    only VIEW-CHANGE(2). So replica 3 holds view-changes {1: [3, 4], 2: [1]}: never 2f + 1 for view 1
    (the timer never started), never f + 1 others for view 2 (2's is silent). A replica that asked
    for view 2 has left view 1, so it must count: 3 times out into view 2, where it is the primary.
    """
    keyring = SimulatedKeyring(1, [1, 2, 3, 4])
    config = BftSettings().config(3)
    replica = Replica(config, keyring.signer(3), keyring, KeyValueApp())

    def view_change(view: int, sender: int) -> Signed:
        return Signed.of(ViewChange(view, 0, (), (), sender), sender, keyring.signer(sender).sign)

    replica.step(view_change(1, 4))
    replica.step(view_change(2, 1))
    assert (replica.view, replica.status) == (1, "view-change"), "f + 1 others asked for views above 0"
    for _ in range(config.view_change_ticks << config.max_backoff_doublings):
        replica.tick()
    assert replica.view == 2, "replicas 1, 3 and 4 left view 1: the timer must run and expire"
    replica.step(view_change(2, 4))
    assert (replica.view, replica.status, replica.is_primary) == (2, NORMAL, True)

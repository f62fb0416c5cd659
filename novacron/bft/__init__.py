"""Byzantine fault tolerance for NovaCron's critical operations: an I/O-free PBFT core.

Modules
-------
- ``messages``: the wire types (``Request``, ``PrePrepare``, ``Prepare``, ``Commit``, ``Reply``,
  ``Checkpoint``, ``ViewChange``, ``NewView``, ``Status``, ``CatchUp``), each sent as
  ``Signed(body, sender, signature)``; ``canonical`` is what gets signed; ``to_wire``/``from_wire``.
- ``crypto``: Ed25519 keys (``cryptography``) and the simulator's keyed-hash stand-in.
- ``replica``: ``Replica``, the protocol (Castro and Liskov's PBFT: normal case, checkpoints and
  log garbage collection, view changes, retransmission and state transfer).
- ``client``: ``BftClient``, which accepts a result once ``f + 1`` replicas agree.
- ``snapshot``: the checkpointed state (application snapshot + client table) as bytes.
- ``checker``: agreement and validity, the invariants the Byzantine vopr checks.
- ``app``: the key-value service the simulations and the real-process tests replicate.
- ``scenario`` / ``events`` / ``metrics``: ``[control] critical_ops = "bft"``, the
  ``CriticalOpCommitted`` event and the ``control.critical_op_*`` metrics.

Runtimes: ``sim.bft`` (the simulated cluster, Byzantine behaviours, ``novacron bft-vopr``, the
critical-operations control plane) and ``backends.bft`` (replica processes over TCP).

Writing a runtime
-----------------
Per replica (ids ``1..n``, ``n = 3f + 1``, 4 to 7; clients have ids above ``n``)::

    replica = Replica(BftConfig(replica_id=i, replicas=n), keyring.signer(i), keyring, app, stored)
    every tick (10 ms):              replica.tick()
    on a message from the network:   replica.step(from_wire(msgpack.unpackb(payload)))
    after any of the above, while replica.has_ready():
        ready = replica.ready()
        # 1. durably append ready.log; if ready.checkpoint: store it and drop logged messages
        #    whose log_seq(m) <= ready.checkpoint.seq; fsync
        # 2. send each (dst, message) in ready.messages (dst > n: a client); drop on error --
        #    the replica resends by itself
        # 3. report ready.executed
        replica.advance(ready)

Signatures are checked inside ``step``; a runtime never needs to trust the network.
"""

from novacron.bft.client import BftClient
from novacron.bft.crypto import Ed25519Keyring, SimulatedKeyring, make_keyring
from novacron.bft.messages import Signed, from_wire, to_wire
from novacron.bft.replica import NORMAL, VIEW_CHANGE, BftConfig, Executed, Ready, Replica, Stored, log_seq

__all__ = ["NORMAL", "VIEW_CHANGE", "BftClient", "BftConfig", "Ed25519Keyring", "Executed", "Ready", "Replica",
           "Signed", "SimulatedKeyring", "Stored", "from_wire", "log_seq", "make_keyring", "to_wire"]

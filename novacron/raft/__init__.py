"""Raft for the NovaCron managers: an I/O-free consensus core in the style of etcd-io/raft.

Modules
-------
- ``messages``: wire and storage types (``Message``, ``Entry``, ``HardState``, ``Snapshot``,
  ``Ready``, ``ReadState``, ``ConfChange``) -- plain dataclasses of ints, bytes and strs.
- ``log``: the replicated log with its commit/apply/stable watermarks.
- ``progress``: the leader's per-follower replication state.
- ``node``: ``RaftNode``, the protocol (elections, PreVote, CheckQuorum, replication,
  membership changes, leadership transfer, snapshots, ReadIndex).
- ``storage``: ``MemoryStorage``, the reference ``LogStore``.
- ``events`` / ``observer`` / ``metrics``: what runtimes report (one observer turns each node's
  Readies into events in every runtime; cluster-wide facts are a fold over them), and the
  catalogue metrics computed from it.
- The replicated state machines (and their JSON command codec) live in ``novacron.statemachine``.
- ``invariants`` / ``linearizability``: the checkers the vopr and the tests run.

Writing a runtime (the TCP managers)
------------------------------------
A runtime owns the clock, the sockets, the disk and the state machine. Per manager::

    stored = load_from_sqlite()   # or Stored.bootstrap((1, 2, 3)) for a new cluster
    state_machine.restore(stored.snapshot.data)
    node = RaftNode(RaftConfig(node_id=1), random.Random(seed), stored)

    every tick_ms (10 ms by default):   node.tick()
    on a message from the network:      node.step(from_wire(msgpack.unpackb(payload)))
    on a client command (leader only):  node.propose(data) -> (index, term) or None
    on a linearizable read:             node.read_index(context) -> a ReadState later
    after any of the above, while node.has_ready():
        ready = node.ready()
        # 1. durably store, in ONE transaction, then fsync:
        #    ready.snapshot (if set: replace the stored snapshot, drop entries it covers,
        #                    and state_machine.restore(ready.snapshot.data)),
        #    ready.entries (delete stored entries with index >= ready.entries[0].index, insert),
        #    ready.hard_state (if set: one row of term, vote, commit)
        # 2. send ready.messages: msgpack.packb(to_wire(m)) to manager m.dst (drop on error:
        #    Raft retries by itself; never block the loop on a slow peer)
        # 3. apply ready.committed_entries in order; answer clients whose (index, term) matches
        # 4. answer each ReadState once state_machine has applied read_state.index
        # 5. report: for each o in observer.observe(ready, now_s): sink.emit(o.cls, **o.fields)
        #    (observer = RaftObserver(node_id, term=stored.hard_state.term, now_s=...), one per boot)
        # 6. node.advance(ready)
    to compact: snapshot = node.compact(applied_index, state_machine.snapshot()); store it.

Do not call ``tick``/``step``/``propose`` between ``ready()`` and ``advance()``. Everything in
``Ready`` is safe to serialise: ``Message`` fields are ints, bool, bytes, a tuple of ``Entry``
(index, term, kind, data) and an optional ``Snapshot`` (index, term, voters, data, learners).
``to_wire``/``from_wire`` convert to and from a msgpack-ready dict. Timing: with the default
``RaftConfig`` (heartbeat 5 ticks, election timeout drawn from 15-30 ticks) a 10 ms tick gives
the 50 ms heartbeats and 150-300 ms election timeouts of the NovaCron targets.
"""

from novacron.raft import messages
from novacron.raft.messages import *  # noqa: F403 -- the wire and storage types, as messages.__all__ lists them
from novacron.raft.node import CANDIDATE, FOLLOWER, LEADER, PRE_CANDIDATE, RaftConfig, RaftNode, Stored
from novacron.raft.storage import MemoryStorage

__all__ = ["CANDIDATE", "FOLLOWER", "LEADER", "PRE_CANDIDATE", "MemoryStorage", "RaftConfig", "RaftNode", "Stored"]
__all__ += messages.__all__

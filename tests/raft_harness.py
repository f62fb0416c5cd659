"""A synchronous in-memory network of Raft nodes for scenario tests (after etcd's ``network``).

Messages are queued and delivered one by one, in order, unless a filter drops them; every
node's ``Ready`` is processed (persisted into its ``MemoryStorage``, applied) right after each
input, and a ``SafetyChecker`` checks every node after every step.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from random import Random

from novacron.raft.invariants import SafetyChecker
from novacron.raft.messages import ConfChange, Entry, HardState, Message, ReadState, Snapshot
from novacron.raft.node import LEADER, RaftConfig, RaftNode, Stored
from novacron.raft.storage import MemoryStorage

Filter = Callable[[Message], bool]


def entries_of_terms(terms: list[int], start: int = 1) -> list[Entry]:
    return [Entry(index=start + i, term=t, data=f"cmd{start + i}@{t}".encode()) for i, t in enumerate(terms)]


class Net:
    def __init__(self, voters: tuple[int, ...], *, node_class: type[RaftNode] = RaftNode, seed: int = 0,
                 logs: dict[int, list[int]] | None = None, terms: dict[int, int] | None = None,
                 **config: object) -> None:
        self.voters = voters
        self.node_class = node_class
        self.config = config
        self.rng = Random(seed)
        self.storage: dict[int, MemoryStorage] = {}
        self.nodes: dict[int, RaftNode] = {}
        self.queue: deque[Message] = deque()
        self.filters: list[Filter] = []
        self.mutators: list[Callable[[Message], Message]] = []
        self.checker = SafetyChecker()
        self.applied: dict[int, list[Entry]] = {}
        self.read_states: dict[int, list[ReadState]] = {}
        self.delivered: list[Message] = []
        for node_id in voters:
            log_terms = (logs or {}).get(node_id, [])
            term = (terms or {}).get(node_id, max(log_terms, default=0))
            stored = Stored(HardState(term=term), Snapshot(0, 0, voters), entries_of_terms(log_terms))
            self.storage[node_id] = MemoryStorage(stored)
            self.boot(node_id)

    def add_node(self, node_id: int, stored: Stored) -> RaftNode:
        """A server that is not (yet) in the others' configuration, booted from ``stored``."""
        self.storage[node_id] = MemoryStorage(stored)
        return self.boot(node_id)

    def boot(self, node_id: int) -> RaftNode:
        cfg = RaftConfig(node_id=node_id, **self.config)  # type: ignore[arg-type]
        node = self.node_class(cfg, Random(self.rng.getrandbits(32)), self.storage[node_id].stored())
        self.nodes[node_id] = node
        self.applied.setdefault(node_id, [])
        self.read_states.setdefault(node_id, [])
        self.checker.forget_node(node_id)
        self._ready(node)
        return node

    def crash(self, node_id: int) -> None:
        del self.nodes[node_id]
        self.queue = deque(m for m in self.queue if m.dst != node_id)

    def _ready(self, node: RaftNode) -> None:
        while node.has_ready():
            ready = node.ready()
            self.storage[node.id].save(ready)
            self.queue.extend(ready.messages)
            for entry in ready.committed_entries:
                self.checker.check_applied(node.id, entry)
                self.applied[node.id].append(entry)
            self.read_states[node.id].extend(ready.read_states)
            node.advance(ready)
        self.checker.check(node)

    # -- inputs ------------------------------------------------------------------------------

    def tick(self, node_id: int, times: int = 1) -> None:
        for _ in range(times):
            self.nodes[node_id].tick()
            self._ready(self.nodes[node_id])

    def campaign(self, node_id: int) -> None:
        self.nodes[node_id].campaign()
        self._ready(self.nodes[node_id])
        self.deliver_all()

    def propose(self, node_id: int, data: bytes) -> tuple[int, int] | None:
        result = self.nodes[node_id].propose(data)
        self._ready(self.nodes[node_id])
        self.deliver_all()
        return result

    def propose_conf_change(self, node_id: int, change: ConfChange) -> tuple[int, int] | None:
        result = self.nodes[node_id].propose_conf_change(change)
        self._ready(self.nodes[node_id])
        self.deliver_all()
        return result

    def read_index(self, node_id: int, context: bytes) -> bool:
        accepted = self.nodes[node_id].read_index(context)
        self._ready(self.nodes[node_id])
        self.deliver_all()
        return accepted

    def leader(self) -> RaftNode | None:
        """The leader of the highest term among the live nodes, if any."""
        leaders = [n for n in self.nodes.values() if n.role == LEADER]
        return max(leaders, key=lambda n: n.term, default=None)

    def step(self, m: Message) -> None:
        node = self.nodes.get(m.dst)
        if node is None or any(f(m) for f in self.filters):
            return
        for mutate in self.mutators:
            m = mutate(m)
        self.delivered.append(m)
        node.step(m)
        self._ready(node)

    def deliver_all(self, limit: int = 100_000) -> None:
        for _ in range(limit):
            if not self.queue:
                return
            self.step(self.queue.popleft())
        raise AssertionError("messages kept flowing; livelock?")

    # -- network faults --------------------------------------------------------------------------

    def isolate(self, node_id: int) -> None:
        self.filters.append(lambda m: node_id in (m.src, m.dst))

    def cut(self, a: int, b: int) -> None:
        self.filters.append(lambda m: {m.src, m.dst} == {a, b})

    def heal(self) -> None:
        self.filters.clear()
        self.mutators.clear()

    def log_terms(self, node_id: int) -> list[int]:
        log = self.nodes[node_id].log
        return [log.term(i) or 0 for i in range(log.first_index(), log.last_index() + 1)]

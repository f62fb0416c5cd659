"""The interpreter behind the golden Raft interaction scripts (``tests/testdata/raft/*.txt``).

A script is a sequence of blocks; each block is optional ``#`` comment lines, one command line,
a ``----`` line and the output the command must print, ended by a blank line. The commands
drive ``RaftNode`` objects by hand, in the spirit of etcd-io/raft's ``testdata`` (written from
scratch here): nothing moves unless a command moves it. Messages a node sends stay in its
``Ready`` until ``process-ready``; then they wait in the receiver's mailbox until
``deliver-msgs`` (or ``stabilize``, which repeats both until nothing is left). Cuts drop a
message when it would be delivered. A ``SafetyChecker`` checks every node after every input.

Commands (ids are node ids; ``[...]`` optional)::

    add-nodes N [voters=(1,2,3)] [learners=(4,5)] [index=I] [log=(1,1,2)] [term=T] [prevote=B] [checkquorum=B]
              [commitbroadcast=B] [election=MIN[..MAX]] [heartbeat=H]
    campaign ID | tick ID [N] | tick-heartbeat ID | tick-election ID
    propose ID DATA | propose-conf-change ID add|remove|add-learner NODE | read-index ID CONTEXT
    transfer-leadership FROM TO | compact ID INDEX
    process-ready [IDS] | deliver-msgs [IDS] | drop-msgs [IDS] | stabilize [IDS]
    cut A B | cut-oneway FROM TO | isolate ID | heal | crash ID | restart ID
    raft-state | raft-log ID | status ID | state-machine

Defaults keep the output short and the timing obvious: heartbeat 1 tick, election timeout
exactly 10 ticks (``election=10..20`` draws it from a ``random.Random(node_id)``), PreVote and
CheckQuorum off, commit broadcast on (as ``RaftConfig``). After every command that changes a
node's role, term, vote or leader, a ``state`` line shows the new values.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from random import Random

from novacron.raft import (
    ConfChange,
    Entry,
    EntryKind,
    HardState,
    MemoryStorage,
    Message,
    MessageType,
    RaftConfig,
    RaftNode,
    Ready,
    Snapshot,
    Stored,
)
from novacron.raft.invariants import SafetyChecker

T = MessageType


class ScriptError(ValueError):
    """A malformed command in a script (names the command and what was wrong)."""


@dataclass(slots=True)
class Block:
    comments: list[str]
    command: str
    expected: list[str]
    line_no: int


def parse_script(text: str) -> list[Block]:
    blocks: list[Block] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        comments: list[str] = []
        while i < len(lines) and (lines[i].startswith("#") or not lines[i].strip()):
            if lines[i].strip():
                comments.append(lines[i])
            i += 1
        if i >= len(lines):
            if comments:
                blocks.append(Block(comments, "", [], i))
            break
        command, line_no = lines[i], i + 1
        i += 1
        if i >= len(lines) or lines[i] != "----":
            raise ScriptError(f"line {line_no}: command {command!r} must be followed by a '----' line")
        i += 1
        expected = []
        while i < len(lines) and lines[i].strip():
            expected.append(lines[i])
            i += 1
        blocks.append(Block(comments, command, expected, line_no))
    return blocks


def render_script(blocks: list[Block]) -> str:
    out: list[str] = []
    for block in blocks:
        out.extend(block.comments)
        if block.command:
            out.extend([block.command, "----", *block.expected])
        out.append("")
    return "\n".join(out).rstrip("\n") + "\n"


# -- formatting --------------------------------------------------------------------------------


def fmt_entry(e: Entry) -> str:
    if e.kind == EntryKind.CONF_CHANGE:
        change = ConfChange.decode(e.data)
        return (f"{e.index}/{e.term} conf {change.action} {change.node_id} -> {fmt_ids(change.voters)}"
                + fmt_learners(change.learners))
    return f"{e.index}/{e.term} {e.data.decode()!r}"


def fmt_ids(ids: tuple[int, ...] | list[int]) -> str:
    return "(" + ",".join(map(str, ids)) + ")"


def fmt_learners(ids: tuple[int, ...]) -> str:
    """`` learners=(4,5)``, or nothing for a configuration without learners."""
    return f" learners={fmt_ids(ids)}" if ids else ""


def fmt_msg(m: Message) -> str:
    head = f"{m.src}->{m.dst} {T(m.type).name} term={m.term}"
    if m.type in (T.VOTE, T.PRE_VOTE):
        return head + f" last={m.index}/{m.log_term}" + (f" ctx={m.context.decode()}" if m.context else "")
    if m.type in (T.VOTE_RESP, T.PRE_VOTE_RESP):
        return head + (" rejected" if m.reject else " granted")
    if m.type == T.APPEND:
        ents = " [" + ", ".join(fmt_entry(e) for e in m.entries) + "]" if m.entries else ""
        return head + f" prev={m.index}/{m.log_term} commit={m.commit}" + ents
    if m.type == T.APPEND_RESP:
        if m.reject:
            return head + f" rejected index={m.index} hint={m.reject_hint}/{m.log_term}"
        return head + f" index={m.index}"
    if m.type == T.HEARTBEAT:
        return head + f" commit={m.commit}" + (f" ctx={m.context.decode()}" if m.context else "")
    if m.type == T.HEARTBEAT_RESP:
        return head + (f" ctx={m.context.decode()}" if m.context else "")
    if m.type == T.SNAPSHOT and m.snapshot is not None:
        s = m.snapshot
        return head + f" snapshot={s.index}/{s.term} voters={fmt_ids(s.voters)}" + fmt_learners(s.learners)
    return head


# -- the environment -----------------------------------------------------------------------------


@dataclass(slots=True)
class Member:
    """One node with its disk and its state machine (the applied payloads, by index)."""

    node: RaftNode | None
    storage: MemoryStorage
    config: RaftConfig
    applied: list[tuple[int, str]] = field(default_factory=list)


class Interaction:
    def __init__(self) -> None:
        self.members: dict[int, Member] = {}
        self.mailbox: dict[int, list[Message]] = {}
        self.cuts: set[tuple[int, int]] = set()
        self.checker = SafetyChecker()
        self.out: list[str] = []

    # -- dispatch ------------------------------------------------------------------------------

    def run(self, command: str) -> list[str]:
        self.out = []
        words = shlex.split(command)
        if not words:
            raise ScriptError("empty command")
        handler = getattr(self, "cmd_" + words[0].replace("-", "_"), None)
        if handler is None:
            raise ScriptError(f"unknown command {words[0]!r}")
        before = self._states()
        handler(*words[1:])
        self._print_state_changes(before)
        return self.out or ["ok"]

    def _states(self) -> dict[int, tuple[str, int, int, int]]:
        return {i: (n.role, n.term, n.vote, n.leader) for i, m in self.members.items() if (n := m.node) is not None}

    def _print_state_changes(self, before: dict[int, tuple[str, int, int, int]]) -> None:
        for node_id, now in sorted(self._states().items()):
            if node_id in before and before[node_id] != now:
                role, term, vote, leader = now
                self.out.append(f"state {node_id}: {role} term={term} vote={vote} lead={leader}")

    def node(self, word: str) -> RaftNode:
        node_id = int(word)
        member = self.members.get(node_id)
        if member is None or member.node is None:
            raise ScriptError(f"node {node_id} does not exist or is down")
        return member.node

    def ids(self, words: tuple[str, ...]) -> list[int]:
        return [int(w) for w in words] if words else sorted(self.members)

    def _after_input(self, node: RaftNode) -> None:
        self.checker.check(node)

    # -- building nodes --------------------------------------------------------------------------

    def cmd_add_nodes(self, count: str, *options: str) -> None:
        opts = dict(o.split("=", 1) for o in options)
        voters = tuple(int(v) for v in opts.get("voters", "()").strip("()").split(",") if v)
        learners = tuple(int(v) for v in opts.get("learners", "()").strip("()").split(",") if v)
        index = int(opts.get("index", "0"))
        log_terms = [int(t) for t in opts.get("log", "()").strip("()").split(",") if t]
        low, _, high = opts.get("election", "10").partition("..")
        first = max(self.members, default=0) + 1
        for node_id in range(first, first + int(count)):
            config = RaftConfig(node_id=node_id, election_ticks_min=int(low), election_ticks_max=int(high or low),
                                heartbeat_ticks=int(opts.get("heartbeat", "1")),
                                pre_vote=opts.get("prevote", "false") == "true",
                                check_quorum=opts.get("checkquorum", "false") == "true",
                                commit_broadcast=opts.get("commitbroadcast", "true") == "true")
            entries = [Entry(index + 1 + k, t, data=f"e{index + 1 + k}".encode()) for k, t in enumerate(log_terms)]
            term = int(opts.get("term", str(max(log_terms, default=1 if index else 0))))
            stored = Stored(HardState(term=term), Snapshot(index, 1 if index else 0, voters, learners=learners),
                            entries)
            if not voters:
                stored = Stored()
            self.members[node_id] = Member(None, MemoryStorage(stored), config)
            self._boot(node_id)
            self.out.append(self._state_line(node_id))

    def _boot(self, node_id: int) -> None:
        member = self.members[node_id]
        stored = member.storage.stored()
        member.node = RaftNode(member.config, Random(node_id), stored)
        member.applied = _decode_machine(stored.snapshot.data)
        self.mailbox.setdefault(node_id, [])
        self.checker.forget_node(node_id)
        self.checker.check(member.node)

    # -- inputs ------------------------------------------------------------------------------

    def cmd_campaign(self, node_id: str) -> None:
        node = self.node(node_id)
        node.campaign()
        self._after_input(node)

    def cmd_tick(self, node_id: str, times: str = "1") -> None:
        node = self.node(node_id)
        for _ in range(int(times)):
            node.tick()
            self._after_input(node)

    def cmd_tick_heartbeat(self, node_id: str) -> None:
        self.cmd_tick(node_id, str(self.node(node_id).config.heartbeat_ticks))

    def cmd_tick_election(self, node_id: str) -> None:
        self.cmd_tick(node_id, str(self.node(node_id).config.election_ticks_max))

    def cmd_propose(self, node_id: str, data: str) -> None:
        node = self.node(node_id)
        self._print_proposal(node.propose(data.encode()))
        self._after_input(node)

    def cmd_propose_conf_change(self, node_id: str, action: str, target: str) -> None:
        node = self.node(node_id)
        self._print_proposal(node.propose_conf_change(ConfChange(action, int(target))))
        self._after_input(node)

    def _print_proposal(self, result: tuple[int, int] | None) -> None:
        self.out.append("dropped" if result is None else f"appended at {result[0]}/{result[1]}")

    def cmd_read_index(self, node_id: str, context: str) -> None:
        node = self.node(node_id)
        self.out.append("accepted" if node.read_index(context.encode()) else "rejected")
        self._after_input(node)

    def cmd_transfer_leadership(self, source: str, target: str) -> None:
        node = self.node(source)
        self.out.append("accepted" if node.transfer_leadership(int(target)) else "rejected")
        self._after_input(node)

    def cmd_compact(self, node_id: str, index: str) -> None:
        member = self.members[int(node_id)]
        node = self.node(node_id)
        upto = int(index)
        data = _encode_machine([(i, v) for i, v in member.applied if i <= upto])
        snapshot = node.compact(upto, data)
        member.storage.compact(snapshot)
        self.out.append(f"snapshot {snapshot.index}/{snapshot.term} voters={fmt_ids(snapshot.voters)}"
                        f"{fmt_learners(snapshot.learners)}; "
                        f"log now {node.log.first_index()}..{node.log.last_index()}")

    # -- the Ready cycle and the network -------------------------------------------------------------

    def cmd_process_ready(self, *node_ids: str) -> None:
        for node_id in self.ids(node_ids):
            node = self.members[node_id].node
            while node is not None and node.has_ready():
                ready = node.ready()
                self._print_ready(node_id, ready)
                self._handle_ready(node_id, ready)
                node.advance(ready)
                self.checker.check(node)

    def _print_ready(self, node_id: int, ready: Ready) -> None:
        self.out.append(f"> {node_id} handling Ready")
        if ready.soft_state is not None:
            self.out.append(f"  lead={ready.soft_state.leader} role={ready.soft_state.role}")
        if ready.hard_state is not None:
            h = ready.hard_state
            self.out.append(f"  HardState term={h.term} vote={h.vote} commit={h.commit}")
        if ready.snapshot is not None:
            s = ready.snapshot
            self.out.append(f"  Snapshot {s.index}/{s.term} voters={fmt_ids(s.voters)}{fmt_learners(s.learners)}")
        self._print_list("Entries", [fmt_entry(e) for e in ready.entries])
        self._print_list("Messages", [fmt_msg(m) for m in ready.messages])
        self._print_list("CommittedEntries", [fmt_entry(e) for e in ready.committed_entries])
        self._print_list("ReadStates", [f"index={r.index} ctx={r.context.decode()}" for r in ready.read_states])

    def _print_list(self, title: str, items: list[str]) -> None:
        if items:
            self.out.append(f"  {title}:")
            self.out.extend(f"    {item}" for item in items)

    def _handle_ready(self, node_id: int, ready: Ready) -> None:
        member = self.members[node_id]
        member.storage.save(ready)
        if ready.snapshot is not None:
            member.applied = _decode_machine(ready.snapshot.data)
        for m in ready.messages:
            self.mailbox.setdefault(m.dst, []).append(m)
        for entry in ready.committed_entries:
            self.checker.check_applied(node_id, entry)
            if entry.kind == EntryKind.NORMAL and entry.data:
                member.applied.append((entry.index, entry.data.decode()))

    def cmd_deliver_msgs(self, *node_ids: str) -> None:
        for node_id in self.ids(node_ids):
            pending, self.mailbox[node_id] = self.mailbox.get(node_id, []), []
            for m in pending:
                node = self.members[node_id].node
                if node is None or (m.src, m.dst) in self.cuts:
                    self.out.append(f"{fmt_msg(m)} DROPPED")
                    continue
                self.out.append(fmt_msg(m))
                node.step(m)
                self._after_input(node)

    def cmd_drop_msgs(self, *node_ids: str) -> None:
        for node_id in self.ids(node_ids):
            pending, self.mailbox[node_id] = self.mailbox.get(node_id, []), []
            self.out.extend(f"{fmt_msg(m)} DROPPED" for m in pending)

    def cmd_stabilize(self, *node_ids: str) -> None:
        for _ in range(1000):
            before = len(self.out)
            self.cmd_process_ready(*node_ids)
            self.cmd_deliver_msgs(*node_ids)
            if len(self.out) == before:
                return
        raise ScriptError("stabilize: still busy after 1000 rounds")

    def cmd_cut(self, a: str, b: str) -> None:
        self.cuts |= {(int(a), int(b)), (int(b), int(a))}

    def cmd_cut_oneway(self, source: str, target: str) -> None:
        self.cuts.add((int(source), int(target)))

    def cmd_isolate(self, node_id: str) -> None:
        for other in self.members:
            if other != int(node_id):
                self.cmd_cut(node_id, str(other))

    def cmd_heal(self) -> None:
        self.cuts.clear()

    def cmd_crash(self, node_id: str) -> None:
        self.node(node_id)
        self.members[int(node_id)].node = None
        self.mailbox[int(node_id)] = []
        self.out.append(f"{node_id} is down; its unsaved Ready and mailbox are lost")

    def cmd_restart(self, node_id: str) -> None:
        self._boot(int(node_id))
        self.out.append(self._state_line(int(node_id)))

    # -- inspection ------------------------------------------------------------------------------

    def _state_line(self, node_id: int) -> str:
        node = self.members[node_id].node
        if node is None:
            return f"{node_id}: down"
        log = node.log
        return (f"{node_id}: {node.role} term={node.term} vote={node.vote} lead={node.leader} "
                f"commit={log.committed} applied={log.applied} log={log.first_index()}..{log.last_index()} "
                f"voters={fmt_ids(node.voters)}{fmt_learners(node.learners)}")

    def cmd_raft_state(self) -> None:
        self.out.extend(self._state_line(node_id) for node_id in sorted(self.members))

    def cmd_raft_log(self, node_id: str) -> None:
        log = self.node(node_id).log
        if log.snapshot.index:
            self.out.append(f"snapshot {log.snapshot.index}/{log.snapshot.term}")
        self.out.extend(fmt_entry(e) for e in log.entries)
        if not self.out:
            self.out.append("(empty)")

    def cmd_status(self, node_id: str) -> None:
        node = self.node(node_id)
        for peer, pr in sorted(node.progress.items()):
            paused = " paused" if pr.is_paused() else ""
            self.out.append(f"{peer}: {pr.state} match={pr.match} next={pr.next}{paused}")

    def cmd_state_machine(self) -> None:
        for node_id, member in sorted(self.members.items()):
            values = " ".join(v for _, v in member.applied)
            self.out.append(f"{node_id}: [{values}]" if member.node is not None else f"{node_id}: down")


def _encode_machine(applied: list[tuple[int, str]]) -> bytes:
    return ";".join(f"{i}={v}" for i, v in applied).encode()


def _decode_machine(data: bytes) -> list[tuple[int, str]]:
    pairs = [item.split("=", 1) for item in data.decode().split(";") if item]
    return [(int(i), v) for i, v in pairs]


def run_script(text: str) -> list[Block]:
    """Run every block of a script; the blocks returned carry the actual outputs."""
    env = Interaction()
    actual: list[Block] = []
    for block in parse_script(text):
        output = env.run(block.command) if block.command else []
        actual.append(Block(block.comments, block.command, output, block.line_no))
    return actual


__all__ = ["Block", "Interaction", "ScriptError", "parse_script", "render_script", "run_script"]

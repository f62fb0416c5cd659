"""The durable half of a manager as an append-only log of records in preallocated segment files.

Theory of operation
-------------------
Figure 2 of the Raft paper requires ``currentTerm``, ``votedFor`` and ``log[]`` on stable storage
before a server answers; ``SegmentLogStore`` keeps them the way etcd's WAL does: every ``save``
appends ONE record -- the ``Ready``'s snapshot (if any), entries (if any) and hard state (if any) --
to the current segment with ONE ``os.pwrite`` and ONE ``os.fdatasync``. There is no index on disk:
opening the store replays the segments in order and folds the records into the in-memory state
(``MemoryStorage``'s rules: a snapshot replaces the whole log, entries replace the stored suffix
from their first index, a hard state replaces the previous one), which ``stored`` then copies.

A record is ``<u32 body length><u32 zlib.crc32(body)><body>``; a body is one flags byte and the
parts it names. Segments are preallocated with ``posix_fallocate`` (the disk's zeros end the
records), so an append changes no file size; the directory is fsynced whenever a segment is
created. A crash can tear only the last write, because each save is fsynced before the next one is
acknowledged: on open, a record in the LAST segment that runs past the end of the file, or fails
its CRC and holds a zeroed 512-byte sector (the part of a torn write that never reached the
preallocated file, the rule etcd's WAL decoder uses), ends the log there (the save it belonged to
never returned), and its remains are zeroed before anything is appended. Any other damage -- a
bad record without a zeroed sector, one followed by an intact record, or damage in an earlier
segment -- is corruption of acknowledged data, and the store refuses to open
(``SegmentLogCorrupt``) rather than drop a vote or an entry it acknowledged.

``compact`` appends a record holding the whole state (snapshot, the entries after it, hard
state), like a save: one write, one fdatasync. A record that does not fit in the current segment
goes to a NEW one, which starts with a record of the whole state before it; once that segment and
the directory are fsynced, every older segment is deleted, newest first: a crash part-way leaves
the oldest ones, which start with a whole-state record too and so replay on their own, and which
the new segment's first record then supersedes. So a compaction never waits for a new file, and
one segment is on disk, besides any a crash left behind until the next new segment.

A ``Ready`` whose only change is a higher commit index is written without the fdatasync: the
commit index is a hint (etcd-io/raft), and the next synced save of the same file makes it durable
with everything before it (a segment is synced before the store moves to the next one).

Opening fsyncs every segment and the directory first and refuses to start if that fails, for the
reason ``SQLiteLogStore`` does: after a failed fsync the page cache may hold writes the disk never
took, and replay would read them back as durable. A failed write or fsync raises; the runtime then
stops without sending or acknowledging that ``Ready``, and never retries.
"""

from __future__ import annotations

import dataclasses
import errno
import itertools
import os
import struct
import zlib
from pathlib import Path

from backends.manager.logstore import must_sync, term_or_vote_changed
from novacron.raft import Entry, HardState, MemoryStorage, Ready, Snapshot, Stored

SEGMENT_BYTES = 16 * 1024 * 1024
"""Preallocated size of a segment; a record larger than that gets a segment of its own, grown as needed."""
SEGMENT_SUFFIX = ".wal"
HEADER = struct.Struct("<II")
FLAGS = struct.Struct("<B")
HARD = struct.Struct("<qqq")
SNAP = struct.Struct("<qqII")
ENTRY = struct.Struct("<qqiI")
COUNT = struct.Struct("<I")
HAS_SNAPSHOT, HAS_ENTRIES, HAS_HARD_STATE, HAS_LEARNERS = 1, 2, 4, 8
"""``HAS_LEARNERS``: the snapshot's learners follow its data (absent in records without learners,
so a log written before learners existed reads as it did)."""
SECTOR_BYTES = 512
"""The smallest unit a disk writes atomically: a torn write leaves whole sectors unwritten."""


class SegmentLogCorrupt(RuntimeError):
    """Acknowledged records are damaged (not a torn last write): the store refuses to open."""


def encode_record(snapshot: Snapshot | None, entries: list[Entry], hard_state: HardState | None) -> bytes:
    """One record: header, flags, then the snapshot, the entries and the hard state that are present."""
    learners = snapshot.learners if snapshot is not None else ()
    flags = (HAS_SNAPSHOT if snapshot is not None else 0) | (HAS_ENTRIES if entries else 0) | (
        HAS_HARD_STATE if hard_state is not None else 0) | (HAS_LEARNERS if learners else 0)
    parts = [FLAGS.pack(flags)]
    if snapshot is not None:
        parts += [SNAP.pack(snapshot.index, snapshot.term, len(snapshot.voters), len(snapshot.data)),
                  struct.pack(f"<{len(snapshot.voters)}q", *snapshot.voters), snapshot.data]
    if learners:
        parts += [COUNT.pack(len(learners)), struct.pack(f"<{len(learners)}q", *learners)]
    if entries:
        parts.append(COUNT.pack(len(entries)))
        for e in entries:
            parts += [ENTRY.pack(e.index, e.term, int(e.kind), len(e.data)), e.data]
    if hard_state is not None:
        parts.append(HARD.pack(hard_state.term, hard_state.vote, hard_state.commit))
    body = b"".join(parts)
    return HEADER.pack(len(body), zlib.crc32(body)) + body


def decode_body(body: memoryview) -> Ready:
    """The parts of one record, as the ``Ready`` that was saved (``struct.error`` if malformed)."""
    (flags,), at = FLAGS.unpack_from(body), FLAGS.size
    snapshot, entries, hard_state = None, [], None
    if flags & HAS_SNAPSHOT:
        index, term, voter_count, data_bytes = SNAP.unpack_from(body, at)
        at += SNAP.size
        voters = struct.unpack_from(f"<{voter_count}q", body, at)
        at += 8 * voter_count
        snapshot = Snapshot(index, term, tuple(voters), bytes(body[at:at + data_bytes]))
        at += data_bytes
        if flags & HAS_LEARNERS:
            (learner_count,), at = COUNT.unpack_from(body, at), at + COUNT.size
            learners = struct.unpack_from(f"<{learner_count}q", body, at)
            at += 8 * learner_count
            snapshot = dataclasses.replace(snapshot, learners=tuple(learners))
    if flags & HAS_ENTRIES:
        (count,), at = COUNT.unpack_from(body, at), at + COUNT.size
        for _ in range(count):
            index, term, kind, data_bytes = ENTRY.unpack_from(body, at)
            at += ENTRY.size
            entries.append(Entry(index, term, kind, bytes(body[at:at + data_bytes])))
            at += data_bytes
    if flags & HAS_HARD_STATE:
        hard_state = HardState(*HARD.unpack_from(body, at))
        at += HARD.size
    if at != len(body):
        raise struct.error(f"record body of {len(body)} bytes holds {at} bytes of parts")
    return Ready(snapshot=snapshot, entries=entries, hard_state=hard_state)


def read_records(data: bytes) -> tuple[list[Ready], int]:
    """The intact records at the start of a segment's bytes and the offset where they end."""
    view, at, records = memoryview(data), 0, []
    while at + HEADER.size <= len(data):
        body_bytes, crc = HEADER.unpack_from(view, at)
        end = at + HEADER.size + body_bytes
        if body_bytes == 0 or end > len(data) or zlib.crc32(view[at + HEADER.size:end]) != crc:
            break
        try:
            records.append(decode_body(view[at + HEADER.size:end]))
        except struct.error:
            break
        at = end
    return records, at


def is_torn_tail(data: bytes, at: int) -> bool:
    """Whether the bytes of a segment from ``at`` (where its intact records end) are nothing, or
    what a torn last write leaves: a record cut off by the end of the file, or one that holds a
    zeroed sector and is followed by no intact record."""
    if at + HEADER.size > len(data) or not data[at:].strip(b"\0"):
        return True
    body_bytes, _ = HEADER.unpack_from(data, at)
    end = at + HEADER.size + body_bytes
    if body_bytes == 0 or end > len(data):
        return True
    if read_records(data[end:])[0]:
        return False
    bounds = [at, *range((at // SECTOR_BYTES + 1) * SECTOR_BYTES, end, SECTOR_BYTES), end]
    return any(not data[lo:hi].strip(b"\0") for lo, hi in itertools.pairwise(bounds))


def fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def check_appendable(memory: MemoryStorage, ready: Ready) -> None:
    """Refuse entries the fold could not place: before the snapshot, or after a hole."""
    if not ready.entries:
        return
    base = ready.snapshot.index if ready.snapshot is not None else memory.snapshot.index
    last = base if ready.snapshot is not None else memory.last_index()
    first = ready.entries[0].index
    if first <= base:
        raise ValueError(f"entries at {first} precede the snapshot at {base}")
    if first > last + 1:
        raise ValueError(f"entries at {first} would leave a hole after the last stored index {last}")


class SegmentLogStore:
    """Stable storage of one manager in ``directory``; every synced ``save`` is fsynced when it returns."""

    def __init__(self, directory: Path | str, segment_bytes: int = SEGMENT_BYTES) -> None:
        self.path = Path(directory)
        self.segment_bytes = segment_bytes
        if not self.path.is_dir():
            self.path.mkdir(parents=True)
            fsync_path(self.path.parent)
        self._segments = sorted(self.path.glob(f"*{SEGMENT_SUFFIX}"))
        for segment in [*self._segments, self.path]:
            fsync_path(segment)
        self._memory = MemoryStorage(Stored(HardState(), Snapshot(), []))
        self._empty = True
        self._fd = -1
        self._offset = 0
        self._head_bytes = 0
        """Size of the current segment's first record: a whole state larger than a segment may grow
        it to twice that before the next new segment rewrites it (so a rewrite is amortized)."""
        self._unsynced = False
        self.saves = 0
        self.synced_saves = 0
        self._replay()
        self._synced_term_vote = (self._memory.hard_state.term, self._memory.hard_state.vote)

    # -- opening -------------------------------------------------------------------------------

    def _replay(self) -> None:
        for n, segment in enumerate(self._segments):
            data = segment.read_bytes()
            records, end = read_records(data)
            is_last = n == len(self._segments) - 1
            if not is_last and data[end:].strip(b"\0"):
                raise SegmentLogCorrupt(f"{segment}: damaged record at byte {end} of an older segment "
                                        "(acknowledged data; refusing to open)")
            if is_last and not is_torn_tail(data, end):
                raise SegmentLogCorrupt(f"{segment}: damaged record at byte {end} that a torn last write "
                                        "cannot explain (acknowledged data; refusing to open)")
            for ready in records:
                self._fold(ready, segment)
            if is_last:
                self._open_tail(segment, data, end)
                head = records[0] if records else Ready()
                self._head_bytes = len(encode_record(head.snapshot, head.entries, head.hard_state)) if records else 0

    def _fold(self, ready: Ready, segment: Path) -> None:
        try:
            check_appendable(self._memory, ready)
        except ValueError as exc:
            raise SegmentLogCorrupt(f"{segment}: {exc}") from None
        self._memory.save(ready)
        self._empty = self._empty and ready.snapshot is None

    def _open_tail(self, segment: Path, data: bytes, end: int) -> None:
        """Append after the last intact record, zeroing a torn write's remains first."""
        self._fd = os.open(segment, os.O_WRONLY)
        self._offset = end
        garbage = len(data[end:].rstrip(b"\0"))
        if garbage:
            write_all(self._fd, bytes(garbage), end)
            os.fdatasync(self._fd)

    def close(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1

    def is_empty(self) -> bool:
        """A brand-new data directory: nothing was ever stored, not even the bootstrap snapshot."""
        return self._empty

    def bootstrap(self, voters: tuple[int, ...], learners: tuple[int, ...] = ()) -> Stored:
        """Store the initial configuration of a new cluster (snapshot 0) and return it."""
        stored = Stored.bootstrap(voters, learners)
        self._start_segment(encode_record(stored.snapshot, [], stored.hard_state))
        self._memory = MemoryStorage(stored)
        self._empty = False
        self._synced_term_vote = (stored.hard_state.term, stored.hard_state.vote)
        return stored

    # -- the Ready cycle ---------------------------------------------------------------------

    def changes_term_or_vote(self, ready: Ready) -> bool:
        return term_or_vote_changed(ready, self._synced_term_vote)

    def needs_sync(self, ready: Ready) -> bool:
        return must_sync(ready, self._synced_term_vote)

    def needs_checkpoint(self) -> bool:
        return False

    def checkpoint(self) -> tuple[int, int]:
        """Nothing to copy: the segments are the store (the runtime asks every store)."""
        return 0, 0

    def save(self, ready: Ready) -> None:
        if ready.snapshot is None and not ready.entries and ready.hard_state is None:
            return
        check_appendable(self._memory, ready)
        must_sync = self.needs_sync(ready)
        self._append(encode_record(ready.snapshot, ready.entries, ready.hard_state), must_sync)
        self._memory.save(ready)
        if ready.hard_state is not None and must_sync:
            self._synced_term_vote = (ready.hard_state.term, ready.hard_state.vote)
        self.saves += 1
        self.synced_saves += must_sync

    def compact(self, snapshot: Snapshot) -> None:
        """Keep a snapshot the runtime took and drop the entries it covers (one synced record)."""
        if snapshot.index <= self._memory.snapshot.index:
            return
        kept = [e for e in self._memory.entries if e.index > snapshot.index]
        self._append(encode_record(snapshot, kept, self._memory.hard_state), must_sync=True)
        self._memory.compact(snapshot)

    # -- reading back after a restart ----------------------------------------------------------

    def stored(self) -> Stored:
        return self._memory.stored()

    def last_index(self) -> int:
        return self._memory.last_index()

    # -- writing -------------------------------------------------------------------------------

    def _append(self, record: bytes, must_sync: bool) -> None:
        limit_bytes = max(self.segment_bytes, 2 * self._head_bytes)
        if self._fd < 0 or (self._offset and self._offset + len(record) > limit_bytes):
            self._rotate()
        write_all(self._fd, record, self._offset)
        self._offset += len(record)
        if must_sync:
            os.fdatasync(self._fd)
        self._unsynced = not must_sync

    def _rotate(self) -> None:
        """Continue in a new segment that starts with the whole state, and delete the older ones."""
        memory = self._memory
        older = list(self._segments)
        self._start_segment(encode_record(memory.snapshot, memory.entries, memory.hard_state))
        for segment in reversed(older):  # newest first: a crash part-way leaves a replayable prefix
            segment.unlink()
        self._segments = self._segments[len(older):]

    def _start_segment(self, first_record: bytes) -> None:
        """A new preallocated segment holding ``first_record``, durable with its directory entry."""
        if self._fd >= 0 and self._unsynced:
            os.fdatasync(self._fd)  # what the old segment holds is durable before anything after it
        number = int(self._segments[-1].stem) + 1 if self._segments else 1
        segment = self.path / f"{number:016d}{SEGMENT_SUFFIX}"
        fd = os.open(segment, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        try:
            preallocate(fd, max(self.segment_bytes, len(first_record)))
            write_all(fd, first_record, 0)
            os.fdatasync(fd)
            fsync_path(self.path)
        except BaseException:
            os.close(fd)
            raise
        self.close()
        self._fd, self._offset, self._unsynced = fd, len(first_record), False
        self._head_bytes = len(first_record)
        self._segments.append(segment)


def write_all(fd: int, data: bytes, offset: int) -> None:
    """``pwrite`` until everything is written (a short write is followed by the error, e.g. ENOSPC)."""
    view = memoryview(data)
    while view:
        written = os.pwrite(fd, view, offset)
        view, offset = view[written:], offset + written


def preallocate(fd: int, size_bytes: int) -> None:
    """Reserve the segment's blocks; a disk too full for all of them gets a file that grows by its
    writes instead (a write that finds no space then fails the save: a full disk stops the manager)."""
    try:
        os.posix_fallocate(fd, 0, size_bytes)
    except OSError as exc:
        if exc.errno not in (errno.ENOSPC, errno.EOPNOTSUPP, errno.EINVAL):
            raise

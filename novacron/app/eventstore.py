"""Parquet persistence of event logs: one wide table per run, with a schema version.

Theory of operation
-------------------
A run's events become one Arrow table: ``type``, ``t_s``, ``seq``, ``source`` and then one
column per field name used by the event types present (field names have one type across all
events, see ``events.py``). Rows of an event type leave the other types' columns null. The
table's metadata carries ``novacron.schema_version``; reading a log of another version fails with
a message saying which. Reading back uses the registry to rebuild the same typed events.

A run streams its log (``EventLogWriter``): events are buffered up to one row group, converted
and written, and the buffer emptied, so the writer never holds more than one row group of events;
the log's hash is updated with every event as it arrives. The file's columns are every field of
every registered event type (a run does not know in advance which types it will emit), in the
same order for any run; a column of a type that never occurred is all null. The hash depends on
the events only, never on the row-group size or the file's columns.

This module is the edge between the core and files; both runtimes and ``novacron.app.analysis``
use it, so a simulated and a real run are read the same way.
"""

from __future__ import annotations

import hashlib
import operator
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from novacron import __version__
from novacron.events import BASE_FIELDS, REGISTRY, SCHEMA_VERSION, Event, FieldKind

_ARROW_SCALARS: dict[type, pa.DataType] = {
    int: pa.int64(), float: pa.float64(), str: pa.string(), bool: pa.bool_(),
}
META_SCHEMA_VERSION = b"novacron.schema_version"
META_NOVACRON_VERSION = b"novacron.version"


class SchemaVersionError(ValueError):
    """The log was written with another event schema version."""


def _arrow_type(kind: FieldKind) -> pa.DataType:
    scalar = _ARROW_SCALARS[kind.scalar]
    return pa.list_(scalar) if kind.sequence else scalar


def _columns_for(events: Sequence[Event]) -> list[str]:
    names: dict[str, None] = {}
    for cls in dict.fromkeys(type(ev) for ev in events):
        for name in cls.__dataclass_fields__:
            if name not in BASE_FIELDS:
                names[name] = None
    return sorted(names)


def registry_schema() -> pa.Schema:
    """The file schema of a streamed log: every field of every registered event type."""
    import novacron.all_events  # noqa: F401 - registers every event type a log may hold

    names = {name for cls_name in REGISTRY.names() for name in REGISTRY.cls(cls_name).__dataclass_fields__
             if name not in BASE_FIELDS}
    return _schema(sorted(names))


def events_to_table(events: Sequence[Event], schema: pa.Schema | None = None) -> pa.Table:
    """One wide table, rows in log order, with the columns of ``schema`` (default: the fields of
    the types present).

    Built column-wise per event type over the columns the present types fill (a list per own
    field, the other present types' columns as Arrow nulls), then the per-type tables are
    concatenated and put back in log order with one ``take`` — several times faster than a Python
    loop over every (event, column) pair on logs of hundreds of thousands of events; the columns
    no present type fills are added as nulls at the end (not taken).
    """
    narrow = _schema(_columns_for(events))
    table = _present_table(events, narrow)
    if schema is None or schema.names == narrow.names:
        return table
    rows = table.num_rows
    arrays = [table.column(f.name) if f.name in narrow.names else pa.nulls(rows, f.type) for f in schema]
    return pa.Table.from_arrays(arrays, schema=schema)


def _present_table(events: Sequence[Event], schema: pa.Schema) -> pa.Table:
    by_type: dict[type[Event], list[int]] = {}
    for index, ev in enumerate(events):
        by_type.setdefault(type(ev), []).append(index)
    if not by_type:
        return schema.empty_table()
    parts = [_type_table(cls, [events[i] for i in indices], schema) for cls, indices in by_type.items()]
    table = pa.concat_tables(parts)
    if len(by_type) == 1:
        return table
    positions = np.concatenate([np.asarray(indices, dtype=np.int64) for indices in by_type.values()])
    return table.take(pa.array(np.argsort(positions, kind="stable")))


def _schema(extra: list[str]) -> pa.Schema:
    fields = [pa.field("type", pa.string(), nullable=False), pa.field("t_s", pa.float64(), nullable=False),
              pa.field("seq", pa.int64(), nullable=False), pa.field("source", pa.string(), nullable=False)]
    fields += [pa.field(name, _arrow_type(REGISTRY.kind(name))) for name in extra]
    return pa.schema(fields, metadata={META_SCHEMA_VERSION: str(SCHEMA_VERSION).encode(),
                                       META_NOVACRON_VERSION: __version__.encode()})


def _type_table(cls: type[Event], group: list[Event], schema: pa.Schema) -> pa.Table:
    own = cls.__dataclass_fields__
    arrays = []
    for field in schema:
        if field.name == "type":
            arrays.append(pa.array([cls.__name__] * len(group), pa.string()))
        elif field.name in own:
            getter = operator.attrgetter(field.name)
            arrays.append(pa.array([getter(ev) for ev in group], field.type))
        else:
            arrays.append(pa.nulls(len(group), field.type))
    return pa.Table.from_arrays(arrays, schema=schema)


def table_to_events(table: pa.Table) -> list[Event]:
    import novacron.all_events  # noqa: F401 - registers every event type a log may hold

    _check_version(table.schema.metadata or {})
    data = table.to_pydict()
    rows = len(table)
    events: list[Event] = []
    for i in range(rows):
        cls = REGISTRY.cls(data["type"][i])
        kwargs = {}
        for name in cls.__dataclass_fields__:
            value = data[name][i]
            if isinstance(value, list):
                value = tuple(value)
            kwargs[name] = value
        events.append(cls(**kwargs))
    return events


def _check_version(metadata: dict[bytes, bytes]) -> None:
    found = metadata.get(META_SCHEMA_VERSION)
    if found is None:
        raise SchemaVersionError("the event log carries no novacron.schema_version; was it written by NovaCron?")
    if int(found) != SCHEMA_VERSION:
        raise SchemaVersionError(
            f"the event log has schema version {int(found)}, this NovaCron reads version {SCHEMA_VERSION}"
        )


def write_events(path: str | Path, events: Sequence[Event]) -> Path:
    """Write atomically: a temporary file renamed into place, so a crash never leaves half a log."""
    path = Path(path)
    tmp = path.with_name(path.name + ".tmp")
    pq.write_table(events_to_table(events), tmp, compression="zstd")
    tmp.replace(path)
    return path


def check_log(path: str | Path) -> pa.Schema:
    """The log's schema, read from its footer alone (raises on a damaged file or another version)."""
    schema = pq.read_schema(path)
    _check_version(schema.metadata or {})
    return schema


def read_table(path: str | Path, *, columns: Sequence[str] | None = None,
               filter: pc.Expression | None = None) -> pa.Table:
    """The log, or only ``columns`` of the rows ``filter`` keeps: both pushed down to the file
    (``pyarrow.dataset``: row groups whose statistics rule them out are skipped, other columns
    never decoded)."""
    schema = check_log(path)
    if columns is None and filter is None:
        return pq.read_table(path)
    return _scanner(path, schema, columns, filter).to_table()


def scan_batches(path: str | Path, *, columns: Sequence[str], filter: pc.Expression | None = None,
                 ) -> Iterator[pa.RecordBatch]:
    """Like ``read_table``, one record batch at a time (memory of one batch)."""
    yield from _scanner(path, check_log(path), columns, filter).to_batches()


SCAN_READAHEAD_BATCHES = 2
"""Record batches decoded ahead of the consumer: pyarrow's default (16) holds 16 batches of every
selected column at once, most of them rows the filter then drops; 2 keeps the read's memory near
one batch at about the same speed on two cores."""


def _scanner(path: str | Path, schema: pa.Schema, columns: Sequence[str] | None,
             filter: pc.Expression | None) -> ds.Scanner:
    # pre_buffer off: pre-buffering reads whole column chunks of the row groups in flight ahead of
    # decoding; on a 9-million-event log it doubled a filtered read's memory (305 -> 155 MiB)
    options = ds.ParquetFragmentScanOptions(pre_buffer=False)
    dataset = ds.dataset(path, format=ds.ParquetFileFormat(default_fragment_scan_options=options), schema=schema)
    return ds.Scanner.from_dataset(dataset, columns=None if columns is None else list(columns), filter=filter,
                                   batch_readahead=SCAN_READAHEAD_BATCHES, fragment_readahead=1)


def read_events(path: str | Path) -> list[Event]:
    return table_to_events(read_table(path))


def table_to_dataframe(table: pa.Table) -> pd.DataFrame:
    df: pd.DataFrame = table.to_pandas()
    for name in ("type", "source"):
        if name in df:
            df[name] = df[name].astype("category")
    return df


def _digest_line_reference(ev: Event) -> bytes:
    """The hashed line of one event: the repr of (type name, ((field, value), ...)), newline."""
    values = tuple((name, getattr(ev, name)) for name in ev.__dataclass_fields__)
    return repr((type(ev).__name__, values)).encode() + b"\n"


class DigestLines:
    """``_digest_line_reference`` as one %-format per event class (the same characters, about
    twice as fast: the per-event cost of hashing a month-long log matters)."""

    def __init__(self) -> None:
        self._templates: dict[type[Event], tuple[str, Callable[[Event], tuple[Any, ...]]]] = {}

    def _template(self, cls: type[Event]) -> tuple[str, Callable[[Event], tuple[Any, ...]]]:
        names = tuple(cls.__dataclass_fields__)
        pairs = ", ".join(f"({name!r}, %r)" for name in names) + ("," if len(names) == 1 else "")
        getter = operator.attrgetter(*names)
        values = getter if len(names) > 1 else lambda ev: (getter(ev),)
        return f"({cls.__name__!r}, ({pairs}))\n", values  # identifiers hold no "%"

    def __call__(self, ev: Event) -> bytes:
        cls = type(ev)
        found = self._templates.get(cls)
        if found is None:
            found = self._templates[cls] = self._template(cls)
        template, values = found
        return (template % values(ev)).encode()


def event_log_sha256(events: Iterable[Event]) -> str:
    """A hash of the log's content (types, field names and values), independent of file encoding."""
    digest = hashlib.sha256()
    line = DigestLines()
    lines: list[bytes] = []
    for ev in events:
        lines.append(line(ev))
        if len(lines) >= DEFAULT_ROW_GROUP_EVENTS:
            digest.update(b"".join(lines))
            lines.clear()
    digest.update(b"".join(lines))
    return digest.hexdigest()


DEFAULT_ROW_GROUP_EVENTS = 65_536


class EventLogWriter:
    """Streams a log to Parquet one row group at a time, hashing every event as it arrives.

    ``buffered`` is never more than ``row_group_events`` (``peak_buffered`` records the most it
    held): the writer's memory is one row group, whatever the log's length. The file is written
    under a temporary name and renamed by ``close``; ``abort`` removes it.
    """

    def __init__(self, path: str | Path, row_group_events: int = DEFAULT_ROW_GROUP_EVENTS) -> None:
        if row_group_events < 1:
            raise ValueError(f"row_group_events = {row_group_events} is not allowed; it must be at least 1")
        self.path = Path(path)
        self.row_group_events = row_group_events
        self._tmp = self.path.with_name(self.path.name + ".tmp")
        self._schema = registry_schema()
        self._writer = pq.ParquetWriter(self._tmp, self._schema, compression="zstd")
        self._buffer: list[Event] = []
        self._digest = hashlib.sha256()
        self._line = DigestLines()
        self.count = 0
        self.row_groups = 0
        self.peak_buffered = 0

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def append(self, ev: Event) -> None:
        self._buffer.append(ev)
        self.count += 1
        if len(self._buffer) >= self.row_group_events:
            self._flush()

    def _flush(self) -> None:
        self.peak_buffered = max(self.peak_buffered, len(self._buffer))
        if self._buffer:
            self._digest.update(b"".join(map(self._line, self._buffer)))
            self._writer.write_table(events_to_table(self._buffer, self._schema), row_group_size=len(self._buffer))
            self.row_groups += 1
        self._buffer = []

    def sha256(self) -> str:
        """The log's hash (``event_log_sha256``), once ``close`` has written the last row group."""
        if self._buffer:
            raise RuntimeError("the log's hash is known once the writer is closed")
        return self._digest.hexdigest()

    def close(self) -> Path:
        self._flush()
        self._writer.close()
        self._tmp.replace(self.path)
        return self.path

    def abort(self) -> None:
        self._writer.close()
        self._tmp.unlink(missing_ok=True)

"""Parquet persistence of event logs: one wide table per run, with a schema version.

Theory of operation
-------------------
A run's events become one Arrow table: ``type``, ``t_s``, ``seq``, ``source`` and then one
column per field name used by the event types present (field names have one type across all
events, see ``events.py``). Rows of an event type leave the other types' columns null. The
table's metadata carries ``novacron.schema_version``; reading a log of another version fails with
a message saying which. Reading back uses the registry to rebuild the same typed events.

This module is the edge between the core and files; both runtimes and ``novacron.app.analysis``
use it, so a simulated and a real run are read the same way.
"""

from __future__ import annotations

import hashlib
import operator
from collections.abc import Iterable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
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


def events_to_table(events: Sequence[Event]) -> pa.Table:
    """One wide table, rows in log order.

    Built column-wise per event type (a list per own field, the other types' columns as Arrow
    nulls), then the per-type tables are concatenated
    and put back in log order with one ``take`` — several times faster than a Python loop over
    every (event, column) pair on logs of hundreds of thousands of events.
    """
    extra = _columns_for(events)
    schema = _schema(extra)
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


def read_table(path: str | Path) -> pa.Table:
    table = pq.read_table(path)
    _check_version(table.schema.metadata or {})
    return table


def read_events(path: str | Path) -> list[Event]:
    return table_to_events(read_table(path))


def table_to_dataframe(table: pa.Table) -> pd.DataFrame:
    df: pd.DataFrame = table.to_pandas()
    df["type"] = df["type"].astype("category")
    df["source"] = df["source"].astype("category")
    return df


def event_log_sha256(events: Iterable[Event]) -> str:
    """A hash of the log's content (types, field names and values), independent of file encoding."""
    digest = hashlib.sha256()
    for ev in events:
        values = tuple((name, getattr(ev, name)) for name in ev.__dataclass_fields__)
        digest.update(repr((type(ev).__name__, values)).encode())
        digest.update(b"\n")
    return digest.hexdigest()

"""Events: the append-only record of everything that happens in a run.

Theory of operation
-------------------
Every state change is a frozen, slotted, keyword-only dataclass named in the past tense. Each
carries ``t_s`` (run-relative seconds), ``seq`` (its position in the run's log) and ``source``
(the node, host or component that caused it). Event classes are declared with the ``@event``
decorator, which makes them dataclasses and records them in a registry keyed by class name, so a
log written to Parquet can be read back into the same typed objects.

Field types are restricted to what maps one-to-one onto an Arrow column (int, float, str, bool,
their optional forms and tuples of them), and one field name has one type across all events, so
a run's events fit in one wide table with a column per field name.

State is a fold over the log (see ``projection.py``); the log itself never changes once written.
"""

from __future__ import annotations

import collections
import dataclasses
import types
import typing
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar, dataclass_transform

SCHEMA_VERSION = 1
"""Bumped whenever an event's fields change meaning or type; stored with every Parquet log."""

SCALAR_TYPES: tuple[type, ...] = (int, float, str, bool)
BASE_FIELDS = ("t_s", "seq", "source")


@dataclass(frozen=True, slots=True, kw_only=True)
class Event:
    """Base of all events. Subclasses are declared with ``@event``."""

    t_s: float
    seq: int
    source: str

    @property
    def type_name(self) -> str:
        return type(self).__name__


E = TypeVar("E", bound=Event)


@dataclass(frozen=True, slots=True)
class FieldKind:
    """The storage kind of one event field: a scalar type, optional or not, or a tuple of one."""

    scalar: type
    optional: bool = False
    sequence: bool = False

    def describe(self) -> str:
        text = f"tuple[{self.scalar.__name__}, ...]" if self.sequence else self.scalar.__name__
        return f"{text} | None" if self.optional else text


class EventRegistry:
    """Maps event type names to classes and knows every field's storage kind."""

    def __init__(self) -> None:
        self._classes: dict[str, type[Event]] = {}
        self._field_kinds: dict[str, FieldKind] = {}

    def register(self, cls: type[Event]) -> None:
        name = cls.__name__
        existing = self._classes.get(name)
        if existing is not None and existing.__module__ != cls.__module__:
            raise TypeError(f"event name {name!r} is declared in {existing.__module__} and {cls.__module__}")
        kinds = field_kinds(cls)
        for field_name, kind in kinds.items():
            known = self._field_kinds.get(field_name)
            if known is not None and known != kind:
                raise TypeError(
                    f"{name}.{field_name} is {kind.describe()} but another event declares "
                    f"{field_name} as {known.describe()}; one field name must have one type"
                )
        self._field_kinds.update(kinds)
        self._classes[name] = cls

    def cls(self, name: str) -> type[Event]:
        try:
            return self._classes[name]
        except KeyError:
            raise KeyError(f"unknown event type {name!r}; is the module that declares it imported?") from None

    def names(self) -> list[str]:
        return sorted(self._classes)

    def kind(self, field_name: str) -> FieldKind:
        return self._field_kinds[field_name]

    def __contains__(self, name: object) -> bool:
        return name in self._classes


REGISTRY = EventRegistry()


def field_kinds(cls: type[Event]) -> dict[str, FieldKind]:
    hints = typing.get_type_hints(cls)
    return {f.name: _kind_of(cls.__name__, f.name, hints[f.name]) for f in dataclasses.fields(cls)}


def _kind_of(owner: str, name: str, hint: Any) -> FieldKind:
    optional = False
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        if len(args) != 1:
            raise TypeError(f"{owner}.{name}: only 'T | None' unions are allowed, got {hint}")
        optional, hint, origin = True, args[0], typing.get_origin(args[0])
    if origin is tuple:
        items = typing.get_args(hint)
        if len(items) == 2 and items[1] is Ellipsis and items[0] in SCALAR_TYPES:
            return FieldKind(items[0], optional, sequence=True)
        raise TypeError(f"{owner}.{name}: tuples must be tuple[T, ...] of int/float/str/bool, got {hint}")
    if hint in SCALAR_TYPES:
        return FieldKind(hint, optional)
    raise TypeError(f"{owner}.{name}: type {hint} cannot be stored; use int, float, str, bool, "
                    "an optional of one, or tuple[T, ...]")


@dataclass_transform(frozen_default=True, kw_only_default=True)
def event(cls: type[E]) -> type[E]:
    """Declare an event class: a frozen, slotted, keyword-only dataclass, registered by name.

    An event that records a pure model's result is declared *from* the result's record:
    ``class StorageReplicationAssessed(Event, ModeResult)``, the record a frozen keyword-only
    dataclass without slots (two slotted bases cannot be combined). The record owns the field
    list and its docs; the runtime emits ``**dataclasses.asdict(result)`` plus the event's own
    fields, so a field added to the model reaches the log without a second list to keep in step."""
    made = dataclass(frozen=True, slots=True, kw_only=True)(cls)
    REGISTRY.register(made)
    return made


def event_fields(ev: Event) -> dict[str, Any]:
    """The event's fields as a dict, without copying nested values (cheaper than ``asdict``)."""
    return {f.name: getattr(ev, f.name) for f in dataclasses.fields(ev)}


class EventLogError(ValueError):
    """An append that would break the log's order."""


Subscriber = typing.Callable[[E], None]


Sink = typing.Callable[[Event], None]


class InMemoryEventLog:
    """An append-only event log: sequence numbers are dense, time never goes back.

    Projections subscribe to the event types they fold (``subscribe``): the log pushes each
    appended event to the subscribers of its exact type, in subscription order, after the event
    is in the log. Nothing polls the log to catch up. Delivery follows the log's order: an event
    a subscriber records while handling another is delivered once every subscriber has had the
    one being handled, so no projection sees a VM stop before it sees it placed.

    Sinks (``add_sink``) receive every event, of every type, in log order as it is appended: a
    run writes its log to disk and folds its metrics through them. With ``retain=False`` the log
    keeps no event (memory bounded by the live state, not by the log's length); reading it back
    then raises, and the events are read from the run directory instead.
    """

    def __init__(self, events: Iterable[Event] = (), *, retain: bool = True) -> None:
        self._events: list[Event] = []
        self._retain = retain
        self._count = 0
        self._last_t_s = float("-inf")
        self._sinks: list[Sink] = []
        self._subscribers: dict[type[Event], list[Subscriber[Any]]] = {}
        self._undelivered: collections.deque[tuple[Event, list[Subscriber[Any]]]] = collections.deque()
        self._delivering = False
        for ev in events:
            self.append(ev)

    def subscribe(self, cls: type[E], handler: Subscriber[E]) -> None:
        """Push every later event of type ``cls`` (exactly; not subclasses) to ``handler``."""
        self._subscribers.setdefault(cls, []).append(handler)

    def add_sink(self, sink: Sink) -> None:
        """Hand every later event, whatever its type, to ``sink`` as it is appended."""
        self._sinks.append(sink)

    @property
    def retains(self) -> bool:
        return self._retain

    @property
    def next_seq(self) -> int:
        return self._count

    def append(self, ev: Event) -> None:
        if ev.seq != self._count:
            raise EventLogError(f"{ev.type_name} has seq {ev.seq}, the log expects {self._count}")
        if ev.t_s < self._last_t_s:
            raise EventLogError(
                f"{ev.type_name} at t_s={ev.t_s} is earlier than the last event (t_s={self._last_t_s})"
            )
        self._count += 1
        self._last_t_s = ev.t_s
        if self._retain:
            self._events.append(ev)
        for sink in self._sinks:
            sink(ev)
        handlers = self._subscribers.get(type(ev))
        if handlers is None:
            return
        if self._delivering:  # recorded by a subscriber: after the event being delivered
            self._undelivered.append((ev, handlers))
            return
        self._delivering = True
        try:
            for handler in handlers:
                handler(ev)
            while self._undelivered:
                later, later_handlers = self._undelivered.popleft()
                for handler in later_handlers:
                    handler(later)
        finally:
            self._delivering = False
            self._undelivered.clear()

    def _retained(self) -> list[Event]:
        if not self._retain:
            raise RuntimeError("this event log streams to disk and keeps no events; read them from the run "
                               "directory (novacron.app.analysis.load_run)")
        return self._events

    def __iter__(self) -> Iterator[Event]:
        return iter(self._retained())

    def __len__(self) -> int:
        return self._count

    def __getitem__(self, index: int) -> Event:
        return self._retained()[index]

    def of_type(self, cls: type[E]) -> list[E]:
        return [ev for ev in self._retained() if type(ev) is cls]


class Recorder:
    """Stamps events with the injected clock's time and the log's next sequence number."""

    def __init__(self, log: InMemoryEventLog, now_s: typing.Callable[[], float]) -> None:
        self.log = log
        self._now_s = now_s

    def emit(self, cls: type[E], *, source: str, **fields: Any) -> E:
        ev = cls(t_s=self._now_s(), seq=self.log.next_seq, source=source, **fields)
        self.log.append(ev)
        return ev

"""Validated configuration: dataclass sections read from TOML with one-line errors.

A section is a frozen dataclass whose fields carry ``spec(...)`` metadata (range, choices, doc).
``parse_section`` walks a TOML table against it: an unknown key names the nearest valid key, a
wrong type or an out-of-range value names the key, the value and what is allowed. Every problem
raises ``ConfigError`` whose message is a single line starting with the file name.
"""

from __future__ import annotations

import dataclasses
import difflib
import math
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeVar

T = TypeVar("T")


class ConfigError(ValueError):
    """A configuration problem, described in one line."""


def spec(default: Any, *, doc: str, min: float | None = None, max: float | None = None,
         choices: tuple[Any, ...] | None = None) -> Any:
    """Field metadata for a validated setting."""
    meta = {"doc": doc, "min": min, "max": max, "choices": choices}
    if isinstance(default, (list, dict, set)):
        frozen = tuple(default) if isinstance(default, list) else default
        return dataclasses.field(default_factory=lambda: frozen, metadata=meta)
    return dataclasses.field(default=default, metadata=meta)


def section(default_factory: Any) -> Any:
    """A nested section field."""
    return dataclasses.field(default_factory=default_factory)


def parse_section(cls: type[T], data: Mapping[str, Any], *, origin: str, prefix: str = "") -> T:
    if not isinstance(data, Mapping):
        raise ConfigError(f"{origin}: {prefix.rstrip('.') or 'top level'} must be a table, got {data!r}")
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    values: dict[str, Any] = {}
    for key, raw in data.items():
        path = f"{prefix}{key}"
        if key not in fields:
            raise ConfigError(_unknown_key(origin, path, key, list(fields), prefix))
        hint = hints[key]
        if dataclasses.is_dataclass(hint):
            values[key] = parse_section(hint, raw, origin=origin, prefix=f"{path}.")  # type: ignore[arg-type]
        else:
            values[key] = _check_value(origin, path, raw, hint, fields[key].metadata)
    try:
        return cls(**values)
    except ConfigError as exc:
        raise ConfigError(f"{origin}: {exc}") from None
    except (ValueError, TypeError) as exc:
        raise ConfigError(f"{origin}: {prefix.rstrip('.') or 'top level'}: {exc}") from None


def _unknown_key(origin: str, path: str, key: str, valid: list[str], prefix: str) -> str:
    near = difflib.get_close_matches(key, valid, n=1, cutoff=0.5)
    hint = f"did you mean '{prefix}{near[0]}'? " if near else ""
    where = prefix.rstrip(".") or "the top level"
    return f"{origin}: unknown key '{path}'; {hint}valid keys in {where}: {', '.join(sorted(valid))}"


def _type_name(hint: Any) -> str:
    return getattr(hint, "__name__", str(hint))


def _check_value(origin: str, path: str, raw: Any, hint: Any, meta: Mapping[str, Any]) -> Any:
    allowed = describe_allowed(hint, meta)
    value = _coerce(raw, hint)
    if value is _INVALID:
        problem = "is not allowed" if _literal_of_its_type(raw, hint) else "has the wrong type"
        raise ConfigError(f"{origin}: {path} = {raw!r} {problem}; allowed: {allowed}")
    items = value if isinstance(value, tuple) else (value,)
    for item in items:
        if isinstance(item, float) and not math.isfinite(item):
            raise ConfigError(f"{origin}: {path} = {raw!r} is not a finite number; allowed: {allowed}")
        if meta.get("choices") is not None and item not in meta["choices"]:
            raise ConfigError(f"{origin}: {path} = {raw!r} is not allowed; allowed: {allowed}")
        low, high = meta.get("min"), meta.get("max")
        if isinstance(item, (int, float)) and not isinstance(item, bool) and (
            (low is not None and item < low) or (high is not None and item > high)
        ):
            raise ConfigError(f"{origin}: {path} = {raw!r} is out of range; allowed: {allowed}")
    return value


_INVALID = object()


def _optional_of(hint: Any) -> Any | None:
    """``X`` when ``hint`` is ``X | None`` (the one shape of union a section declares), else ``None``."""
    if typing.get_origin(hint) not in (typing.Union, types.UnionType):
        return None
    (inner,) = [a for a in typing.get_args(hint) if a is not type(None)]
    return inner


def _literal_of_its_type(raw: Any, hint: Any) -> bool:
    """``hint`` is a Literal with a choice of ``raw``'s type: ``raw`` is the wrong choice, not the wrong type."""
    hint = _optional_of(hint) or hint
    return typing.get_origin(hint) is typing.Literal and any(type(a) is type(raw) for a in typing.get_args(hint))


def _coerce(raw: Any, hint: Any) -> Any:
    inner = _optional_of(hint)
    if inner is not None:
        return None if raw is None else _coerce(raw, inner)
    origin = typing.get_origin(hint)
    if origin is tuple:
        inner = typing.get_args(hint)[0]
        if not isinstance(raw, list | tuple):
            return _INVALID
        items = tuple(_coerce(x, inner) for x in raw)
        return _INVALID if any(x is _INVALID for x in items) else items
    if origin is typing.Literal:
        return raw if raw in typing.get_args(hint) else _INVALID
    if hint is float:
        return float(raw) if isinstance(raw, (int, float)) and not isinstance(raw, bool) else _INVALID
    if hint is int:
        return raw if isinstance(raw, int) and not isinstance(raw, bool) else _INVALID
    if hint in (str, bool):
        return raw if isinstance(raw, hint) else _INVALID
    return _INVALID


_NOUNS = {int: "an integer", float: "a number", str: "a string", bool: "true or false"}
_PLURAL_NOUNS = {int: "integers", float: "numbers", str: "strings", bool: "true or false values"}


def describe_allowed(hint: Any, meta: Mapping[str, Any]) -> str:
    origin = typing.get_origin(hint)
    if origin is typing.Literal:
        return "one of " + ", ".join(repr(a) for a in typing.get_args(hint))
    if meta.get("choices") is not None:
        return "one of " + ", ".join(repr(c) for c in meta["choices"])
    prefix, nouns = "", _NOUNS
    if (inner := _optional_of(hint)) is not None:
        hint, prefix = inner, "nothing or "
        origin = typing.get_origin(hint)
    if origin is tuple:
        prefix, nouns = prefix + "a list of ", _PLURAL_NOUNS  # "a list of integers", not "... of an integer"
        hint = typing.get_args(hint)[0]
        if typing.get_origin(hint) is tuple:  # a matrix: rows of numbers
            return f"{prefix}lists of {_PLURAL_NOUNS[int if typing.get_args(hint)[0] is int else float]}"
    noun = nouns.get(hint, _type_name(hint))
    low, high = meta.get("min"), meta.get("max")
    def bound(b: float) -> str:
        return str(int(b)) if hint is int else f"{b:g}"  # an integer in full: "1000000", not "1e+06"

    if low is not None and high is not None:
        return f"{prefix}{noun} from {bound(low)} to {bound(high)}"
    if low is not None:
        return f"{prefix}{noun} >= {bound(low)}"
    if high is not None:
        return f"{prefix}{noun} <= {bound(high)}"
    return prefix + noun


def describe_section(cls: type[Any], prefix: str = "") -> list[str]:
    """One line per setting: key, default, what is allowed, doc (for ``--help`` and docs)."""
    lines = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        hint = hints[f.name]
        if f.metadata.get("table"):
            lines.append(f"[{prefix}{f.name}]  {f.metadata.get('doc', '')}")
            continue
        if dataclasses.is_dataclass(hint):
            lines.extend(describe_section(hint, f"{prefix}{f.name}."))  # type: ignore[arg-type]
            continue
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()  # type: ignore[operator]
        lines.append(f"{prefix}{f.name} = {default!r}  ({describe_allowed(hint, f.metadata)}) "
                     f"{f.metadata.get('doc', '')}")
    return lines

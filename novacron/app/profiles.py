"""Calibration profile files: TOML in, ``CalibrationProfile`` out (and back).

A profile is named either by a path to a TOML file or by the name of a built-in profile shipped
in ``novacron/calibrations/`` (``lab-tcg``, the default: fitted on the lab; ``lab-md``: the
hand-set constants of LAB.md). Relative paths are resolved against ``relative_to`` (a
scenario's folder) when given. Every problem is a ``ProfileError`` (a ``ConfigError``: one
line, exit 2 from the CLI).
"""

from __future__ import annotations

import tomllib
from importlib import resources
from pathlib import Path
from typing import Any

from novacron.app.textfiles import read_utf8_text
from novacron.migration.calibration import CalibrationProfile, ProfileError, profile_from_mapping, profile_to_mapping

DEFAULT_PROFILE = "lab-tcg"


def builtin_profile_names() -> list[str]:
    return sorted(p.name.removesuffix(".toml") for p in resources.files("novacron.calibrations").iterdir()
                  if p.name.endswith(".toml"))


def resolve_profile_path(name_or_path: str, relative_to: Path | None = None) -> str:
    """A built-in name stays as it is; a relative path is made absolute against ``relative_to``."""
    if name_or_path in builtin_profile_names() or relative_to is None:
        return name_or_path
    path = Path(name_or_path)
    return str(path if path.is_absolute() else (relative_to / path).resolve())


def loads_profile(text: str, *, origin: str) -> CalibrationProfile:
    try:
        data: dict[str, Any] = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProfileError(f"{origin}: not valid TOML: {exc}") from None
    return profile_from_mapping(data, origin=origin)


def load_profile(name_or_path: str | None = None, *, relative_to: Path | None = None) -> CalibrationProfile:
    """A built-in profile by name, or a profile file (``None``: the default built-in)."""
    name_or_path = name_or_path or DEFAULT_PROFILE
    if name_or_path in builtin_profile_names():
        text = resources.files("novacron.calibrations").joinpath(f"{name_or_path}.toml").read_text()
        return loads_profile(text, origin=f"<built-in profile {name_or_path}>")
    path = Path(resolve_profile_path(name_or_path, relative_to))
    try:
        text = read_utf8_text(path, what="a calibration profile", error=ProfileError)
    except OSError as exc:
        raise ProfileError(f"calibration {name_or_path!r}: cannot read {path} ({exc.strerror}); allowed: a profile "
                           f"file or a built-in profile ({', '.join(builtin_profile_names())})") from None
    return loads_profile(text, origin=str(path))


def dumps_profile(profile: CalibrationProfile, description: str = "") -> str:
    """TOML text for a profile (the few types a profile uses; no writer library needed)."""
    data = profile_to_mapping(profile, description)
    lines = [f"schema_version = {data.pop('schema_version')}", f"name = {_value(data.pop('name'))}"]
    if "description" in data:
        lines.append(f"description = {_value(data.pop('description'))}")
    provenance = data.pop("provenance")
    fit_errors = provenance.pop("fit_errors")
    for table, values in [*data.items(), ("provenance", provenance), ("provenance.fit_errors", fit_errors)]:
        lines += ["", f"[{table}]", *(f"{key} = {_value(value)}" for key, value in values.items())]
    return "\n".join(lines) + "\n"


def _value(value: object) -> str:
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, list):
        return "[" + ", ".join(_value(v) for v in value) + "]"
    return repr(value)

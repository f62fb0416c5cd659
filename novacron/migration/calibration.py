"""Calibration profiles: how fast a pair of hosts migrates, as data the simulation and planner share.

Theory of operation
-------------------
A profile holds the few constants of the migration model (``sim.migration.qemu_model``) that
depend on the hosts rather than on the guest or the settings:

* the *stream ceiling* of one pre-copy stream while the guest runs (CPU and NIC bound) and the
  *stop-and-copy rate* once it is paused;
* *fixed costs*: the setup (libvirt's Begin/Prepare, the destination QEMU starting) and the
  device state sent while paused, the post-copy switch;
* *costs per GiB of guest memory*: setup work that grows with memory (allocating and marking the
  dirty bitmaps), each dirty-bitmap sync (it walks the whole bitmap, so it costs time per GiB of
  guest memory whatever the dirty rate), and the zero-page scan (a rate in pages/s).

Plus its provenance: where the numbers come from (hosts, QEMU/libvirt versions, date, number of
runs, fit errors). The profile is a plain value; reading and writing TOML files is the
application layer's job (``novacron.app.profiles``). ``profile_from_mapping`` validates the
parsed TOML and names the first bad or missing field, so a bad file gives a one-line error: a
profile states every constant of the model, none is taken from defaults in code.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from novacron.config import ConfigError
from novacron.migration.protocol import GIB, MIB

SCHEMA_VERSION = 1


class ProfileError(ConfigError):
    """A calibration profile that cannot be used; the message names the field and what is allowed."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Provenance:
    source: str = "defaults in code"
    hosts: tuple[str, ...] = ()
    qemu_version: str = ""
    libvirt_version: str = ""
    date: str = ""
    runs: int = 0
    fit_errors: tuple[tuple[str, float], ...] = ()
    """(name, percent) pairs, e.g. ("held_out_total_time_median_pct", 6.1)."""


@dataclass(frozen=True, slots=True, kw_only=True)
class CalibrationProfile:
    """Host-dependent constants of the migration model (bytes, seconds; see the module docstring)."""

    stream_cap_bytes_s: float = 320 * MIB
    """Ceiling of one pre-copy stream while the guest runs (CPU-bound under TCG in the lab)."""
    stop_copy_bytes_s: float = 1200 * MIB
    """Unthrottled copy while the guest is paused (stop-and-copy, post-copy background)."""
    zero_scan_pages_s: float = 4_000_000.0
    setup_s: float = 0.01
    setup_s_per_gib: float = 0.0
    sync_s_per_gib: float = 0.0
    """Time of one dirty-bitmap sync per GiB of guest memory."""
    device_state_ms: float = 13.0
    postcopy_switch_ms: float = 2.0
    rate_overshoot: float = 1.0
    """QEMU's limiter stops a window only after the batch that crossed its budget."""
    name: str = "defaults"
    provenance: Provenance = field(default_factory=Provenance)

    def setup_time_s(self, memory_bytes: float) -> float:
        return self.setup_s + self.setup_s_per_gib * memory_bytes / GIB

    def sync_time_s(self, memory_bytes: float) -> float:
        return self.sync_s_per_gib * memory_bytes / GIB


# (TOML table, key, attribute, scale to model units, minimum, maximum)
_FIELDS: tuple[tuple[str, str, str, float, float, float], ...] = (
    ("stream", "stream_cap_mib_s", "stream_cap_bytes_s", MIB, 0.1, 1e7),
    ("stream", "stop_copy_mib_s", "stop_copy_bytes_s", MIB, 0.1, 1e7),
    ("stream", "zero_scan_pages_s", "zero_scan_pages_s", 1.0, 1.0, 1e12),
    ("stream", "rate_overshoot", "rate_overshoot", 1.0, 1.0, 2.0),
    ("fixed", "setup_s", "setup_s", 1.0, 0.0, 600.0),
    ("fixed", "device_state_ms", "device_state_ms", 1.0, 0.0, 60_000.0),
    ("fixed", "postcopy_switch_ms", "postcopy_switch_ms", 1.0, 0.0, 60_000.0),
    ("per_gib", "setup_s", "setup_s_per_gib", 1.0, 0.0, 600.0),
    ("per_gib", "sync_ms", "sync_s_per_gib", 1e-3, 0.0, 60_000.0),
)
_PROVENANCE_TEXT = ("source", "qemu_version", "libvirt_version", "date")


def model_bounds(attribute: str) -> tuple[float, float]:
    """The allowed range of a profile attribute in model units (what a profile file may hold),
    so a fit never produces a profile that cannot be written and read back."""
    for _, _, attr, scale, low, high in _FIELDS:
        if attr == attribute:
            return low * scale, high * scale
    raise KeyError(attribute)


def _number(where: str, value: object, low: float, high: float) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ProfileError(f"{where} = {value!r}: allowed: a number in [{low:g}, {high:g}]")
    if not low <= value <= high:
        raise ProfileError(f"{where} = {value:g}: allowed: [{low:g}, {high:g}]")
    return float(value)


def _table(data: Mapping[str, Any], name: str, origin: str) -> Mapping[str, Any]:
    table = data.get(name, {})
    if not isinstance(table, Mapping):
        raise ProfileError(f"{origin}: [{name}] must be a table")
    return table


def _provenance(data: Mapping[str, Any], origin: str) -> Provenance:
    table = _table(data, "provenance", origin)
    unknown = set(table) - {*_PROVENANCE_TEXT, "hosts", "runs", "fit_errors"}
    if unknown:
        raise ProfileError(f"{origin}: provenance.{sorted(unknown)[0]} is not a known field; allowed: "
                           f"{', '.join((*_PROVENANCE_TEXT, 'hosts', 'runs', 'fit_errors'))}")
    text = {}
    for key in _PROVENANCE_TEXT:
        value = table.get(key, "")
        if not isinstance(value, str):
            raise ProfileError(f"{origin}: provenance.{key} = {value!r}: allowed: a string")
        text[key] = value
    hosts = table.get("hosts", [])
    if not isinstance(hosts, list) or not all(isinstance(h, str) for h in hosts):
        raise ProfileError(f"{origin}: provenance.hosts = {hosts!r}: allowed: a list of strings")
    errors = _table(table, "fit_errors", origin + " provenance")
    fit = tuple((str(k), _number(f"{origin}: provenance.fit_errors.{k}", v, 0.0, 1e9)) for k, v in errors.items())
    runs = table.get("runs", 0)
    if not isinstance(runs, int) or isinstance(runs, bool) or not 0 <= runs <= 10**9:
        raise ProfileError(f"{origin}: provenance.runs = {runs!r}: allowed: an integer in [0, 1000000000]")
    return Provenance(hosts=tuple(hosts), runs=runs, fit_errors=fit, **text)


def profile_from_mapping(data: Mapping[str, Any], *, origin: str) -> CalibrationProfile:
    """Validate a parsed profile file; raise ``ProfileError`` naming the first bad field."""
    version = data.get("schema_version")
    if type(version) is not int or version != SCHEMA_VERSION:  # not true, not 1.0
        raise ProfileError(f"{origin}: schema_version = {version!r}; allowed: {SCHEMA_VERSION}")
    name = data.get("name", "")
    if not isinstance(name, str) or not name:
        raise ProfileError(f"{origin}: name = {name!r}; allowed: a non-empty string")
    description = data.get("description", "")
    if not isinstance(description, str):
        raise ProfileError(f"{origin}: description = {description!r}; allowed: a string")
    known = {"schema_version", "name", "description", "stream", "fixed", "per_gib", "provenance"}
    unknown = set(data) - known
    if unknown:
        raise ProfileError(f"{origin}: {sorted(unknown)[0]} is not a known key; allowed: {', '.join(sorted(known))}")
    values: dict[str, float] = {}
    for table_name in ("stream", "fixed", "per_gib"):
        table = _table(data, table_name, origin)
        allowed = [key for t, key, *_ in _FIELDS if t == table_name]
        for key in table:
            if key not in allowed:
                raise ProfileError(f"{origin}: {table_name}.{key} is not a known field; allowed: {', '.join(allowed)}")
    for table_name, key, attribute, scale, low, high in _FIELDS:
        table = _table(data, table_name, origin)
        if key in table:
            values[attribute] = _number(f"{origin}: {table_name}.{key}", table[key], low, high) * scale
    _refuse_missing(data, origin)
    return CalibrationProfile(name=name, provenance=_provenance(data, origin), **values)


def _refuse_missing(data: Mapping[str, Any], origin: str) -> None:
    """A profile states every model constant: a missing one would silently take the code's
    defaults (``CalibrationProfile()``, neither lab-md nor lab-tcg), which no reader of the file sees."""
    for table_name, key, *_ in _FIELDS:
        if key not in _table(data, table_name, origin):
            every = ", ".join(f"{t}.{k}" for t, k, *_ in _FIELDS)
            raise ProfileError(f"{origin}: {table_name}.{key} is missing; a profile states every constant "
                               f"({every}); `novacron calibrate` writes complete ones, or start from a copy of "
                               f"a built-in profile")


def profile_to_mapping(profile: CalibrationProfile, description: str = "") -> dict[str, Any]:
    """The inverse of ``profile_from_mapping`` (what ``novacron calibrate`` writes)."""
    data: dict[str, Any] = {"schema_version": SCHEMA_VERSION, "name": profile.name}
    if description:
        data["description"] = description
    for table_name, key, attribute, scale, _low, _high in _FIELDS:
        data.setdefault(table_name, {})[key] = round(getattr(profile, attribute) / scale, 6)
    p = profile.provenance
    data["provenance"] = {"source": p.source, "hosts": list(p.hosts), "qemu_version": p.qemu_version,
                          "libvirt_version": p.libvirt_version, "date": p.date, "runs": p.runs,
                          "fit_errors": {k: round(v, 2) for k, v in p.fit_errors}}
    return data

"""Getting the libvirt lab for a test module: use the running lab, or bring it up (and down).

Without root, the Debian packages or libvirt-python the tests skip with the reason, except with
CI=true, where they fail: CI must run them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NoReturn

from tests.unavailable import unavailable


def lab_unavailable(reason: str) -> NoReturn:
    unavailable(f"the libvirt lab is unavailable: {reason}")


def lab_session() -> Iterator[Any]:
    """Generator body for a module-scoped ``lab`` fixture."""
    try:
        import libvirt  # noqa: F401
    except ImportError:
        lab_unavailable("libvirt-python is not installed (the 'real' extra; needs libvirt-dev)")
    from backends.lab import lab as lab_module
    from backends.lab.guest import GuestBuildError
    from backends.lab.hosts import LabHostError

    info = lab_module.running_lab()
    started_here = False
    if info is None:
        try:
            info = lab_module.up()
            started_here = True
        except (lab_module.LabError, GuestBuildError, LabHostError, OSError) as exc:
            lab_unavailable(f"cannot bring the lab up: {exc}")
    yield info
    if started_here:
        lab_module.down()

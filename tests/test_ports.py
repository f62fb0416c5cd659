"""Ports for private services come from below the kernel's ephemeral range, so no outgoing
connection can take one between the moment it is chosen and the moment a service binds it."""

from __future__ import annotations

import itertools
import socket

from backends import ports


def test_ports_are_distinct_free_and_below_the_ephemeral_range() -> None:
    chosen = ports.free_ports(40) + [ports.free_port() for _ in range(10)]
    assert len(set(chosen)) == len(chosen)
    assert all(ports.LOWEST_PORT <= port < ports.ephemeral_low() for port in chosen)
    for port in chosen[:5]:
        with socket.socket() as server:
            server.bind(("127.0.0.1", port))


def test_a_port_in_use_is_never_handed_out(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        taken = holder.getsockname()[1]
        holder.listen()
        draws = itertools.chain([taken, taken], itertools.count(20_000))
        monkeypatch.setattr(ports, "LOWEST_PORT", 1024)
        monkeypatch.setattr(ports, "ephemeral_low", lambda: 65536)
        monkeypatch.setattr(ports._rng, "randint", lambda low, high: next(draws))
        (port,) = ports.free_ports(1)
    assert port != taken


def test_an_unreadable_range_falls_back_to_the_linux_default(monkeypatch, tmp_path) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setattr(ports, "EPHEMERAL_RANGE_FILE", tmp_path / "missing")
    assert ports.ephemeral_low() == ports.DEFAULT_EPHEMERAL_LOW

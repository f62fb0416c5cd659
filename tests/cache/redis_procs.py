"""Real Redis processes for the tests: one server, a Sentinel group, a Redis Cluster.

Every process is ``redis-server`` on a private loopback port (Sentinel is ``redis-server CONF
--sentinel``: Debian's redis-server package does not ship the ``redis-sentinel`` name, which lives
in the separate redis-sentinel package, but the binary is the same). Each daemonizes with its pid
file in ``$NOVACRON_TEST_STATE`` (set by scripts/test, whose trap kills leftovers); the fixtures
stop them (SIGKILL) also when a test fails. Without redis-server the tests skip, unless CI=true,
where they fail.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol, TypeVar

from backends.ports import free_port
from tests.unavailable import unavailable


class RedisServer:
    """One redis-server process on loopback that a test may stop and start again."""

    def __init__(self, state_dir: Path, *, extra_args: tuple[str, ...] = ()) -> None:
        self.state_dir = state_dir
        self.extra_args = extra_args
        """more ``--option value`` pairs for every start"""
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.logfile = state_dir / f"redis-{self.port}.log"
        self.pidfile = state_dir / f"redis-{self.port}.pid"
        self._pid: int | None = None

    def start(self) -> None:
        """Start (or restart) the server."""
        argv = ["--port", str(self.port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
                "--daemonize", "yes", "--pidfile", str(self.pidfile), "--logfile", str(self.logfile),
                "--dir", str(self.state_dir), "--dbfilename", f"dump-{self.port}.rdb", *self.extra_args]
        self._pid = start_daemon(argv, self.pidfile, self.port, self.logfile)

    def pause(self) -> None:
        """SIGSTOP: the server holds its connections but answers nothing (not even replication)."""
        assert self._pid is not None
        os.kill(self._pid, signal.SIGSTOP)

    def resume(self) -> None:
        assert self._pid is not None
        os.kill(self._pid, signal.SIGCONT)

    def stop(self) -> None:
        """Kill the server (SIGKILL: as abrupt as a crash) and wait until it is gone."""
        pid = self._pid or _read_pidfile(self.pidfile)
        self._pid = None
        if pid is not None:
            _kill(pid)
        self.pidfile.unlink(missing_ok=True)


def start_daemon(argv: list[str], pidfile: Path, port: int, logfile: Path) -> int:
    """Run ``redis-server ARGV`` (which daemonizes), wait until it answers PING; return its pid."""
    binary = shutil.which("redis-server")
    if binary is None:
        unavailable("redis-server is not installed (apt-get install redis-server)")
    assert binary is not None
    subprocess.run([binary, *argv], check=True, timeout=10)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        pid = _read_pidfile(pidfile)
        if pid is not None and alive(pid) and _answers_ping(port):
            return pid
        time.sleep(0.02)
    unavailable(f"redis-server on port {port} did not start within 10 s; {logfile} ends:\n{_tail(logfile)}")
    raise AssertionError("unreachable")


def _tail(logfile: Path, lines: int = 8) -> str:
    """The end of a log, so a failed start says why in CI's output (the log is gone with the run)."""
    try:
        return "\n".join(logfile.read_text(errors="replace").splitlines()[-lines:]) or "(empty)"
    except OSError as error:
        return f"(unreadable: {error})"


def _answers_ping(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.2) as s:
            s.sendall(b"PING\r\n")
            return s.recv(16).startswith(b"+PONG")
    except OSError:
        return False


def _read_pidfile(pidfile: Path) -> int | None:
    try:
        return int(pidfile.read_text().strip())
    except (OSError, ValueError):
        return None


def alive(pid: int) -> bool:
    """True while the process exists and is not a zombie (nothing may reap daemons here)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"


def state_dir() -> Path:
    configured = os.environ.get("NOVACRON_TEST_STATE")
    path = Path(configured) if configured else Path(tempfile.gettempdir()) / "novacron-test-state"
    path.mkdir(parents=True, exist_ok=True)
    return path


class Processes(Protocol):
    def start(self) -> None: ...

    def stop(self) -> None: ...


P = TypeVar("P", bound=Processes)


@contextlib.contextmanager
def running(processes: P) -> Iterator[P]:
    """Start ``processes``; stop them on the way out, whatever happened (a failed start included)."""
    try:
        processes.start()
        yield processes
    finally:
        processes.stop()


def wait_until(ready: Callable[[], bool], timeout_s: float, what: str) -> None:
    """Poll ``ready`` (connection errors count as not ready); ``unavailable`` after ``timeout_s``."""
    import redis  # the redis extra may be missing where these helpers are never used

    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        with contextlib.suppress(redis.exceptions.RedisError, OSError):
            if ready():
                return
        time.sleep(0.05)
    unavailable(f"{what} not within {timeout_s:g} s")


def _ask(port: int, question: Callable[[Any], Any]) -> Any:
    """``question(client)`` on a short-lived connection to the server or sentinel on ``port``."""
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    # No retries: redis-py's default retries a refused connection with a backoff of seconds.
    with redis.Redis(port=port, socket_timeout=1.0, socket_connect_timeout=1.0, decode_responses=True,
                     retry=Retry(NoBackoff(), 0)) as client:
        return question(client)


def _replication(port: int) -> dict[str, Any]:
    return dict(_ask(port, lambda c: c.info("replication")))


def _online_replicas(info: dict[str, Any]) -> int:
    """Replicas a primary's INFO replication lists with ``state=online`` (redis-py parses each
    ``slaveN`` line into a dict)."""
    return sum(1 for key, value in info.items()
               if key.startswith("slave") and key[5:].isdigit() and isinstance(value, dict)
               and value.get("state") == "online")


class RedisSentinelGroup:
    """One primary, ``replicas`` replicas and ``sentinels`` sentinels (quorum: a majority), with
    short timeouts so a failover takes a few seconds: the primary is declared down after
    ``down_after_ms`` without a valid reply.

    Not shorter than 3 s: with 1 s, on this 2-core machine at load 6, a sentinel declared the
    *new* primary down 1.04 s after it had switched to it (its fresh link had no PONG yet) and
    failed it over again while it was healthy; the primary it left behind stayed a primary for
    another 10 s, so no write could be confirmed by a replica (``WAIT``) for 12 s."""

    service_name = "novacron-test"

    def __init__(self, state: Path, *, replicas: int = 2, sentinels: int = 3, down_after_ms: int = 3000,
                 failover_timeout_ms: int = 4000) -> None:
        self.state = state
        self.down_after_ms = down_after_ms
        self.failover_timeout_ms = failover_timeout_ms
        self.primary = RedisServer(state)
        follow = ("--replicaof", "127.0.0.1", str(self.primary.port))
        self.servers = [self.primary, *(RedisServer(state, extra_args=follow) for _ in range(replicas))]
        self.sentinel_ports = [free_port() for _ in range(sentinels)]
        self._sentinel_pids: dict[int, int] = {}

    @property
    def sentinel_addresses(self) -> tuple[str, ...]:
        return tuple(f"127.0.0.1:{port}" for port in self.sentinel_ports)

    def start(self) -> None:
        for server in self.servers:
            server.start()
        replicas = len(self.servers) - 1
        wait_until(lambda: _online_replicas(_replication(self.primary.port)) == replicas
                   and all(_replication(s.port)["master_link_status"] == "up"
                           for s in self.servers[1:]), 10, "replicas in sync")
        for port in self.sentinel_ports:
            self._start_sentinel(port)
        others = len(self.sentinel_ports) - 1

        def sentinels_agree() -> bool:
            states = [_ask(p, lambda c: c.sentinel_master(self.service_name)) for p in self.sentinel_ports]
            return all(int(s["num-other-sentinels"]) == others and int(s["num-slaves"]) == replicas
                       for s in states)

        wait_until(sentinels_agree, 15, "every sentinel sees the replicas and the other sentinels")

    def _start_sentinel(self, port: int) -> None:
        pidfile = self.state / f"sentinel-{port}.pid"
        logfile = self.state / f"sentinel-{port}.log"
        conf = self.state / f"sentinel-{port}.conf"  # Sentinel rewrites its configuration file
        quorum = len(self.sentinel_ports) // 2 + 1
        name = self.service_name
        conf.write_text("\n".join([
            f"port {port}", "bind 127.0.0.1", "daemonize yes", f"pidfile {pidfile}", f"logfile {logfile}",
            f"dir {self.state}", f"sentinel monitor {name} 127.0.0.1 {self.primary.port} {quorum}",
            f"sentinel down-after-milliseconds {name} {self.down_after_ms}",
            f"sentinel failover-timeout {name} {self.failover_timeout_ms}",
            f"sentinel parallel-syncs {name} {len(self.servers)}", ""]))
        self._sentinel_pids[port] = start_daemon([str(conf), "--sentinel"], pidfile, port, logfile)

    def primary_port(self) -> int:
        """The primary's port as the first answering sentinel reports it."""
        import redis

        for port in self.sentinel_ports:
            with contextlib.suppress(redis.exceptions.RedisError):
                return int(_ask(port, lambda c: c.sentinel_get_master_addr_by_name(self.service_name))[1])
        raise AssertionError("no sentinel answers")

    def server_on(self, port: int) -> RedisServer:
        (server,) = [s for s in self.servers if s.port == port]
        return server

    def stop(self) -> None:
        for port in self.sentinel_ports:  # also one whose start failed after it daemonized
            pidfile = self.state / f"sentinel-{port}.pid"
            pid = self._sentinel_pids.pop(port, None) or _read_pidfile(pidfile)
            if pid is not None:
                _kill(pid)
            pidfile.unlink(missing_ok=True)
        for server in self.servers:
            server.stop()


class RedisClusterGroup:
    """A Redis Cluster of ``primaries`` primaries with ``replicas_per_primary`` replicas each, made
    by ``redis-cli --cluster create``. A primary unreachable for ``node_timeout_ms`` is failed and
    one of its replicas takes over its slots. Full coverage is not required, so while one shard
    fails over the others keep serving."""

    def __init__(self, state: Path, *, primaries: int = 3, replicas_per_primary: int = 1,
                 node_timeout_ms: int = 1000) -> None:
        self.state = state
        self.replicas_per_primary = replicas_per_primary
        self.node_timeout_ms = node_timeout_ms
        self.servers = [RedisServer(state) for _ in range(primaries * (1 + replicas_per_primary))]
        for server in self.servers:
            # The bus port defaults to port + 10000, which may be taken or above 65535.
            server.extra_args = ("--cluster-enabled", "yes", "--cluster-config-file", f"nodes-{server.port}.conf",
                                 "--cluster-port", str(free_port()),
                                 "--cluster-node-timeout", str(node_timeout_ms),
                                 "--cluster-replica-validity-factor", "0",
                                 "--cluster-require-full-coverage", "no")

    @property
    def addresses(self) -> tuple[str, ...]:
        return tuple(f"127.0.0.1:{s.port}" for s in self.servers)

    def start(self) -> None:
        for server in self.servers:
            (self.state / f"nodes-{server.port}.conf").unlink(missing_ok=True)
            server.start()
        cli = shutil.which("redis-cli")
        if cli is None:
            unavailable("redis-cli is not installed (apt-get install redis-tools)")
        assert cli is not None
        subprocess.run([cli, "--cluster", "create", *self.addresses, "--cluster-replicas",
                        str(self.replicas_per_primary), "--cluster-yes"],
                       check=True, timeout=30, capture_output=True)
        wait_until(self._healthy, 20, "cluster state ok on every node with every replica linked")

    @property
    def failover_bound_s(self) -> float:
        """When a replica has taken over from a dead primary at the latest: the primary is
        suspected after the node timeout and failed once a majority of primaries agree (gossip,
        well under another node timeout); a replica then waits 500 ms + up to 500 ms + 1 s per
        replica ranked ahead of it by offset, and its vote round lasts at most twice the node
        timeout (at least 2 s). Source: the Redis Cluster specification, "Replica election"."""
        node_timeout_s = self.node_timeout_ms / 1000
        return 2 * node_timeout_s + 1.0 + (self.replicas_per_primary - 1) + max(2 * node_timeout_s, 2.0)

    def _healthy(self) -> bool:
        primaries = len(self.servers) // (1 + self.replicas_per_primary)
        for server in self.servers:
            if not self._sees_whole_cluster(_ask(server.port, lambda c: c.execute_command("CLUSTER INFO")), primaries):
                return False
            info = _replication(server.port)
            if info["role"] == "slave" and info["master_link_status"] != "up":
                return False
            if info["role"] == "master" and _online_replicas(info) < self.replicas_per_primary:
                # A replica whose link is up may still be loading the primary's snapshot: until the
                # primary lists it online, WAIT counts it as no replica (a CI run saw "confirmed 0").
                return False
        return True

    def _sees_whole_cluster(self, info: dict[str, Any], primaries: int) -> bool:
        """With full coverage not required, ``cluster_state:ok`` holds before gossip has told a
        node who owns the other shards' slots; a client that loads its slot table from that node
        then routes a whole shard's keys elsewhere (a CI run saw 2 of 3 primaries). So also ask
        that the node knows every node, every slot and every primary."""
        return (info.get("cluster_state") == "ok"
                and int(info.get("cluster_known_nodes", 0)) == len(self.servers)
                and int(info.get("cluster_slots_ok", 0)) == 16384
                and int(info.get("cluster_size", 0)) == primaries)

    def slot_ranges(self) -> list[tuple[int, int, int]]:
        """``(first slot, last slot, port of the primary)`` as the first answering node sees them."""
        import redis

        for server in self.servers:
            with contextlib.suppress(redis.exceptions.RedisError):
                rows = _ask(server.port, lambda c: c.execute_command("CLUSTER SLOTS"))
                return [(int(start), int(end), int(primary[1])) for start, end, primary, *_ in rows]
        raise AssertionError("no cluster node answers")

    def primary_of(self, key: str) -> RedisServer:
        """The server that currently owns ``key``'s slot."""
        from redis.crc import key_slot

        slot = key_slot(key.encode())
        (port,) = [port for start, end, port in self.slot_ranges() if start <= slot <= end]
        (server,) = [s for s in self.servers if s.port == port]
        return server

    def stop(self) -> None:
        for server in self.servers:
            server.stop()


def _kill(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)
    deadline = time.monotonic() + 5
    while alive(pid) and time.monotonic() < deadline:
        time.sleep(0.01)

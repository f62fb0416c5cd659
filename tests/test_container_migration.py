"""Unit tests of the real container migration's parts and error paths (no namespaces, no cgroups).

The real run is ``test_container_migration_real.py``; here: the client-log checker against planted
histories, the service's exactly-once request slots and its restore stream, the pre-copy
protocol in-process (this process is both source and restore side, a fake cgroup directory
stands in for the freezer), the rollback when the restore side dies, the cgroup2 mount lookup,
the spec's and the command's bad input, and the model comparison's fit.
"""

from __future__ import annotations

import json
import os
import socket
import threading
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

from backends.lab import precopy
from backends.lab.container_bench import error_rows, fitted_params, load_groups, predict, write_table
from backends.lab.container_rig import (
    ContainerMigrationReport,
    ContainerMigrationSpec,
    ReplyCheck,
    cgroup2_root,
    check_replies,
)
from backends.lab.precopy import FreezeTimeout, Source, migrate, page_runs, set_frozen
from backends.lab.statesvc import ACK, COMMIT, DIGEST, FRAME, PAGE, PAGES, SLOTS, Arena, buffer_address
from backends.manager.netns import RigUnavailable
from novacron.app.cli import main
from novacron.migration.kinds import KindMigrationParams

CLEAN = ["1.000 1 1 host1 1", "1.002 2 2 host1 1", "1.050 3 3 host2 2", "1.052 4 4 host2 1"]


def test_a_clean_history_passes_and_dates_the_switch() -> None:
    check = check_replies(CLEAN, "host1", "host2")
    assert check.problems == () and check.switch_s == 1.050 and check.replies_after == 2 and check.retried == 1
    assert check.longest_gap_s == pytest.approx(0.048) and check.median_gap_s == pytest.approx(0.002)


@pytest.mark.parametrize(("lines", "says"), [
    (["1.0 1 1 host1 1", "1.1 3 3 host2 1"], "lost or reordered"),
    (["1.0 2 2 host1 1", "1.1 1 1 host1 1"], "lost or reordered"),
    (["1.0 1 1 host1 1", "1.1 2 3 host2 2"], "lost or repeated update"),
    (["1.0 1 1 host1 1", "1.1 2 1 host2 1"], "lost or repeated update"),
    (["1.0 1 1 host2 1", "1.1 2 2 host1 1"], "after the switch"),
    (["1.0 1 1 host3 1"], "after the switch"),
    (["1.0 ERR 1"], "not a reply"),
    (["1.0 1 None host1 1"], "not a reply"),
    (["1.0 1 1 host1"], "not a reply"),
])
def test_every_planted_fault_in_a_client_log_is_named(lines: list[str], says: str) -> None:
    assert any(says in p for p in check_replies(lines, "host1", "host2").problems)


def test_a_request_is_applied_once_however_often_it_is_sent() -> None:
    arena = Arena(pages=4, wws_pages=2)
    arena.fill()
    assert [arena.apply(7, 1), arena.apply(7, 1), arena.apply(7, 2), arena.apply(9, 1)] == [1, 1, 2, 3]
    assert arena.apply(7, 4) is None, "a request that skips one must be refused, not applied"
    assert arena.dirty[0] == 1
    planted = Arena(pages=4, wws_pages=2, dedup=False)
    planted.fill()
    assert [planted.apply(7, 1), planted.apply(7, 1)] == [1, 2]  # the bug the real test must catch


def test_clients_beyond_the_slots_are_refused() -> None:
    arena = Arena(pages=1, wws_pages=1)
    arena.fill()
    assert all(arena.apply(client, 1) is not None for client in range(1, SLOTS + 1))
    assert arena.apply(SLOTS + 1, 1) is None


@pytest.mark.parametrize(("frame", "error"), [
    (FRAME.pack(b"X", 0, 0), "bad migration frame"),
    (FRAME.pack(PAGES, 3, 5), "bad migration frame"),
    (FRAME.pack(COMMIT, 0, 0), "no header"),
])
def test_the_restore_side_refuses_a_bad_stream(frame: bytes, error: str) -> None:
    sender, receiver = socket.socketpair()
    with sender, receiver:
        sender.sendall(frame)
        with pytest.raises(ValueError, match=error):
            Arena(pages=4, wws_pages=1).receive(receiver)


def test_a_stream_cut_mid_frame_is_an_error() -> None:
    sender, receiver = socket.socketpair()
    with receiver:
        sender.sendall(FRAME.pack(PAGES, 0, 2) + bytes(PAGE))
        sender.close()
        with pytest.raises(ConnectionError):
            Arena(pages=4, wws_pages=1).receive(receiver)


def test_page_runs_are_consecutive_and_bounded() -> None:
    assert page_runs(np.array([], dtype=np.int64)) == []
    assert page_runs(np.array([0, 1, 2, 5, 7, 8])) == [(0, 3), (5, 1), (7, 2)]
    assert page_runs(np.arange(1, 1 + 2 * precopy.RUN_PAGES + 3)) == [
        (1, precopy.RUN_PAGES), (1 + precopy.RUN_PAGES, precopy.RUN_PAGES), (1 + 2 * precopy.RUN_PAGES, 3)]


def fake_cgroup(tmp_path: Path) -> Path:
    """A directory shaped like a cgroup whose freeze 'takes' at once (both states reported)."""
    group = tmp_path / "cg"
    group.mkdir()
    (group / "cgroup.events").write_text("populated 1\nfrozen 0\nfrozen 1\n")
    return group


def test_a_freeze_that_never_takes_times_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    group = tmp_path / "cg"
    group.mkdir()
    (group / "cgroup.events").write_text("populated 1\nfrozen 0\n")
    monkeypatch.setattr(precopy, "FREEZE_TIMEOUT_S", 0.05)
    with pytest.raises(FreezeTimeout, match="frozen 1"):
        set_frozen(group, True)
    assert (group / "cgroup.freeze").read_text() == "1"


def own_source(arena: Arena, group: Path) -> Source:
    """This process as the source: its own arena read and cleared through /proc/self/mem."""
    return Source(pid=os.getpid(), state_addr=buffer_address(arena.state),
                  map_addr=buffer_address(arena.dirty), pages=1 + arena.pages, cgroup=group)


def restore_side(conn: socket.socket, arena: Arena, acknowledge: bool) -> None:
    with conn:
        arena.receive(conn)
        if acknowledge:
            conn.sendall(ACK + bytes(8))
            conn.sendall(DIGEST + arena.payload_digest())


def test_pre_copy_moves_every_page_and_the_latest_writes(tmp_path: Path) -> None:
    source, restored = Arena(pages=64, wws_pages=8), Arena(pages=64, wws_pages=8)
    source.fill()
    source.apply(1, 1)
    src_sock, dst_sock = socket.socketpair()
    receiver = threading.Thread(target=restore_side, args=(dst_sock, restored, True))
    receiver.start()
    registry = tmp_path / "registry"
    with src_sock:
        report = migrate(own_source(source, fake_cgroup(tmp_path)), src_sock, final_mib=0.0, max_rounds=3,
                         registry=registry, new_endpoint="10.0.0.2:7400")
    receiver.join(timeout=10)
    assert report.round_pages == [65] and report.final_pages == 1  # nothing written after round 0 but the header
    assert bytes(restored.state) == bytes(source.state)
    assert report.source_digest == report.restored_digest
    assert registry.read_text() == "10.0.0.2:7400"


def test_a_restore_side_that_dies_before_acknowledging_leaves_the_source_running(tmp_path: Path) -> None:
    source = Arena(pages=8, wws_pages=8)
    source.fill()
    group = fake_cgroup(tmp_path)
    src_sock, dst_sock = socket.socketpair()
    receiver = threading.Thread(target=restore_side, args=(dst_sock, Arena(pages=8, wws_pages=8), False))
    receiver.start()
    with src_sock, pytest.raises(ConnectionError):
        migrate(own_source(source, group), src_sock, 0.0, 2, tmp_path / "registry", "x:1")
    receiver.join(timeout=10)
    assert (group / "cgroup.freeze").read_text() == "0", "the source was left frozen"
    assert not (tmp_path / "registry").exists() and not (group / "cgroup.kill").exists()


HYBRID = """24 1 0:21 / /sys/fs/cgroup rw - tmpfs tmpfs rw
30 24 0:27 / /sys/fs/cgroup/freezer rw - cgroup cgroup rw,freezer
33 24 0:30 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
"""


def test_the_cgroup2_mount_is_found_on_hybrid_and_pure_hosts() -> None:
    assert cgroup2_root(HYBRID) == Path("/sys/fs/cgroup/unified")
    assert cgroup2_root("35 1 0:30 / /sys/fs/cgroup rw shared:9 - cgroup2 cgroup2 rw\n") == Path("/sys/fs/cgroup")
    with pytest.raises(RigUnavailable, match="cgroup2"):
        cgroup2_root(HYBRID.replace("cgroup2", "cgroup"))


@pytest.mark.parametrize(("field", "value"), [
    ("state_mib", 0.0), ("wws_mib", 99.0), ("dirty_rate_mib_s", -1.0), ("link_mbit", 0.0), ("max_rounds", 0),
    ("client_interval_ms", 0.0),
])
def test_a_bad_spec_is_one_line_naming_the_field(field: str, value: float) -> None:
    with pytest.raises(ValueError, match=f"^{field} = .*: allowed") as caught:
        ContainerMigrationSpec(**{field: value})  # type: ignore[arg-type]
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("argv", [["--state-mib", "0"], ["--state-mib", "x"], ["--repeats", "0"],
                                  ["--max-rounds", "0"], ["--dirty-rate-mib-s", "-2"], ["--link-mbit", "0"],
                                  ["--reuse-runs", "missing.json"], ["--reuse-runs", "garbled.json"],
                                  ["--reuse-runs", "empty.json"], ["--reuse-runs", "wrong.json"]])
def test_the_command_answers_bad_input_with_one_line_and_exit_2(argv: list[str], tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "garbled.json").write_bytes(b"\xff[{")
    (tmp_path / "empty.json").write_text("[]")
    (tmp_path / "wrong.json").write_text('[{"spec": {"state_mib": 0}}]')
    monkeypatch.chdir(tmp_path)
    assert main(["container-migrate", *argv]) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.strip().splitlines()) == 1 and "Traceback" not in err, err


def measured(state_mib: float, downtime_s: float, final_pages: int = 1) -> ContainerMigrationReport:
    spec = ContainerMigrationSpec(state_mib=state_mib, wws_mib=1.0, dirty_rate_mib_s=0.0)
    pages = 1 + round(state_mib * 256)
    return ContainerMigrationReport(spec, pages, (pages,), (1.0,), final_pages, 50.0, 0.0, 0.001, downtime_s * 0.8,
                                    downtime_s, 1.0 + downtime_s, True, ReplyCheck(10, (), 1.0, 5, 0.01, 0.002))


def test_the_fit_leaves_each_point_out_and_recovers_a_constant_cost() -> None:
    with pytest.raises(ValueError, match="at least one"):
        fitted_params([])
    groups = [[measured(16, 0.020)], [measured(64, 0.020)], [measured(128, 0.100)]]
    rows = error_rows(groups)
    # the variable part (freeze + 4 KiB over 50 MiB/s + 4 KiB at the dump rate) is well under 1 ms
    assert rows[0].fitted_restore_fixed_s == pytest.approx(0.06, abs=0.002)  # median of 20 ms and 100 ms
    assert rows[2].fitted_restore_fixed_s == pytest.approx(0.019, abs=0.002)  # the 100 ms point is left out
    assert rows[0].default_downtime_s == pytest.approx(predict(groups[0][0], KindMigrationParams()).downtime_s)
    assert rows[0].default_downtime_s > 0.3  # the CRIU default fixed costs



def test_a_table_can_be_made_again_from_the_runs_it_kept(tmp_path: Path) -> None:
    runs = [measured(16, 0.020), measured(16, 0.030), measured(64, 0.025)]
    (tmp_path / "runs.json").write_text(json.dumps([asdict(r) for r in runs]))
    groups = load_groups(tmp_path / "runs.json")
    assert [len(g) for g in groups] == [2, 1] and groups[0][1] == runs[1]
    assert write_table(groups, tmp_path / "again") == 0
    assert "| 400 | 16 | 0 (0.0) | 2 |" in (tmp_path / "again" / "errors.md").read_text()


def test_the_writer_keeps_its_rate_when_its_wake_ups_are_late(monkeypatch: pytest.MonkeyPatch) -> None:
    """A loaded machine wakes the writer late; its rate must follow the clock, not count ticks
    (counting ticks gave 3.5 of 4 MiB/s at load 7, and a quarter of it here)."""
    import time as real_time
    import types

    from backends.lab import statesvc

    late = types.SimpleNamespace(monotonic=real_time.monotonic, sleep=lambda s: real_time.sleep(4 * s))
    monkeypatch.setattr(statesvc, "time", late)
    arena, go, stop = Arena(pages=256, wws_pages=256), threading.Event(), threading.Event()
    thread = threading.Thread(target=statesvc.writer, args=(arena, 8.0, go, 1, stop))
    began = real_time.monotonic()
    go.set()
    thread.start()
    real_time.sleep(0.5)
    stop.set()
    thread.join(timeout=5)
    writes = int.from_bytes(arena.dirty[1 + arena.pages:], "little")
    assert writes / 256 / (real_time.monotonic() - began) == pytest.approx(8.0, rel=0.25)


def test_a_round_lasts_until_the_restore_side_has_it_not_until_the_socket_buffer_took_it(tmp_path: Path) -> None:
    """The round times feed the link rate the model is given: they must end at the acknowledgement
    (a sender that stopped the clock at sendall measured the socket buffer, ~40 ms of switch-over)."""
    from backends.lab.statesvc import ROUND_END, recv_exact

    def slow_restore_side(conn: socket.socket) -> None:
        head = bytearray(FRAME.size)
        with conn:
            while True:
                recv_exact(conn, memoryview(head))
                kind, _, count = FRAME.unpack(head)
                recv_exact(conn, memoryview(bytearray(count * PAGE if kind == PAGES else 0)))
                if kind == ROUND_END:
                    threading.Event().wait(0.2)
                    conn.sendall(ROUND_END)
                if kind == COMMIT:
                    conn.sendall(ACK + bytes(8) + DIGEST + bytes(32))
                    return

    source = Arena(pages=8, wws_pages=8)
    source.fill()
    src_sock, dst_sock = socket.socketpair()
    receiver = threading.Thread(target=slow_restore_side, args=(dst_sock,))
    receiver.start()
    with src_sock:
        report = migrate(own_source(source, fake_cgroup(tmp_path)), src_sock, 0.0, 2, tmp_path / "registry", "x:1")
    receiver.join(timeout=10)
    assert report.round_s[0] >= 0.2


def leaf_paths(doc: object, path: tuple[object, ...] = ()) -> list[tuple[object, ...]]:
    if isinstance(doc, dict):
        return [path] + [p for key, item in doc.items() for p in leaf_paths(item, (*path, key))]
    if isinstance(doc, list):
        return [path] + [p for i, item in enumerate(doc) for p in leaf_paths(item, (*path, i))]
    return [path]


def json_kind(value: object) -> str:
    if isinstance(value, bool) or value is None:
        return repr(value) if value is None else "bool"
    return "number" if isinstance(value, int | float) else type(value).__name__


def test_reuse_runs_answers_1000_malformed_files_with_one_line_and_exit_2(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Each example breaks one valid runs.json: a field of the wrong JSON type, an unknown or a
    missing required key, or the text cut short."""
    from hypothesis import HealthCheck, assume, given, settings
    from hypothesis import strategies as st

    valid = json.loads(json.dumps([asdict(measured(16, 0.02))]))
    paths = [p for p in leaf_paths(valid) if p]
    wrong = st.one_of(st.text(max_size=5), st.lists(st.integers(), max_size=2), st.booleans(), st.none(),
                      st.dictionaries(st.text(max_size=3), st.integers(), max_size=2))
    target = tmp_path / "runs.json"

    @settings(max_examples=1000, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.filter_too_much])
    @given(st.sampled_from(paths), wrong, st.sampled_from(["replace", "unknown key", "drop key", "cut"]),
           st.integers(min_value=0))
    def check(path: tuple[object, ...], value: object, how: str, cut: int) -> None:
        doc = json.loads(json.dumps(valid))
        parent = doc
        for step in path[:-1]:
            parent = parent[step]  # type: ignore[index]
        key = path[-1]
        if how == "replace":
            original = parent[key]  # type: ignore[index]
            assume(json_kind(value) != json_kind(original) and not (key == "switch_s" and value is None))
            parent[key] = value  # type: ignore[index]
        elif how == "unknown key":
            assume(isinstance(parent, dict))
            parent["no_such_field"] = value  # type: ignore[index]
        elif how == "drop key":  # a key without a default: a report's own, or one of its replies'
            assume(len(path) == 2 or (len(path) == 3 and path[1] == "replies" and key != "retried"))
            del parent[key]  # type: ignore[union-attr, arg-type]
        text = json.dumps(doc)
        target.write_text(text[:cut % len(text)] if how == "cut" else text)
        capsys.readouterr()
        assert main(["container-migrate", "--reuse-runs", str(target)]) == 2, (how, path, value)
        out, err = capsys.readouterr()
        assert out == "" and len(err.strip().splitlines()) == 1, err

    check()

"""Trace codecs, synthetic generators, trace evaluation against Belady, and the two CLI commands."""

from __future__ import annotations

import io
import json
import struct
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from novacron.app import tracefiles
from novacron.app.cli import main
from novacron.app.tracefiles import TraceError
from novacron.cache import traces
from novacron.cache.evaluate import evaluate_trace
from novacron.cache.traces import Request


def test_csv_round_trip_with_ops_and_any_column_order() -> None:
    text = "size,op,key,time\n10,get,1,0.5\n20,set,2,1\n30,delete,1,2\n5,,abc,3\n"
    got = list(tracefiles.read_csv(io.StringIO(text)))
    assert got[:3] == [Request(0.5, 1, 10, "get"), Request(1.0, 2, 20, "set"), Request(2.0, 1, 30, "delete")]
    assert got[3].op == "get" and got[3].key == list(tracefiles.read_csv(io.StringIO(text)))[3].key
    out = io.StringIO()
    tracefiles.write_csv(out, got)
    assert list(tracefiles.read_csv(io.StringIO(out.getvalue()))) == got


def test_csv_errors_name_the_line() -> None:
    with pytest.raises(TraceError, match="line 3"):
        list(tracefiles.read_csv(io.StringIO("time,key,size\n1,2,3\n1,x2,notanumber\n")))
    with pytest.raises(TraceError, match="lacks"):
        list(tracefiles.read_csv(io.StringIO("time,key\n1,2\n")))


def test_oracle_general_layout_and_round_trip() -> None:
    reqs = [Request(1.0, 7, 100), Request(2.0, 8, 200), Request(3.0, 7, 100)]
    buf = io.BytesIO()
    tracefiles.write_oracle(buf, reqs)
    raw = buf.getvalue()
    assert len(raw) == 3 * 24
    assert struct.unpack_from("<IQIq", raw, 0) == (1, 7, 100, 2)
    assert struct.unpack_from("<IQIq", raw, 24) == (2, 8, 200, -1)
    assert list(tracefiles.read_oracle(io.BytesIO(raw), chunk_records=2)) == reqs
    with pytest.raises(TraceError, match="trailing bytes"):
        list(tracefiles.read_oracle(io.BytesIO(raw[:-5])))


def test_zipf_is_skewed_and_deterministic() -> None:
    a = traces.zipf_trace(np.random.default_rng(4), n_objects=1000, alpha=1.2, n_requests=20000)
    b = traces.zipf_trace(np.random.default_rng(4), n_objects=1000, alpha=1.2, n_requests=20000)
    assert a == b
    counts = np.bincount([r.key for r in a], minlength=1000)
    top = np.sort(counts)[::-1]
    assert top[0] > 10 * np.median(counts)
    assert top[:10].sum() > 0.3 * len(a)


def test_scan_and_shift_and_vm_image_generators() -> None:
    rng = np.random.default_rng(2)
    scan = traces.scan_trace(rng, n_objects=100, alpha=1.0, n_requests=1000, scan_length=50, scan_every=200)
    assert sum(r.key >= 100 for r in scan) == 4 * 50
    shift = traces.shifting_trace(rng, n_objects=100, alpha=1.0, n_requests=1000, phases=4, overlap=0.0)
    phase_keys = [{r.key for r in shift[i * 250:(i + 1) * 250]} for i in range(4)]
    assert not phase_keys[0] & phase_keys[3]
    vm = traces.vm_image_trace(rng, images=3, blocks_per_image=500, vms=4, n_requests=4000, boot_blocks=50)
    assert len(vm) == 4000 and all(0 <= r.key < 3 * 500 for r in vm)
    assert all(r.size_bytes == 65536 for r in vm)


def test_evaluation_on_zipf_is_below_belady_and_per_tier_rates_add_up() -> None:
    reqs = traces.zipf_trace(np.random.default_rng(9), n_objects=5000, alpha=0.9, n_requests=30000)
    result = evaluate_trace(reqs, l1_items=100, l2_items=400, l3_bytes=1000 * 4096, policy="s3fifo")
    levels = {lv.level: lv for lv in result.levels}
    assert levels["l2"].requests == levels["l1"].requests - levels["l1"].hits
    assert levels["overall"].hits == sum(levels[t].hits for t in ("l1", "l2", "l3"))
    for lv in result.levels:
        assert lv.gap_pp >= 0, lv
    assert levels["l3"].capacity_items == 1500


@settings(max_examples=40)
@given(keys=st.lists(st.integers(0, 40), min_size=1, max_size=300), l1=st.integers(1, 5), l2=st.integers(1, 10),
       l3=st.integers(1, 20), policy=st.sampled_from(["lru", "tlru", "s3fifo"]))
def test_no_hierarchy_beats_belady(keys: list[int], l1: int, l2: int, l3: int, policy: str) -> None:
    reqs = [Request(float(i), k, 1) for i, k in enumerate(keys)]
    result = evaluate_trace(reqs, l1_items=l1, l2_items=l2, l3_bytes=l3, policy=policy)
    for lv in result.levels:
        assert lv.gap_pp >= -1e-9, (lv, keys)


def test_cli_generates_and_evaluates_a_trace(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    trace = tmp_path / "t.oracleGeneral"
    assert main(["cache-trace", str(trace), "--requests", "20000", "--objects", "2000", "--seed", "3"]) == 0
    assert trace.stat().st_size == 20000 * 24
    capsys.readouterr()
    assert main(["cache-eval", str(trace), "--l1-items", "50", "--l2-items", "200", "--l3-bytes", str(500 * 4096),
                 "--policy", "tlru", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["policy"] == "tlru" and report["gets"] == 20000
    assert set(report["levels"]) == {"l1", "l2", "l3", "overall"}
    assert 0 < report["levels"]["overall"]["cumulative_hit_rate_pct"] <= report["levels"]["overall"][
        "belady_hit_rate_pct"]
    csv_trace = tmp_path / "t.csv"
    assert main(["cache-trace", str(csv_trace), "--kind", "vm-image", "--requests", "5000", "--objects", "8192"]) == 0
    capsys.readouterr()
    assert main(["cache-eval", str(csv_trace), "--l1-items", "100"]) == 0
    assert "Belady" in capsys.readouterr().out


def test_cli_reports_a_bad_trace_in_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.bin"
    bad.write_bytes(b"x" * 30)
    assert main(["cache-eval", str(bad)]) == 2
    assert "trailing bytes" in capsys.readouterr().err
    assert main(["cache-eval", str(tmp_path / "missing.csv")]) == 2

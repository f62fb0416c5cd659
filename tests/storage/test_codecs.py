"""Real codecs: any m shards lost are reconstructed, bit for bit, by every backend."""

from __future__ import annotations

import sys

import pytest
from hypothesis import given
from hypothesis import strategies as st

from novacron.storage.codecs import (
    RS_BACKENDS,
    MissingExtra,
    NotEnoughShards,
    ReedSolomon,
    Replication,
    make_codec,
)

payloads = st.binary(max_size=5000)


@given(k=st.integers(1, 12), m=st.integers(1, 4), backend=st.sampled_from(RS_BACKENDS), data=payloads,
       choice=st.data())
def test_any_m_lost_shards_are_reconstructed(k: int, m: int, backend: str, data: bytes, choice: st.DataObject) -> None:
    codec = ReedSolomon(k, m, backend)
    shards = codec.encode(data)
    assert len(shards) == k + m
    lost = choice.draw(st.lists(st.integers(0, k + m - 1), min_size=m, max_size=m, unique=True), label="lost")
    survivors = {i: shards[i] for i in range(k + m) if i not in lost}
    assert codec.decode(survivors) == data
    assert codec.rebuild(survivors, lost) == {i: shards[i] for i in lost}


@given(k=st.integers(1, 10), m=st.integers(1, 4), backend=st.sampled_from(RS_BACKENDS), data=payloads)
def test_one_loss_too_many_is_reported_not_guessed(k: int, m: int, backend: str, data: bytes) -> None:
    codec = ReedSolomon(k, m, backend)
    shards = codec.encode(data)
    with pytest.raises(NotEnoughShards, match=f"{k - 1} shards survive, {k} needed"):
        codec.decode({i: shards[i] for i in range(k - 1)})


@given(copies=st.integers(1, 5), data=payloads, keep=st.integers(0, 4))
def test_replication_survives_all_but_one_copy(copies: int, data: bytes, keep: int) -> None:
    codec = Replication(copies)
    shards = codec.encode(data)
    index = keep % copies
    assert codec.decode({index: shards[index]}) == data
    assert codec.rebuild({index: shards[index]}, [i for i in range(copies) if i != index]) == {
        i: data for i in range(copies) if i != index}


def test_backends_agree_on_the_data() -> None:
    data = bytes(range(256)) * 41
    for backend in RS_BACKENDS:
        codec = ReedSolomon(10, 4, backend)
        shards = codec.encode(data)
        assert codec.decode({i: shards[i] for i in range(4, 14)}) == data, backend


@pytest.mark.parametrize(("scheme", "name"), [("replication3", "replication x3"), ("rs6+3", "RS(6,3) isa_l_rs_cauchy"),
                                              ("rs10+4", "RS(10,4) isa_l_rs_cauchy")])
def test_schemes_by_name(scheme: str, name: str) -> None:
    assert make_codec(scheme).name == name


@pytest.mark.parametrize(("scheme", "field"), [("rs6", "scheme='rs6'"), ("raid5", "scheme='raid5'"),
                                               ("rs0+2", "k=0"), ("replication0", "copies=0")])
def test_bad_schemes_name_the_value(scheme: str, field: str) -> None:
    with pytest.raises(ValueError, match=field.replace("(", r"\(")):
        make_codec(scheme)


@pytest.mark.parametrize(("backend", "module"), [("isa_l_rs_cauchy", "pyeclib.ec_iface"), ("zfec", "zfec")])
def test_a_missing_library_names_the_extra(backend: str, module: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, module, None)  # makes the import fail as if not installed
    with pytest.raises(MissingExtra, match=r"novacron\[storage\]"):
        ReedSolomon(6, 3, backend)

"""Frames on a byte stream: any split of the stream decodes to the same objects; oversize is refused."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from backends.manager.framing import HEADER, FrameDecoder, FrameTooLarge, encode_frame
from novacron.raft import Entry, Message, MessageType, Snapshot, from_wire, to_wire

frame_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.binary(max_size=200) | st.text(max_size=50),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5),
    max_leaves=20)


@given(st.lists(frame_values, min_size=1, max_size=8), st.lists(st.integers(1, 64), min_size=1, max_size=50))
def test_frames_survive_any_split_of_the_stream(values: list[object], cuts: list[int]) -> None:
    stream = b"".join(encode_frame(v) for v in values)
    decoder = FrameDecoder()
    decoded: list[object] = []
    offset = 0
    for size in cuts * (len(stream) // max(1, sum(cuts)) + 1):
        if offset >= len(stream):
            break
        decoded.extend(decoder.feed(stream[offset:offset + size]))
        offset += size
    decoded.extend(decoder.feed(stream[offset:]))
    assert decoded == values
    assert decoder.pending_bytes() == 0


def test_a_frame_fed_one_byte_at_a_time_appears_only_when_complete() -> None:
    frame = encode_frame({"peer": 3})
    decoder = FrameDecoder()
    for byte in frame[:-1]:
        assert list(decoder.feed(bytes([byte]))) == []
    assert list(decoder.feed(frame[-1:])) == [{"peer": 3}]


def test_raft_messages_round_trip_through_a_frame() -> None:
    message = Message(MessageType.APPEND, 1, 2, 7, index=9, log_term=6, commit=8,
                      entries=(Entry(10, 7, 0, b"\x00cmd"), Entry(11, 7, 1, b"add:4:1,2,3,4")))
    (decoded,) = FrameDecoder().feed(encode_frame([to_wire(message)]))
    assert [from_wire(w) for w in decoded] == [message]


def test_to_wire_names_every_field_of_a_message_in_order() -> None:
    """``to_wire`` is written out by hand; a field added to ``Message`` must be added there too."""
    message = Message(MessageType.SNAPSHOT, 1, 2, 3, snapshot=Snapshot(5, 2, (1, 2, 3), b"state"), context=b"c")
    assert list(to_wire(message)) == [f.name for f in dataclasses.fields(Message)]
    assert from_wire(to_wire(message)) == message


def test_an_oversize_announcement_is_refused_before_the_payload_arrives() -> None:
    decoder = FrameDecoder(max_frame_bytes=1024)
    with pytest.raises(FrameTooLarge):
        list(decoder.feed(HEADER.pack(1025)))


def test_a_frame_at_the_limit_is_accepted_and_one_byte_more_is_not() -> None:
    limit = 64
    exact = encode_frame(b"x" * (limit - 2), max_frame_bytes=limit)  # msgpack bin8: 2 header bytes
    assert list(FrameDecoder(limit).feed(exact)) == [b"x" * (limit - 2)]
    with pytest.raises(FrameTooLarge):
        encode_frame(b"x" * (limit - 1), max_frame_bytes=limit)

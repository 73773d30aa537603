"""The HTTP/2 header decoder against RFC 7541's examples and hpack's decoder (which it
replaces on our connections), then through the HTTP/2 adapter."""

from __future__ import annotations

from typing import Optional, Union

import h2.errors
import h2.events
import hpack
import pytest
from hpack.exceptions import HPACKDecodingError, OversizedHeaderListError
from hpack.huffman_table import decode_huffman
from hypothesis import example, given, settings
from hypothesis import strategies as st

from hypercorn.protocol.errors import HeaderBlockError
from hypercorn.protocol.hpack_decoder import HeaderDecoder, huffman_decode
from hypercorn.protocol.hpack_encoder import _HUFFMAN, encode_integer

from ..conftest import examples
from .test_h2_core import Pair, of_type

Spec = tuple[list[tuple[bytes, bytes, bool]], bool, Optional[int]]  # fields, Huffman, size

# RFC 7541 Appendix C.3 (requests without Huffman coding) and C.4 (the same with it): three
# blocks on one connection, each leaning on the dynamic table the previous ones filled.
C3 = ["828684410f7777772e6578616d706c652e636f6d", "828684be58086e6f2d6361636865",
      "828785bf400a637573746f6d2d6b65790c637573746f6d2d76616c7565"]  # fmt: skip
C4 = ["828684418cf1e3c2e5f23a6ba0ab90f4ff", "828684be5886a8eb10649cbf",
      "828785bf408825a849e95ba97d7f8925a849e95bb8e8b4bf"]  # fmt: skip
C_HEADERS = [
    [(b":method", b"GET"), (b":scheme", b"http"), (b":path", b"/"),
     (b":authority", b"www.example.com")],
    [(b":method", b"GET"), (b":scheme", b"http"), (b":path", b"/"),
     (b":authority", b"www.example.com"), (b"cache-control", b"no-cache")],
    [(b":method", b"GET"), (b":scheme", b"https"), (b":path", b"/index.html"),
     (b":authority", b"www.example.com"), (b"custom-key", b"custom-value")],
]  # fmt: skip
C_TABLE = [  # after the third block, newest first; 164 octets
    (b"custom-key", b"custom-value"),
    (b"cache-control", b"no-cache"),
    (b":authority", b"www.example.com"),
]


@pytest.mark.parametrize("blocks", [C3, C4], ids=["C.3", "C.4"])
def test_rfc_7541_appendix_c_requests(blocks: list[str]) -> None:
    decoder = HeaderDecoder()
    for block, expected in zip(blocks, C_HEADERS, strict=True):
        assert decoder.decode(bytes.fromhex(block)) == expected
    assert decoder.dynamic_entries == C_TABLE


def test_a_table_size_update_with_a_multi_octet_integer() -> None:
    decoder = HeaderDecoder()
    decoder.max_allowed_table_size = 2000
    assert decoder.decode(b"\x3f\x9a\x0a") == []  # 1337 with a 5-bit prefix (C.1.2)
    assert decoder.header_table_size == 1337
    assert decoder.decode(b"\x3f\x80\x80\x80\x80\x00") == []  # 31, five continuations
    assert decoder.header_table_size == 31


def outcome_of(decoder: Union[hpack.Decoder, HeaderDecoder], block: bytes) -> object:
    """The fields decoded, or which kind of error (the only difference h2 makes)."""
    try:
        return [tuple(field) for field in decoder.decode(block, raw=True)]
    except OversizedHeaderListError:
        return "oversized"
    except (HPACKDecodingError, HeaderBlockError):
        return "error"


def assert_same(
    blocks: list[bytes], max_header_list_size: int = 65536, allowed: int = 4096
) -> None:
    """Both decoders, block after block on one connection: the same outcome for each and the
    same dynamic table after it, until the first error (which ends a connection)."""
    theirs, ours = hpack.Decoder(max_header_list_size), HeaderDecoder(max_header_list_size)
    theirs.max_allowed_table_size = ours.max_allowed_table_size = allowed
    for block in blocks:
        outcome = outcome_of(theirs, block)
        assert outcome_of(ours, block) == outcome, block.hex()
        if isinstance(outcome, str):
            return
        assert ours.dynamic_entries == list(theirs.header_table.dynamic_entries)
        assert ours.header_table_size == theirs.header_table_size


NAMES = st.one_of(
    st.sampled_from([name for name, _ in hpack.Encoder().header_table.STATIC_TABLE]),
    st.binary(min_size=1, max_size=30),
)
FIELD = st.tuples(NAMES, st.binary(max_size=200), st.booleans())  # (name, value, sensitive)
BLOCK = st.tuples(
    st.lists(FIELD, max_size=10),
    st.booleans(),  # Huffman
    st.one_of(st.none(), st.integers(0, 4096)),  # a table size the encoder moves to first
)


def encode_blocks(encoder: hpack.Encoder, blocks: list[Spec]) -> list[bytes]:
    encoded = []
    for fields, huffman, table_size in blocks:
        if table_size is not None:
            encoder.header_table_size = table_size
        headers = [
            hpack.NeverIndexedHeaderTuple(name, value) if sensitive else (name, value)
            for name, value, sensitive in fields
        ]
        encoded.append(encoder.encode(headers, huffman=huffman))
    return encoded


@settings(max_examples=examples(400), deadline=None)
@given(st.lists(BLOCK, min_size=1, max_size=6), st.sampled_from([300, 2000, 65536]))
def test_same_fields_and_table_as_hpack_for_what_hpack_encodes(
    blocks: list[Spec], limit: int
) -> None:
    """Indexed fields, literals with and without indexing and never indexed, evictions and
    size updates (small tables evict all the time), Huffman on and off; ``limit`` makes some
    lists too large."""
    assert_same(encode_blocks(hpack.Encoder(), blocks), max_header_list_size=limit)


@settings(max_examples=examples(600), deadline=None)
@given(st.lists(BLOCK, min_size=1, max_size=3), st.data())
@example(blocks=[([(b"a", b"b", False)], False, None)], data=None)
def test_same_outcome_as_hpack_for_damaged_blocks(
    blocks: list[Spec],
    data: Optional[st.DataObject],
) -> None:
    """Valid blocks cut short, with octets changed, or followed by random octets: whatever
    hpack makes of them (fields, an error, a too large list), ours makes too."""
    encoded = encode_blocks(hpack.Encoder(), blocks)
    if data is not None:
        index = data.draw(st.integers(0, len(encoded) - 1))
        block = bytearray(encoded[index])
        for _ in range(data.draw(st.integers(1, 3))):
            action = data.draw(st.sampled_from(["cut", "change", "append"]))
            if action == "cut" and block:
                del block[data.draw(st.integers(0, len(block) - 1)) :]
            elif action == "change" and block:
                block[data.draw(st.integers(0, len(block) - 1))] = data.draw(st.integers(0, 255))
            else:
                block += data.draw(st.binary(min_size=1, max_size=8))
        encoded[index] = bytes(block)
    assert_same(encoded)


@settings(max_examples=examples(600), deadline=None)
@given(st.lists(st.binary(max_size=40), min_size=1, max_size=4))
def test_same_outcome_as_hpack_for_random_octets(blocks: list[bytes]) -> None:
    assert_same(blocks, max_header_list_size=500, allowed=256)


@settings(max_examples=examples(1000), deadline=None)
@given(st.binary(max_size=300))
def test_huffman_round_trip(octets: bytes) -> None:
    assert huffman_decode(_HUFFMAN.encode(octets)) == octets


@settings(max_examples=examples(3000), deadline=None)
@given(st.binary(max_size=12))
@example(b"\xff")  # eight bits of padding
@example(b"\xfe")  # padding that is not EOS's first bits
@example(b"\xff\xff\xff\xfc")  # EOS itself (30 ones), then two bits of padding
# EOS, then bits that would decode if it went unnoticed (a table entry stops at EOS, so the
# rest of its four bits are dropped; after 29 ones, 0 is octet 22; then 7 bits of padding):
@example(bytes.fromhex("ffffffff7f"))  # EOS ends in the second half of an octet
@example(bytes.fromhex("07fffffff7"))  # ... in the first half ('0', 00000, before it)
@example(b"\x1f")  # '0' (00000) then three bits of padding
def test_huffman_same_outcome_as_hpack(octets: bytes) -> None:
    """Any octets: the same string as hpack's decoder, or an error where it has one."""
    try:
        expected: object = decode_huffman(octets)
    except HPACKDecodingError:
        expected = "error"
    try:
        outcome: object = huffman_decode(octets)
    except HeaderBlockError:
        outcome = "error"
    assert outcome == expected


@pytest.mark.parametrize(
    ("block", "why"),
    [
        (b"\x80", "index 0"),
        (b"\xbe", "dynamic index past the table (empty)"),
        (b"\x3f\x80\x80\x80\x80\x80\x00", "a table size (31) in six continuation octets"),
        (b"\xff", "an integer cut short"),
        (b"\x40\x05ab", "a literal name cut short"),
        (b"\x40\x01a", "no value"),
        (b"\x82\x20", "a table size update after a field"),
        (b"\x3f\xe2\x1f", "a table size update above the setting (4096 + 1)"),
        (b"\x00\x81\xff\x00", "a Huffman name of EOS padding longer than 7 bits"),
    ],
)
def test_errors(block: bytes, why: str) -> None:
    assert outcome_of(HeaderDecoder(), block) == "error"
    assert outcome_of(hpack.Decoder(), block) == "error"  # the same verdict as hpack


def test_a_small_block_that_expands_past_the_limit_stops_there() -> None:
    """An "HPACK bomb": one entry of 4,033 octets (RFC 7541's size), then one-octet
    references to it. The list's size is counted field by field."""
    block = b"\x40\x01x" + encode_integer(4000, 7, 0) + b"v" * 4000  # literal, indexed
    assert len(HeaderDecoder(65536).decode(block + b"\xbe" * 15)) == 16  # 64,528 octets
    with pytest.raises(OversizedHeaderListError):
        HeaderDecoder(65536).decode(block + b"\xbe" * 16)
    with pytest.raises(OversizedHeaderListError):
        HeaderDecoder(65536).decode(block + b"\xbe" * 100_000)


def test_a_table_the_peer_did_not_shrink_after_our_setting_is_an_error() -> None:
    decoder = HeaderDecoder()
    decoder.decode(b"\x40\x01a\x01b")
    decoder.max_allowed_table_size = 0  # the peer acknowledged SETTINGS_HEADER_TABLE_SIZE 0
    with pytest.raises(HeaderBlockError):
        decoder.decode(b"\x82")  # no size update first
    decoder = HeaderDecoder()
    decoder.decode(b"\x40\x01a\x01b")
    decoder.max_allowed_table_size = 0
    assert decoder.decode(b"\x20\x82") == [(b":method", b"GET")]
    assert decoder.dynamic_entries == []


def test_an_entry_larger_than_the_table_empties_it() -> None:
    decoder = HeaderDecoder()
    decoder.decode(b"\x3f\x21" + b"\x40\x01a\x01b")  # table size 64: a + b + 32 = 34 fits
    assert decoder.dynamic_entries == [(b"a", b"b")]
    decoder.decode(b"\x40\x01c\x1f" + b"d" * 31)  # 1 + 31 + 32 = 64: fits, evicts a
    assert decoder.dynamic_entries == [(b"c", b"d" * 31)]
    decoder.decode(b"\x40\x01e\x20" + b"f" * 32)  # 65: larger than the table
    assert decoder.dynamic_entries == []


def test_the_adapter_decodes_with_it_and_answers_a_bad_block_with_compression_error() -> None:
    pair = Pair()
    assert isinstance(pair.server.inner._h2.decoder, HeaderDecoder)  # type: ignore[attr-defined]
    pair.request(b"/a")
    [stream] = pair.streams()
    assert stream.scope["path"] == "/a"
    # HEADERS on stream 3 (END_STREAM, END_HEADERS) whose block ends inside an integer
    frame = bytes.fromhex("000002010500000003") + b"\x82\xff"
    pair.server.receive_data(frame, 0.0)
    [goaway] = of_type(
        pair.client.receive_data(pair.server.data_to_send()), h2.events.ConnectionTerminated
    )
    assert goaway.error_code == h2.errors.ErrorCodes.COMPRESSION_ERROR
    assert pair.server.closed

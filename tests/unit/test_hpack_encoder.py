"""The HTTP/2 header encoder against RFC 7541's examples and hpack's decoder."""

from __future__ import annotations

import hpack
import pytest
from hpack.struct import NeverIndexedHeaderTuple
from hypothesis import given, settings
from hypothesis import strategies as st

from hypercorn.protocol import hpack_encoder
from hypercorn.protocol.hpack_encoder import (
    HeaderEncoder,
    encode_field,
    encode_integer,
    encode_string,
)
from tests.conftest import examples


def test_integers_as_in_rfc_7541_appendix_c1() -> None:
    assert encode_integer(10, 5, 0) == b"\x0a"  # C.1.1
    assert encode_integer(1337, 5, 0) == b"\x1f\x9a\x0a"  # C.1.2
    assert encode_integer(42, 8, 0) == b"\x2a"  # C.1.3
    assert encode_integer(31, 5, 0xE0) == b"\xff\x00"  # exactly the prefix: one more octet


def test_fields_as_in_rfc_7541_appendix_c2() -> None:
    assert encode_field(b":method", b"GET") == b"\x82"  # C.2.4: indexed, static table
    # C.2.2 without indexing, indexed name; the value is Huffman-coded (shorter), as C.4 does
    assert encode_field(b":path", b"/sample/path") == b"\x04" + encode_string(b"/sample/path")
    assert encode_string(b"www.example.com") == bytes.fromhex("8cf1e3c2e5f23a6ba0ab90f4ff")  # C.4.1
    assert encode_string(b"\x00\x01") == b"\x02\x00\x01"  # Huffman would be longer: raw
    # a name outside the static table: literal name, no indexing (0000 0000)
    assert encode_field(b"x-a", b"1") == b"\x00" + encode_string(b"x-a") + encode_string(b"1")
    # never indexed (0001): status 200 is in the static table, but not as a reference
    assert encode_field(b":status", b"200", indexable=False)[0] == 0x18


def test_the_block_starts_with_a_table_size_update_after_each_settings_change() -> None:
    encoder = HeaderEncoder()
    assert encoder.encode([(b":status", b"200")]) == b"\x20\x88"  # size 0, then index 8
    assert encoder.encode([(b":status", b"200")]) == b"\x88"
    encoder.header_table_size = 256  # what h2 does on the peer's SETTINGS_HEADER_TABLE_SIZE
    assert encoder.header_table_size == 256
    assert encoder.encode([(b":status", b"404")]) == b"\x20\x8d"


def test_credentials_are_never_indexed_and_never_cached() -> None:
    encoder = HeaderEncoder()
    decoder = hpack.Decoder()
    for _ in range(2):
        [decoded] = decoder.decode(encoder.encode([(b"authorization", b"secret")]), raw=True)
        assert decoded == (b"authorization", b"secret")
        assert isinstance(decoded, NeverIndexedHeaderTuple)
    assert (b"authorization", b"secret") not in hpack_encoder._CACHE
    [decoded] = decoder.decode(encoder.encode([(b"x-a", b"1")]), raw=True)
    assert not isinstance(decoded, NeverIndexedHeaderTuple)


def test_the_cache_is_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hpack_encoder, "_CACHE", {})
    encoder = HeaderEncoder()
    for i in range(hpack_encoder.CACHE_LIMIT + 10):
        encoder.encode([(b"date", b"%d" % i)])
    assert 0 < len(hpack_encoder._CACHE) <= hpack_encoder.CACHE_LIMIT
    large = (b"x-large", b"v" * hpack_encoder.CACHED_FIELD_SIZE)  # too large to keep
    assert hpack.Decoder().decode(HeaderEncoder().encode([large]), raw=True) == [large]
    assert large not in hpack_encoder._CACHE


NAMES = st.one_of(
    st.sampled_from([name for name, _ in hpack.Encoder().header_table.STATIC_TABLE]),
    st.binary(min_size=1, max_size=40),
)
Field = tuple[bytes, bytes]
FIELDS = st.lists(st.tuples(NAMES, st.binary(max_size=300)), max_size=12)


@settings(max_examples=examples(300), deadline=None)
@given(blocks=st.lists(st.tuples(FIELDS, st.booleans()), min_size=1, max_size=5))
def test_hpack_decodes_what_it_encodes(
    blocks: list[tuple[list[tuple[bytes, bytes]], bool]],
) -> None:
    """Any fields, over several blocks on one connection, with table-size changes between
    some of them (the decoder's table limit lowered to 0 at once, as a peer's SETTINGS
    would): hpack's decoder reads back exactly what was encoded."""
    encoder = HeaderEncoder()
    decoder = hpack.Decoder()
    for fields, resize in blocks:
        if resize:
            encoder.header_table_size = 0
            decoder.header_table_size = 0
            decoder.max_allowed_table_size = 0
        assert decoder.decode(encoder.encode(fields), raw=True) == fields
        assert len(decoder.header_table.dynamic_entries) == 0

"""The HTTP/2 connection's header encoder: HPACK (RFC 7541) without the dynamic table.

h2 encodes header blocks with hpack's encoder, which indexes every field in the dynamic
table (RFC 7541 section 2.3.2) and so keeps per-connection state that makes each block a
fresh computation. This encoder never adds to the dynamic table: a field is either a static
table entry (section 6.1) or a literal that is not indexed (section 6.2.2), or never
indexed (section 6.2.3) for credentials (``SENSITIVE``). The encoding of a field then depends on
the field alone, so it is computed once per process and reused (``_CACHE``), and a
response's block costs a dictionary lookup per field.

The cost is size: a repeated field that hpack would send as a one-byte index is sent as
its static name index and its (Huffman-coded when shorter) value, typically 10 to 30 bytes.
For responses that is what nginx's encoder has always done; the decoder's work is no larger.

Table size: the block after any change to the peer's SETTINGS_HEADER_TABLE_SIZE (and the
first block of the connection) starts with a dynamic table size update to 0 (section 6.3),
which is never above any limit the peer can set and tells it our table is empty.

The decoder side (requests, stateful by nature) is ``hpack_decoder``.
"""

from __future__ import annotations

from collections.abc import Iterable

from hpack.huffman import HuffmanEncoder
from hpack.huffman_constants import REQUEST_CODES, REQUEST_CODES_LENGTH
from hpack.table import HeaderTable

_STATIC_FIELDS: dict[tuple[bytes, bytes], int] = {}
_STATIC_NAMES: dict[bytes, int] = {}
for _index, (_name, _value) in enumerate(HeaderTable.STATIC_TABLE, start=1):
    _STATIC_FIELDS.setdefault((_name, _value), _index)
    _STATIC_NAMES.setdefault(_name, _index)

_HUFFMAN = HuffmanEncoder(REQUEST_CODES, REQUEST_CODES_LENGTH)
_TABLE_SIZE_ZERO = b"\x20"  # 001 + size 0 in a 5-bit prefix (section 6.3)
_CACHE: dict[tuple[bytes, bytes], bytes] = {}
CACHE_LIMIT = 4096  # fields; the cache is emptied when full (dates and lengths vary)
CACHED_FIELD_SIZE = 256  # bytes of name and value: a larger field is encoded every time
# Credentials: never indexed (section 7.1.3: no intermediary may index them either), never
# cached here (the fields h2 marks sensitive when it normalises headers itself).
SENSITIVE = frozenset((b"authorization", b"proxy-authorization"))


def encode_integer(value: int, prefix_bits: int, first_byte: int) -> bytes:
    """An integer with an N-bit prefix (section 5.1); ``first_byte`` holds the bits above
    the prefix."""
    limit = (1 << prefix_bits) - 1
    if value < limit:
        return bytes((first_byte | value,))
    out = bytearray((first_byte | limit,))
    value -= limit
    while value >= 128:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def encode_string(value: bytes) -> bytes:
    """A string literal (section 5.2), Huffman-coded when that is shorter."""
    coded = _HUFFMAN.encode(value)
    if len(coded) < len(value):
        return encode_integer(len(coded), 7, 0x80) + coded
    return encode_integer(len(value), 7, 0) + value


def encode_field(name: bytes, value: bytes, indexable: bool = True) -> bytes:
    """One header field, with no reference to (or change of) the dynamic table."""
    if indexable:
        index = _STATIC_FIELDS.get((name, value))
        if index is not None:
            return encode_integer(index, 7, 0x80)  # indexed (section 6.1)
    # Literal without indexing (0000, section 6.2.2) or never indexed (0001, 6.2.3).
    first_byte = 0x00 if indexable else 0x10
    name_index = _STATIC_NAMES.get(name)
    if name_index is not None:
        return encode_integer(name_index, 4, first_byte) + encode_string(value)
    return bytes((first_byte,)) + encode_string(name) + encode_string(value)


class HeaderEncoder:
    """What h2's connection uses of hpack's ``Encoder``: ``encode()`` and the
    ``header_table_size`` its peer's settings set."""

    __slots__ = ("_size_update_due", "_table_size")

    def __init__(self) -> None:
        self._table_size = 4096
        self._size_update_due = True  # our table is 0 bytes from the first block on

    @property
    def header_table_size(self) -> int:
        return self._table_size

    @header_table_size.setter
    def header_table_size(self, value: int) -> None:
        self._table_size = value
        self._size_update_due = True

    def encode(self, headers: Iterable[tuple[bytes, bytes]]) -> bytes:
        """The header block for ``headers``, pairs of bytes."""
        block: list[bytes] = []
        if self._size_update_due:
            self._size_update_due = False
            block.append(_TABLE_SIZE_ZERO)
        cache = _CACHE
        for name, value in headers:
            key = (name, value)
            encoded = cache.get(key)
            if encoded is None:
                sensitive = name in SENSITIVE
                encoded = encode_field(name, value, indexable=not sensitive)
                if not sensitive and len(name) + len(value) <= CACHED_FIELD_SIZE:
                    if len(cache) >= CACHE_LIMIT:
                        cache.clear()
                    cache[key] = encoded
            block.append(encoded)
        return b"".join(block)

"""The HTTP/2 connection's header decoder: HPACK (RFC 7541) for the blocks clients send.

h2 decodes with hpack's decoder, which spends most of a request block's time on Python
around the bytes: a sliced memoryview, a ``HeaderTuple`` and a debug-level log call per
field, each dynamic-table lookup through two methods. This decoder does the same job in one
loop over the block and is compiled with the protocol core (mypyc). h2 keeps using it
through the part of hpack's ``Decoder`` interface it calls: ``decode(block, raw=True)``,
``max_header_list_size`` and ``max_allowed_table_size`` (the adapter installs it on each
connection). A block that cannot be decoded raises ``HeaderBlockError``, which h2 lets
through and the adapter answers with GOAWAY COMPRESSION_ERROR (RFC 9113 section 4.3;
hpack's errors, wrapped by h2, became PROTOCOL_ERROR); a list past ``max_header_list_size``
raises hpack's ``OversizedHeaderListError``, which h2 answers with ENHANCE_YOUR_CALM, as
before.

What it enforces, as hpack does (``tests/unit/test_hpack_decoder.py`` holds the two to the
same results, and to RFC 7541 Appendix C):
- an index of 0 or past the dynamic table is an error (section 2.3.3);
- a dynamic table size update only before the block's first field (section 4.2) and never
  above ``max_allowed_table_size``, the SETTINGS_HEADER_TABLE_SIZE the peer acknowledged;
  after a block the table must fit that setting (a peer that did not shrink it is wrong);
- an entry larger than the whole table empties it (section 4.4);
- integers of at most five continuation octets (section 5.1 lets a decoder limit them);
- truncated integers and strings, and Huffman-coded strings holding EOS or ending in
  padding that is longer than seven bits or not EOS's first bits (section 5.2), are errors;
- the decoded list, counted as RFC 7541's entry sizes (name + value + 32), may not exceed
  ``max_header_list_size``: checked field by field, so a small block that expands to a huge
  list (a "HPACK bomb") stops at the limit.

Fields never to be indexed (section 6.2.3) come back as plain tuples, like the rest: a
server hands them to its application, it does not re-encode them.
"""

from __future__ import annotations

from typing import Union

from hpack.exceptions import OversizedHeaderListError
from hpack.huffman_constants import REQUEST_CODES, REQUEST_CODES_LENGTH
from hpack.table import HeaderTable

from .errors import HeaderBlockError

Field = tuple[bytes, bytes]

# Index 0 is not a field (section 2.3.3); the static table is 1..61 (Appendix A).
_STATIC: list[Field] = [(b"", b""), *HeaderTable.STATIC_TABLE]
_STATIC_LAST = len(_STATIC) - 1
ENTRY_OVERHEAD = 32  # section 4.1
DEFAULT_TABLE_SIZE = 4096  # SETTINGS_HEADER_TABLE_SIZE's initial value (RFC 9113 6.5.2)
_MAX_SHIFT = 28  # five continuation octets: 7 * 4 bits shifted before the last


class HeaderDecoder:
    """One connection's HPACK decoding context (its dynamic table)."""

    def __init__(self, max_header_list_size: int = 65536) -> None:
        self.max_header_list_size = max_header_list_size
        self.max_allowed_table_size = DEFAULT_TABLE_SIZE
        self._table_size = DEFAULT_TABLE_SIZE  # the size the peer's encoder last set
        self._entries: list[Field] = []  # the dynamic table, newest last
        self._used = 0  # sum of the entries' sizes

    @property
    def header_table_size(self) -> int:
        return self._table_size

    @property
    def dynamic_entries(self) -> list[Field]:
        """The dynamic table, newest first (index 62 first)."""
        return self._entries[::-1]

    def decode(self, data: Union[bytes, bytearray, memoryview], raw: bool = True) -> list[Field]:
        if not raw:
            raise ValueError("HeaderDecoder decodes to bytes only (raw=True)")
        block = data if isinstance(data, bytes) else bytes(data)
        end = len(block)
        fields: list[Field] = []
        inflated = 0
        limit = self.max_header_list_size
        pos = 0
        while pos < end:
            first = block[pos]
            if first & 0x80:  # indexed field (6.1)
                index, pos = _integer(block, pos, 0x7F)
                field = self._field(index)
            elif first & 0x40 or not first & 0x20:  # literal (6.2.1, 6.2.2, 6.2.3)
                index, pos = _integer(block, pos, 0x3F if first & 0x40 else 0x0F)
                if index:
                    name = self._field(index)[0]
                else:
                    name, pos = _string(block, pos)
                value, pos = _string(block, pos)
                field = (name, value)
                if first & 0x40:
                    self._add(field)
            else:  # dynamic table size update (6.3)
                if fields:
                    raise HeaderBlockError("Table size update not at the start of the block")
                size, pos = _integer(block, pos, 0x1F)
                if size > self.max_allowed_table_size:
                    raise HeaderBlockError("Encoder exceeded max allowable table size")
                self._table_size = size
                self._evict()
                continue
            fields.append(field)
            inflated += len(field[0]) + len(field[1]) + ENTRY_OVERHEAD
            if inflated > limit:
                raise OversizedHeaderListError(
                    f"A header list larger than {limit} has been received"
                )
        if self._table_size > self.max_allowed_table_size:
            raise HeaderBlockError("Encoder did not shrink table size to within the max")
        return fields

    def _field(self, index: int) -> Field:
        if 0 < index <= _STATIC_LAST:
            return _STATIC[index]
        dynamic = index - _STATIC_LAST  # 1 is the newest entry
        if index <= 0 or dynamic > len(self._entries):
            raise HeaderBlockError(f"Invalid table index {index}")
        return self._entries[-dynamic]

    def _add(self, field: Field) -> None:
        size = len(field[0]) + len(field[1]) + ENTRY_OVERHEAD
        if size > self._table_size:
            self._entries.clear()
            self._used = 0
            return
        self._entries.append(field)
        self._used += size
        self._evict()

    def _evict(self) -> None:
        used = self._used
        entries = self._entries
        dropped = 0
        while used > self._table_size:
            name, value = entries[dropped]
            used -= len(name) + len(value) + ENTRY_OVERHEAD
            dropped += 1
        del entries[:dropped]
        self._used = used


def _integer(block: bytes, pos: int, mask: int) -> tuple[int, int]:
    """The integer with a ``mask``-wide prefix at ``pos`` (section 5.1), and the position
    after it."""
    if pos >= len(block):
        raise HeaderBlockError("Truncated header block")
    value = block[pos] & mask
    pos += 1
    if value < mask:
        return value, pos
    shift = 0
    while True:
        if pos >= len(block):
            raise HeaderBlockError("Truncated integer in header block")
        octet = block[pos]
        pos += 1
        value += (octet & 0x7F) << shift
        if not octet & 0x80:
            return value, pos
        shift += 7
        if shift > _MAX_SHIFT:
            raise HeaderBlockError("Variable integer representation is too long")


def _string(block: bytes, pos: int) -> tuple[bytes, int]:
    """The string literal at ``pos`` (section 5.2), and the position after it."""
    if pos >= len(block):
        raise HeaderBlockError("Truncated header block")
    huffman = block[pos] & 0x80
    length, pos = _integer(block, pos, 0x7F)
    end = pos + length
    if end > len(block):
        raise HeaderBlockError("Truncated header block")
    octets = block[pos:end]
    return (huffman_decode(octets) if huffman else octets), end


# Huffman decoding (section 5.2, the code of Appendix B) four bits at a time. The code's
# tree has 257 leaves (256 octets and EOS) and 256 inner nodes; a state is an inner node
# (0 the root). Four bits from any state complete at most one symbol (the shortest code is
# five bits long), so one table entry per state and nibble says where the walk ends and
# what it emitted: the next state times 16 in bits 0-11 (the index of its row), the octet
# in bits 12-19 with bit 20 set when there is one (so such entries are >= _EMITS), or -1
# when the walk reached EOS, which must not appear in a string. A string may end only at
# the root or within seven bits of it along the all-ones path (EOS's first bits: padding).
_EMITS = 1 << 12
_EMITTED = 1 << 20


def _huffman_tables() -> tuple[list[int], frozenset[int]]:
    children: list[list[int]] = [[-1, -1]]  # inner nodes; a leaf is stored as -1 - symbol
    for symbol in range(257):
        code, length = REQUEST_CODES[symbol], REQUEST_CODES_LENGTH[symbol]
        node = 0
        for shift in range(length - 1, 0, -1):
            bit = (code >> shift) & 1
            if children[node][bit] == -1:
                children[node][bit] = len(children)
                children.append([-1, -1])
            node = children[node][bit]
        children[node][code & 1] = -1 - symbol
    fsm: list[int] = []
    for state in range(len(children)):
        for nibble in range(16):
            node, emitted = state, 0
            for shift in (3, 2, 1, 0):
                child = children[node][(nibble >> shift) & 1]
                if child >= 0:
                    node = child
                    continue
                if child == -1 - 256:  # EOS
                    emitted = -1
                    break
                emitted = _EMITTED | (-1 - child) << 12
                node = 0
            fsm.append(-1 if emitted < 0 else emitted | node << 4)
    end_rows = []  # the root and the first seven nodes of the all-ones path, as rows
    node = 0
    for _ in range(8):
        end_rows.append(node << 4)
        node = children[node][1]
    return fsm, frozenset(end_rows)


_FSM, _END_ROWS = _huffman_tables()


def huffman_decode(octets: bytes) -> bytes:
    """A Huffman-coded string literal's octets (section 5.2)."""
    fsm = _FSM
    out = bytearray()
    row = 0
    for octet in octets:
        entry = fsm[row | octet >> 4]
        if entry >= _EMITS:
            out.append(entry >> 12 & 0xFF)
        elif entry < 0:
            raise HeaderBlockError("EOS in a Huffman-coded string")
        entry = fsm[(entry & 0xFFF) | octet & 0x0F]
        if entry >= _EMITS:
            out.append(entry >> 12 & 0xFF)
        elif entry < 0:
            raise HeaderBlockError("EOS in a Huffman-coded string")
        row = entry & 0xFFF
    if row not in _END_ROWS:
        raise HeaderBlockError("Huffman-coded string with invalid padding")
    return bytes(out)

"""Messages the server frames itself (no extension negotiated) are byte for byte what wsproto
would send, at every length encoding's edges, and a client parses them back."""

from __future__ import annotations

import pytest
from wsproto.connection import Connection, ConnectionType
from wsproto.events import BytesMessage, TextMessage

from hypercorn.protocol.ws_stream import OPCODE_BINARY, OPCODE_TEXT, plain_frame

SIZES = [0, 1, 125, 126, 127, 65535, 65536, 70000]


@pytest.mark.parametrize("size", SIZES)
def test_binary_frames_match_wsproto(size: int) -> None:
    payload = bytes(i % 251 for i in range(size))
    expected = Connection(ConnectionType.SERVER).send(BytesMessage(data=payload))
    assert plain_frame(OPCODE_BINARY, payload) == expected


@pytest.mark.parametrize("size", SIZES)
def test_text_frames_match_wsproto_and_parse_back(size: int) -> None:
    text = ("é" * size)[: size // 2] + "x" * (size - size // 2)
    expected = Connection(ConnectionType.SERVER).send(TextMessage(data=text))
    frame = plain_frame(OPCODE_TEXT, text.encode("utf-8"))
    assert frame == expected
    client = Connection(ConnectionType.CLIENT)
    client.receive_data(frame)
    events = list(client.events())
    assert len(events) == 1 and isinstance(events[0], TextMessage)
    assert events[0].data == text and events[0].message_finished

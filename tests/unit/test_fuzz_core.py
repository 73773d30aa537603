"""Arbitrary bytes into the protocol core (HTTP/1.1 on both parsers, HTTP/2 after its
preface), split anywhere, with an application that answers whatever it is given: nothing may
raise, hang (every call returns, and the input is finite), or grow without bound (what the
core sends back stays proportional to what it was sent). ``make fuzz`` runs it much longer.
"""

from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from hypercorn.config import Config
from hypercorn.protocol import ConnectionInfo
from hypercorn.protocol.connection import HTTPConnection
from hypercorn.protocol.h2 import PREFACE
from tests.conftest import examples

PREFIXES = [
    b"",
    b"GET / HTTP/1.1\r\nHost: a\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost: a\r\nUpgrade: h2c\r\nConnection: Upgrade, HTTP2-Settings\r\n"
    b"HTTP2-Settings: AAMAAABkAAQAoAAAAAIAAAAA\r\n\r\n",
    PREFACE + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00",
]


def answer_everything(conn: HTTPConnection) -> None:
    for stream in conn.pop_new_streams():
        while True:
            message = stream.app_receive_nowait()
            if message is None or message["type"] != "http.request" or not message["more_body"]:
                break
        if stream.scope["type"] == "websocket":
            stream.app_send({"type": "websocket.accept"})
            stream.app_send({"type": "websocket.send", "text": "hi"})
        else:
            stream.app_send({"type": "http.response.start", "status": 200})
            stream.app_send({"type": "http.response.body", "body": b"ok"})


@pytest.mark.parametrize("parser", ["h11", "httptools"])
@settings(max_examples=examples(200), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.sampled_from(PREFIXES),
    st.lists(st.binary(min_size=1, max_size=200), min_size=1, max_size=8),
)
def test_arbitrary_input_never_breaks_the_core(
    parser: str, prefix: bytes, pieces: list[bytes]
) -> None:
    if parser == "httptools":
        pytest.importorskip("httptools")
    config = Config()
    config.http1_parser = parser  # type: ignore[assignment]
    conn = HTTPConnection(config, ConnectionInfo(("127.0.0.1", 1), ("127.0.0.1", 80)), 0.0)
    sent = 0
    received = 0
    now = 0.0
    for piece in [prefix, *pieces] if prefix else pieces:
        if conn.closed:
            break
        sent += len(piece)
        conn.receive_data(piece, now)
        answer_everything(conn)
        received += len(conn.data_to_send())
        now += 1.0
        deadline = conn.next_deadline(now)
        if deadline is not None and deadline <= now:
            conn.handle_timer(now)
            received += len(conn.data_to_send())
    conn.receive_data(b"", now)
    answer_everything(conn)
    received += len(conn.data_to_send())
    conn.connection_lost()
    # Every answer is a bounded function of the input: a few responses or frames per piece.
    assert received <= 2000 + 50 * sent, (received, sent)

"""Hostile clients against a real server on every backend. Each test mounts one attack from
THREAT_MODEL.md, shows the bound that holds, and shows a well-behaved client on another
connection being served while the attack is in progress.

(HTTP/2 rapid reset, "made you reset" and CONTINUATION floods live in tests/e2e/test_http2.py;
QUIC packet floods in tests/unit/test_quic.py and below.)
"""

from __future__ import annotations

import asyncio
import base64
import os
import socket
import ssl
import struct
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import h2.config
import h2.connection
import h2.settings
import httpx
import pytest

from tests.conftest import RunningServer

Serve = Callable[..., RunningServer]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.accept"})
        while (await receive())["type"] != "websocket.disconnect":
            pass
        return
    if scope["type"] != "http":
        return
    if scope["path"] == "/big":
        await send({"type": "http.response.start", "status": 200})
        for _ in range(400):  # 100 MiB, far more than any buffer
            await send({"type": "http.response.body", "body": b"x" * 262144, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        return
    while (await receive()).get("more_body"):
        pass
    await send({"type": "http.response.start", "status": 200})
    await send({"type": "http.response.body", "body": b"ok"})


def well_behaved(server: RunningServer) -> None:
    """A normal client on its own connection gets its answer promptly."""
    started = time.monotonic()
    response = httpx.get(server.url + "/", timeout=5)
    assert response.status_code == 200 and response.text == "ok"
    assert time.monotonic() - started < 2


@contextmanager
def connection(server: RunningServer, timeout: float = 5) -> Iterator[socket.socket]:
    sock = socket.create_connection(("127.0.0.1", server.port), timeout=timeout)
    try:
        yield sock
    finally:
        sock.close()


def read_all(sock: socket.socket, deadline: float = 5) -> bytes:
    sock.settimeout(deadline)
    data = bytearray()
    try:
        while chunk := sock.recv(65536):
            data += chunk
    except (TimeoutError, ConnectionResetError):
        pass
    return bytes(data)


def flood_until_stalled(sock: socket.socket, frame: bytes, limit: int = 64 * 1024 * 1024) -> int:
    """Send ``frame`` repeatedly without reading; return how much was accepted before the
    server stopped reading (the send blocks for a second). Fails if ``limit`` bytes went in."""
    sock.setblocking(False)
    batch = frame * max(1, 65536 // len(frame))
    pending = batch
    sent = 0
    stalled_since: float | None = None
    while sent < limit:
        try:
            count = sock.send(pending)
            sent += count
            pending = pending[count:] or batch  # a partial send: finish the frame first
            stalled_since = None
        except BlockingIOError:
            stalled_since = stalled_since or time.monotonic()
            if time.monotonic() - stalled_since > 1.0:
                return sent
            time.sleep(0.01)
    raise AssertionError(f"the server kept reading: {sent} bytes of unanswered frames")


# ------------------------------------------------------------------ HTTP/1.1


def test_slowloris_head_gets_408(serve: Serve) -> None:
    server = serve(app, request_header_timeout=1.0)
    with connection(server) as sock:
        started = time.monotonic()
        sock.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n")
        for _ in range(3):
            sock.sendall(b"X-Slow: 1\r\n")
            well_behaved(server)
            time.sleep(0.2)
        answer = read_all(sock)
        assert answer.startswith(b"HTTP/1.1 408 ")
        assert time.monotonic() - started < 3


def test_stalled_body_is_abandoned(serve: Serve) -> None:
    server = serve(app, request_body_timeout=1.0)
    with connection(server) as sock:
        started = time.monotonic()
        sock.sendall(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n0123456789")
        well_behaved(server)
        answer = read_all(sock)
        assert answer.startswith(b"HTTP/1.1 408 ")
        assert time.monotonic() - started < 3


def test_oversized_head_gets_431(serve: Serve) -> None:
    server = serve(app)
    with connection(server) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + b"v" * 70000 + b"\r\n\r\n")
        assert read_all(sock).startswith(b"HTTP/1.1 431 ")
    well_behaved(server)


@pytest.mark.parametrize(
    "smuggle",
    [
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nContent-Length: 4\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n4\nabcd\n0\n\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: x, chunked\r\n\r\n",
        b"POST / HTTP/1.1\r\nHost: a\r\nX: y\r\n Transfer-Encoding: chunked\r\n\r\n",
        b"POST / HTTP/1.1\nHost: a\nContent-Length: 4\n\n",
    ],
    ids=["cl-te", "cl-cl", "bare-lf-chunks", "te-list", "obs-fold", "bare-lf-head"],
)
def test_request_smuggling_shapes_are_refused(serve: Serve, smuggle: bytes) -> None:
    """The would-be smuggled second request ("GET /admin") never reaches the application."""
    seen: list[str] = []

    async def recording(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            seen.append(scope["path"])
        await app(scope, receive, send)

    server = serve(recording)
    with connection(server) as sock:
        sock.sendall(smuggle + b"0\r\n\r\nGET /admin HTTP/1.1\r\nHost: a\r\n\r\n")
        answer = read_all(sock)
    assert answer.startswith((b"HTTP/1.1 400 ", b"HTTP/1.1 501 ")), answer[:80]
    assert answer.count(b"HTTP/1.1 ") == 1
    assert "/admin" not in seen
    well_behaved(server)


def test_connection_flood_is_bounded_by_max_connections(serve: Serve) -> None:
    server = serve(app, max_connections=20)
    with httpx.Client(timeout=5) as keeper:  # a client that connected before the flood
        assert keeper.get(server.url).status_code == 200
        flood = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(60)]
        try:
            time.sleep(0.3)
            closed = 0
            for sock in flood:
                sock.settimeout(0.05)
                try:
                    if sock.recv(1) == b"":
                        closed += 1
                except TimeoutError:
                    pass
                except ConnectionResetError:
                    closed += 1
            assert closed >= 60 - 19  # everything beyond the limit was refused at once
            assert keeper.get(server.url).status_code == 200  # served meanwhile
        finally:
            for sock in flood:
                sock.close()
    time.sleep(0.2)
    well_behaved(server)


def test_slow_reader_of_a_large_response_does_not_buffer_it(serve: Serve) -> None:
    server = serve(app)
    with connection(server) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.sendall(b"GET /big HTTP/1.1\r\nHost: a\r\n\r\n")
        sock.recv(1000)  # the response has started; then this client stops reading
        time.sleep(1.0)
        well_behaved(server)
        # 100 MiB were offered; what the server buffered is its transport's high-water mark,
        # so the process has not grown by anything like that.
        assert rss_mib() < 400


def rss_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


# ------------------------------------------------------------------ HTTP/2


def h2_connection(settings: dict[int, int] | None = None) -> h2.connection.H2Connection:
    conn = h2.connection.H2Connection(
        h2.config.H2Configuration(client_side=True, header_encoding=None)
    )
    conn.initiate_connection()
    if settings:
        conn.update_settings(settings)
    return conn


def frame(kind: int, flags: int, stream_id: int, payload: bytes = b"") -> bytes:
    return (
        struct.pack(">I", len(payload))[1:]
        + bytes([kind, flags])
        + struct.pack(">I", stream_id)
        + payload
    )


@pytest.mark.parametrize(
    "flood",
    [frame(0x4, 0, 0), frame(0x6, 0, 0, b"12345678")],  # empty SETTINGS, PING
    ids=["settings", "ping"],
)
def test_h2_control_frame_flood_without_reading(serve: Serve, flood: bytes) -> None:
    """Every SETTINGS or PING asks for an answer; a client that never reads them makes the
    server stop reading, instead of growing its output buffer."""
    # A connection without streams is idle after keep_alive_timeout, and closing it lets the
    # flood drain (for the 2 s linger); the flood can take longer than the default 5 s to fill
    # the kernel's buffers on a slow machine, so the timeout is moved out of the way.
    server = serve(app, keep_alive_timeout=60)
    # The client runs in this process: warmed up first, so that what is measured below is
    # the server, not httpx importing its modules while the server's thread holds the GIL.
    well_behaved(server)
    with connection(server) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sock.sendall(h2_connection().data_to_send())
        accepted = flood_until_stalled(sock, flood)
        assert accepted < 32 * 1024 * 1024
        well_behaved(server)


def test_h2_zero_window_stall_holds_only_its_stream(serve: Serve) -> None:
    server = serve(app)
    conn = h2_connection({h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 0})
    with connection(server) as sock:
        stream_id = conn.get_next_available_stream_id()
        conn.send_headers(
            stream_id,
            [(b":method", b"GET"), (b":path", b"/big"), (b":scheme", b"http"),
             (b":authority", b"a")],
            end_stream=True,
        )  # fmt: skip
        sock.sendall(conn.data_to_send())
        time.sleep(0.5)
        well_behaved(server)
        # Other streams on the same connection are served too (once their window opens).
        second = conn.get_next_available_stream_id()
        conn.send_headers(
            second,
            [(b":method", b"GET"), (b":path", b"/"), (b":scheme", b"http"), (b":authority", b"a")],
            end_stream=True,
        )
        conn.increment_flow_control_window(1 << 20, stream_id=second)
        sock.sendall(conn.data_to_send())
        got_ok = False
        sock.settimeout(5)
        while not got_ok:
            data = sock.recv(65536)
            assert data, "the server closed the connection"
            for event in conn.receive_data(data):
                if getattr(event, "stream_id", None) == second and getattr(event, "data", b""):
                    got_ok = got_ok or event.data == b"ok"
            sock.sendall(conn.data_to_send())


# ------------------------------------------------------------------ WebSockets


def ws_handshake(sock: socket.socket) -> None:
    key = base64.b64encode(os.urandom(16))
    sock.sendall(
        b"GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " + key + b"\r\n\r\n"
    )
    response = b""
    while b"\r\n\r\n" not in response:
        response += sock.recv(1024)
    assert response.startswith(b"HTTP/1.1 101 ")


def ws_frame(opcode: int, payload: bytes, fin: bool = True) -> bytes:
    mask = os.urandom(4)
    masked = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
    header = bytes([(0x80 if fin else 0) | opcode])
    if len(payload) < 126:
        header += bytes([0x80 | len(payload)])
    else:
        header += bytes([0x80 | 126]) + struct.pack(">H", len(payload))
    return header + mask + masked


def test_websocket_ping_flood_without_reading(serve: Serve) -> None:
    server = serve(app)
    with connection(server) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        ws_handshake(sock)
        accepted = flood_until_stalled(sock, ws_frame(0x9, b"p" * 100))
        assert accepted < 32 * 1024 * 1024
        well_behaved(server)


def test_websocket_endless_fragments_get_1009(serve: Serve) -> None:
    server = serve(app, websocket_max_message_size=1024 * 1024)
    with connection(server) as sock:
        ws_handshake(sock)
        sock.sendall(ws_frame(0x1, b"a" * 60000, fin=False))
        closed = False
        for _ in range(40):  # 2.4 MB of continuation frames, never finished
            try:
                sock.sendall(ws_frame(0x0, b"a" * 60000, fin=False))
            except (BrokenPipeError, ConnectionResetError):
                closed = True
                break
        data = read_all(sock, 3)
        assert closed or b"\x88" in data
        if b"\x88" in data:  # a close frame with 1009
            assert struct.pack(">H", 1009) in data
        well_behaved(server)


# ------------------------------------------------------------------ QUIC


def test_quic_initial_flood_is_dropped(serve: Serve, tls_files: dict[str, str]) -> None:
    from tests.e2e.h3client import h3_connect
    from tests.e2e.test_http3 import quic_port

    server = serve(
        app, certfile=tls_files["certfile"], keyfile=tls_files["keyfile"],
        quic_bind=["127.0.0.1:0"], max_connections=50,
    )  # fmt: skip
    port = quic_port(server)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        for _ in range(3000):  # garbage long-header "Initial" packets, full size
            packet = bytes([0xC0]) + b"\x00\x00\x00\x01" + b"\x08" + os.urandom(8)
            packet += b"\x08" + os.urandom(8) + os.urandom(1200)
            udp.sendto(packet, ("127.0.0.1", port))

    async def main() -> None:
        async with h3_connect(port, tls_files["ca"]) as client:
            response = await client.get("/")
            assert response.status == 200 and bytes(response.body) == b"ok"

    asyncio.run(asyncio.wait_for(main(), 20))
    context = ssl.create_default_context(cafile=tls_files["ca"])
    assert httpx.get(server.url, verify=context).text == "ok"  # and over TCP

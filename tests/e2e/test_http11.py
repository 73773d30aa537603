"""HTTP/1.1 end to end over loopback with httpx and raw sockets, on every backend."""

from __future__ import annotations

import asyncio
import contextvars
import re
import socket
import threading
import time
from collections.abc import Callable
from typing import Any

import anyio
import httpx
import pytest

from tests.conftest import RunningServer, echo_app, hello_app, raw_exchange

Serve = Callable[..., RunningServer]


@pytest.fixture(params=["httptools", "h11"])
def http1_parser(request: pytest.FixtureRequest) -> str:
    """Every test here runs on both HTTP/1.1 parsers."""
    if request.param == "httptools":
        pytest.importorskip("httptools")
    return str(request.param)


def test_hello_world_and_default_headers(serve: Serve) -> None:
    server = serve(hello_app)
    response = httpx.get(server.url + "/")
    assert response.status_code == 200
    assert response.text == "Hello, world!"
    assert response.headers["content-length"] == "13"
    assert response.headers["server"] == "hypercorn-h11"
    assert "date" in response.headers
    assert response.http_version == "HTTP/1.1"


def test_keep_alive_reuses_one_connection(serve: Serve) -> None:
    server = serve(echo_app)
    with httpx.Client() as client:
        ports = {
            client.post(server.url + "/", content=b"x").headers["x-client-port"] for _ in range(5)
        }
    assert len(ports) == 1


def test_pipelined_requests_on_raw_socket(serve: Serve) -> None:
    server = serve(echo_app)
    requests = (
        b"".join(
            b"POST /%d HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\n\r\n%d" % (i, i)
            for i in range(5)
        )
        + b"GET /last HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
    )
    data = raw_exchange(server.port, requests)
    assert data.count(b"HTTP/1.1 200 OK") == 6
    positions = [data.index(b"x-path: /%d" % i) for i in range(5)]
    assert positions == sorted(positions)
    assert data.index(b"x-path: /last") > positions[-1]


_LAST_PATH: contextvars.ContextVar[str] = contextvars.ContextVar("last_path", default="none")


async def _context_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Answers with what the context variable held when the request began, then sets it;
    requests under /wait/ sleep a moment first (so they do not finish in one step)."""
    if scope["type"] != "http":
        return
    seen = _LAST_PATH.get()
    _LAST_PATH.set(scope["path"])
    if scope["path"].startswith("/wait/"):
        await anyio.sleep(0.001)
    body = f"{scope['path']} saw {seen};".encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


def test_each_request_runs_in_its_own_context(serve: Serve) -> None:
    """A context variable an application sets is not seen by the next request on the same
    connection, whether the application finished at once or waited; pipelined requests of
    both kinds are answered in order."""
    server = serve(_context_app)
    paths = ["/a", "/wait/b", "/c", "/wait/d", "/e", "/f"]
    requests = b"".join(b"GET %s HTTP/1.1\r\nHost: a\r\n\r\n" % p.encode() for p in paths)
    data = raw_exchange(
        server.port, requests + b"GET /end HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
    )
    bodies = re.findall(rb"(/[\w/]+) saw ([^;]+);", data)
    assert bodies == [(p.encode(), b"none") for p in [*paths, "/end"]]


def test_chunked_upload_and_streamed_download(serve: Serve) -> None:
    server = serve(echo_app)
    payload = [bytes([i]) * 10_000 for i in range(20)]
    with httpx.Client() as client:
        response = client.post(server.url + "/stream", content=iter(payload))
    assert response.status_code == 200
    assert response.content == b"".join(payload)
    assert response.headers.get("transfer-encoding") == "chunked"


def test_large_body_round_trip(serve: Serve) -> None:
    server = serve(echo_app)
    body = bytes(range(256)) * 8192  # 2 MiB
    response = httpx.post(server.url + "/", content=body, timeout=30)
    assert response.content == body


def test_expect_100_continue(serve: Serve) -> None:
    server = serve(echo_app)
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"
        )
        assert sock.recv(1024) == b"HTTP/1.1 100 Continue\r\n\r\n"
        sock.sendall(b"hello")
        response = b""
        while not response.endswith(b"hello"):
            response += sock.recv(1024)
    assert response.startswith(b"HTTP/1.1 200 OK\r\n")


def test_head_has_headers_but_no_body(serve: Serve) -> None:
    server = serve(hello_app)
    data = raw_exchange(
        server.port,
        b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
    )
    head, _, rest = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200 OK")
    assert rest.startswith(b"HTTP/1.1 200 OK")  # the HEAD response had no body
    assert rest.endswith(b"Hello, world!")


@pytest.mark.parametrize(
    ("request_bytes", "status_line"),
    [
        (b"NOT HTTP AT ALL\r\n\r\n", b"HTTP/1.1 400 Bad Request"),
        (
            b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"0\r\n\r\n",
            b"HTTP/1.1 400 Bad Request",
        ),
        (
            b"GET / HTTP/1.1\r\nHost: a\r\nX: " + b"a" * 20000 + b"\r\n\r\n",
            b"HTTP/1.1 431 Request Header Fields Too Large",
        ),
        (b"CONNECT a:443 HTTP/1.1\r\nHost: a:443\r\n\r\n", b"HTTP/1.1 405 Method Not Allowed"),
    ],
)
def test_bad_requests_get_status_and_close(
    serve: Serve, request_bytes: bytes, status_line: bytes
) -> None:
    server = serve(hello_app)
    data = raw_exchange(server.port, request_bytes)  # returns when the server closes
    assert data.startswith(status_line + b"\r\n")
    # and the server still serves others
    assert httpx.get(server.url).status_code == 200


def test_app_crash_is_isolated(serve: Serve) -> None:
    release = threading.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        if scope["path"] == "/crash":
            raise RuntimeError("boom")
        if scope["path"] == "/crash-midway":
            await send({"type": "http.response.start", "status": 200})
            await send({"type": "http.response.body", "body": b"partial", "more_body": True})
            raise RuntimeError("boom")
        if scope["path"] == "/slow":
            await anyio.to_thread.run_sync(release.wait, 10)
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body", "body": b"fine"})

    server = serve(app)
    with httpx.Client() as slow_client, httpx.Client() as client:
        result: dict[str, Any] = {}
        thread = threading.Thread(
            target=lambda: result.setdefault("slow", slow_client.get(server.url + "/slow"))
        )
        thread.start()
        response = client.get(server.url + "/crash")
        assert response.status_code == 500
        assert client.get(server.url + "/ok").text == "fine"  # same connection still usable
        with pytest.raises(httpx.RemoteProtocolError):
            client.get(server.url + "/crash-midway")
        assert client.get(server.url + "/ok").text == "fine"
        release.set()
        thread.join(10)
    assert result["slow"].text == "fine"


def test_client_disconnect_reaches_app(serve: Serve) -> None:
    disconnected = threading.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        while (await receive())["type"] != "http.disconnect":
            pass
        disconnected.set()

    server = serve(app)
    with socket.create_connection(("127.0.0.1", server.port)) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
    assert disconnected.wait(5)


def test_many_concurrent_connections(serve: Serve) -> None:
    # httpx's pool takes seconds over these 300 requests (a raw asyncio client: 0.1 s), and
    # under load a pooled connection can sit idle past the 5 s keep_alive_timeout; the
    # server then closes it as httpx reuses it ("Server disconnected without sending a
    # response", reproduced with keep_alive_timeout=1). That race is not what this tests.
    server = serve(echo_app, keep_alive_timeout=60)

    async def run() -> list[int]:
        async with httpx.AsyncClient(limits=httpx.Limits(max_connections=100)) as client:
            responses = await asyncio.gather(
                *(client.post(server.url + "/", content=str(i).encode()) for i in range(300))
            )
        assert [r.content for r in responses] == [str(i).encode() for i in range(300)]
        return [r.status_code for r in responses]

    assert set(asyncio.run(run())) == {200}


def test_keep_alive_timeout_closes_idle_connection(serve: Serve) -> None:
    server = serve(hello_app, keep_alive_timeout=0.3)
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        data = b""
        while not data.endswith(b"Hello, world!"):
            data += sock.recv(4096)
        assert sock.recv(4096) == b""  # closed by the server once idle for 0.3 s


def test_request_header_timeout_sends_408(serve: Serve) -> None:
    server = serve(hello_app, request_header_timeout=0.3)
    data = raw_exchange(server.port, b"GET / HTTP/1.1\r\nHost: a\r\n")
    assert data.startswith(b"HTTP/1.1 408 Request Timeout\r\n")


def _reset_after_response(port: int, request: bytes, wait: float) -> tuple[bytes, bool]:
    """Send ``request``, read the response up to the server's FIN, then keep sending: returns
    the response and whether the server reset the connection within ``wait`` seconds (it
    does once its socket is closed; while it lingers it reads and drops what comes)."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(request)
        response = bytearray()
        while chunk := sock.recv(65536):
            response += chunk
        deadline = time.monotonic() + wait
        while time.monotonic() < deadline:
            try:
                sock.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
                time.sleep(0.05)
                sock.recv(1)  # b"": the FIN was read already
            except (ConnectionResetError, BrokenPipeError):
                return bytes(response), True
        return bytes(response), False


def test_client_that_said_close_is_closed_at_once(serve: Serve) -> None:
    # Connection: close and nothing after it: no input can come to make closing reset the
    # connection, so the server closes without lingering for the client's FIN.
    server = serve(hello_app)
    request = b"GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n"
    response, reset = _reset_after_response(server.port, request, wait=1.0)
    assert response.startswith(b"HTTP/1.1 200 ") and response.endswith(b"Hello, world!")
    assert reset


def test_server_that_closes_lingers_for_the_client(serve: Serve) -> None:
    # The server ends a keep-alive connection (keep_alive_max_requests) while the client may
    # already be sending its next request: it lingers, so the response is not destroyed by
    # a reset and the client's next bytes are read and dropped.
    server = serve(hello_app, keep_alive_max_requests=1)
    request = b"GET / HTTP/1.1\r\nHost: a\r\n\r\n"
    response, reset = _reset_after_response(server.port, request, wait=0.5)
    assert b"connection: close" in response.lower() and response.endswith(b"Hello, world!")
    assert not reset

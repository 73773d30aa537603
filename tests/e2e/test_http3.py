"""HTTP/3 over QUIC on every backend: aioquic's client in-process, and ngtcp2's independent
``gtlsclient`` (Debian's ngtcp2-client) where it is installed."""

from __future__ import annotations

import asyncio
import hashlib
import os
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest
from wsproto.events import BytesMessage, CloseConnection, Message, TextMessage

from hypercorn.protocol.h3 import STREAM_WINDOW
from tests.conftest import RunningServer
from tests.e2e.h3client import h3_connect

Serve = Callable[..., RunningServer]
FIVE_MIB = 5 * 1024 * 1024
CHUNK = 64 * 1024


def quic_port(server: RunningServer) -> int:
    url = next(url for url in server.urls if url.endswith("(QUIC)"))
    return int(url.split()[0].rsplit(":", 1)[1])


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "websocket":
        await websocket_echo(receive, send)
        return
    if scope["type"] != "http":
        return
    path = scope["path"]
    if path == "/download":
        await send({"type": "http.response.start", "status": 200})
        block = bytes(range(256)) * (CHUNK // 256)
        for _ in range(FIVE_MIB // CHUNK):
            await send({"type": "http.response.body", "body": block, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        return
    if path == "/trailers":
        await send({"type": "http.response.start", "status": 200, "trailers": True})
        await send({"type": "http.response.body", "body": b"body", "more_body": False})
        # (a connection-specific field, which HTTP/3 forbids, is dropped on the way out)
        trailers = [(b"x-checksum", b"abc"), (b"connection", b"close")]
        await send({"type": "http.response.trailers", "headers": trailers})
        return
    if path == "/hints":
        await send({"type": "http.response.early_hint", "links": [b"</style.css>; rel=preload"]})
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body", "body": b"hinted"})
        return
    if path == "/push":
        if "http.response.push" in scope["extensions"]:
            await send({"type": "http.response.push", "path": "/style.css", "headers": []})
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body", "body": b"page"})
        return
    if path == "/style.css":
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body", "body": b"css"})
        return
    if path == "/slow-reader":
        await anyio.sleep(1.0)  # the client meanwhile sends as much as it is allowed
    body = bytearray()
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    info = f"{scope['http_version']}|{scope['scheme']}|{scope['method']}|{len(body)}"
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"x-info", info.encode()),
                (b"x-sha", hashlib.sha256(body).hexdigest().encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": bytes(body) if path == "/echo" else b"ok"})


async def websocket_echo(receive: Any, send: Any) -> None:
    message = await receive()
    assert message["type"] == "websocket.connect"
    await send({"type": "websocket.accept"})
    while True:
        message = await receive()
        if message["type"] == "websocket.disconnect":
            return
        if message.get("text") == "close":
            await send({"type": "websocket.close", "code": 4001, "reason": "asked"})
            return
        await send(
            {"type": "websocket.send", "text": message.get("text"), "bytes": message.get("bytes")}
        )


@pytest.fixture
def h3_server(serve: Serve, tls_files: dict[str, str]) -> RunningServer:
    return serve(
        app,
        certfile=tls_files["certfile"],
        keyfile=tls_files["keyfile"],
        quic_bind=["127.0.0.1:0"],
    )


def run(coro: Any) -> Any:
    return asyncio.run(asyncio.wait_for(coro, 60))


def test_get_and_post_echo(h3_server: RunningServer, tls_files: dict[str, str]) -> None:
    async def main() -> None:
        async with h3_connect(quic_port(h3_server), tls_files["ca"]) as client:
            response = await client.get("/")
            assert response.status == 200
            assert response.header(b"x-info") == b"3|https|GET|0"
            assert response.header(b"server") == b"hypercorn-h3"
            assert response.header(b"alt-svc") is None  # already on HTTP/3
            payload = os.urandom(1024 * 1024 + 7)
            response = await client.request("POST", "/echo", body=payload)
            assert response.status == 200
            assert bytes(response.body) == payload
            assert response.header(b"x-info") == f"3|https|POST|{len(payload)}".encode()

    run(main())


def test_five_mib_download(h3_server: RunningServer, tls_files: dict[str, str]) -> None:
    async def main() -> None:
        async with h3_connect(quic_port(h3_server), tls_files["ca"]) as client:
            response = await client.get("/download")
            assert response.status == 200
            block = bytes(range(256)) * (CHUNK // 256)
            assert len(response.body) == FIVE_MIB
            assert bytes(response.body) == block * (FIVE_MIB // CHUNK)

    run(main())


def test_trailers_and_early_hints(h3_server: RunningServer, tls_files: dict[str, str]) -> None:
    async def main() -> None:
        async with h3_connect(quic_port(h3_server), tls_files["ca"]) as client:
            response = await client.get("/trailers")
            assert bytes(response.body) == b"body"
            assert response.trailers == [(b"x-checksum", b"abc")]
            response = await client.get("/hints")
            assert response.informational == [(103, [(b"link", b"</style.css>; rel=preload")])]
            assert response.status == 200
            assert bytes(response.body) == b"hinted"

    run(main())


def test_server_push(h3_server: RunningServer, tls_files: dict[str, str]) -> None:
    async def main() -> None:
        async with h3_connect(quic_port(h3_server), tls_files["ca"]) as client:
            response = await client.get("/push")
            assert bytes(response.body) == b"page"
            [(push_id, promised)] = client.push_promises.items()
            assert (b":path", b"/style.css") in promised
            pushed = client.pushes[push_id]
            await asyncio.wait_for(pushed.ended.wait(), 10)
            assert pushed.response.status == 200
            assert bytes(pushed.response.body) == b"css"

    run(main())


def test_many_concurrent_streams(h3_server: RunningServer, tls_files: dict[str, str]) -> None:
    async def main() -> None:
        async with h3_connect(quic_port(h3_server), tls_files["ca"]) as client:
            responses = await asyncio.gather(
                *(client.request("POST", "/echo", body=b"%d" % i) for i in range(100))
            )
            assert [bytes(r.body) for r in responses] == [b"%d" % i for i in range(100)]

    run(main())


def test_websocket_echo_over_h3(h3_server: RunningServer, tls_files: dict[str, str]) -> None:
    async def main() -> None:
        async with (
            h3_connect(quic_port(h3_server), tls_files["ca"]) as client,
            client.websocket("/ws") as ws,
        ):
            assert ws.status == 200
            ws.send(Message(data="hello"))
            event = await ws.receive()
            assert isinstance(event, TextMessage) and event.data == "hello"
            ws.send(Message(data=b"\x00\x01" * 50000))
            received = b""
            while len(received) < 100000:
                event = await ws.receive()
                assert isinstance(event, BytesMessage)
                received += event.data
            assert received == b"\x00\x01" * 50000
            ws.send(Message(data="close"))
            event = await ws.receive()
            assert isinstance(event, CloseConnection)
            assert (event.code, event.reason) == (4001, "asked")

    run(main())


def test_slow_app_bounds_what_the_client_may_send(
    h3_server: RunningServer, tls_files: dict[str, str]
) -> None:
    """An application that does not read yet: the stream window stays at STREAM_WINDOW, so
    the server buffers at most that much; the upload then completes intact."""

    async def main() -> None:
        async with h3_connect(quic_port(h3_server), tls_files["ca"]) as client:
            payload = os.urandom(FIVE_MIB)
            stream_id = client.start_request("POST", "/slow-reader", end=False)
            client.send_body(stream_id, payload, end=True)
            await asyncio.sleep(0.6)  # the app sleeps 1 s before reading
            allowed = client._quic._streams[stream_id].max_stream_data_remote
            assert allowed <= STREAM_WINDOW + 1024, allowed
            await asyncio.wait_for(client.streams[stream_id].ended.wait(), 30)
            response = client.streams[stream_id].response
            assert response.header(b"x-sha") == hashlib.sha256(payload).hexdigest().encode()

    run(main())


def test_graceful_shutdown_finishes_the_request_then_closes(
    h3_server: RunningServer, tls_files: dict[str, str]
) -> None:
    async def main() -> None:
        async with h3_connect(quic_port(h3_server), tls_files["ca"]) as client:
            stream_id = client.start_request("POST", "/slow-reader", end=False)
            await asyncio.sleep(0.2)
            h3_server.request_stop()
            client.send_body(stream_id, b"late body", end=True)
            await asyncio.wait_for(client.streams[stream_id].ended.wait(), 10)
            response = client.streams[stream_id].response
            assert response.status == 200
            assert response.header(b"x-info") == b"3|https|POST|9"
            for _ in range(100):  # then GOAWAY and CONNECTION_CLOSE (H3_NO_ERROR)
                if client.terminated is not None:
                    break
                await asyncio.sleep(0.05)
            assert client.terminated is not None
            assert client.terminated.error_code == 0x100

    run(main())
    h3_server.stop()


def test_alt_svc_is_automatic_on_tls_responses(serve: Serve, tls_files: dict[str, str]) -> None:
    port = free_udp_port()
    server = serve(
        app,
        certfile=tls_files["certfile"],
        keyfile=tls_files["keyfile"],
        quic_bind=[f"127.0.0.1:{port}"],
    )
    context = ssl.create_default_context(cafile=tls_files["ca"])
    with httpx.Client(verify=context) as client:
        response = client.get(server.url)
    assert response.headers["alt-svc"] == f'h3=":{port}"; ma=86400'


def test_alt_svc_headers_override(serve: Serve, tls_files: dict[str, str]) -> None:
    server = serve(
        app,
        certfile=tls_files["certfile"],
        keyfile=tls_files["keyfile"],
        quic_bind=["127.0.0.1:0"],
        alt_svc_headers=['h3=":443"; ma=3600'],
    )
    context = ssl.create_default_context(cafile=tls_files["ca"])
    with httpx.Client(verify=context) as client:
        assert client.get(server.url).headers["alt-svc"] == 'h3=":443"; ma=3600'


def test_no_alt_svc_without_tls(serve: Serve) -> None:
    server = serve(app)
    assert "alt-svc" not in httpx.get(server.url).headers


# ------------------------------------------------------------------ an independent client

GTLSCLIENT = shutil.which("gtlsclient")
needs_ngtcp2 = pytest.mark.skipif(GTLSCLIENT is None, reason="ngtcp2-client is not installed")


def gtlsclient(
    port: int, path: str, tmp_path: Path, data: bytes | None = None
) -> tuple[str, bytes]:
    """Run ngtcp2's client; returns its HTTP dump (headers, trailers) and the body."""
    assert GTLSCLIENT is not None
    download = tmp_path / "download"
    shutil.rmtree(download, ignore_errors=True)
    download.mkdir()
    args = [GTLSCLIENT, "--no-quic-dump", "--exit-on-all-streams-close", "--timeout=10s"]
    args += ["--download", str(download)]
    if data is not None:
        args += ["-m", "POST"]
    if data is not None:
        upload = tmp_path / "upload"
        upload.write_bytes(data)
        args += ["--data", str(upload)]
    args += ["127.0.0.1", str(port), f"https://localhost:{port}{path}"]
    result = subprocess.run(args, capture_output=True, timeout=60)
    dump = result.stdout.decode(errors="replace") + result.stderr.decode(errors="replace")
    assert result.returncode == 0, dump[-2000:]
    files = list(download.iterdir())
    body = files[0].read_bytes() if files else b""
    return dump, body


@needs_ngtcp2
def test_ngtcp2_client(h3_server: RunningServer, tmp_path: Path) -> None:
    port = quic_port(h3_server)
    dump, body = gtlsclient(port, "/", tmp_path)
    assert "[:status: 200]" in dump and "[x-info: 3|https|GET|0]" in dump
    assert body == b"ok"

    dump, body = gtlsclient(port, "/download", tmp_path)
    assert body == bytes(range(256)) * (CHUNK // 256) * (FIVE_MIB // CHUNK)

    payload = os.urandom(300_000)
    dump, body = gtlsclient(port, "/echo", tmp_path, data=payload)
    assert "[x-info: 3|https|POST|300000]" in dump
    assert body == payload

    dump, body = gtlsclient(port, "/trailers", tmp_path)
    assert body == b"body"
    assert "trailers started" in dump and "[x-checksum: abc]" in dump


# ------------------------------------------------------------------ several workers

PID_APP = """
import os

async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    await send({"type": "http.response.start", "status": 200})
    await send({"type": "http.response.body", "body": str(os.getpid()).encode()})
"""


def test_two_workers_share_the_quic_port(tmp_path: Path, tls_files: dict[str, str]) -> None:
    """Each worker binds its own UDP socket with SO_REUSEPORT; the kernel keeps a client's
    datagrams on one of them, so every connection completes on the worker that holds it."""
    (tmp_path / "pidapp.py").write_text(PID_APP)
    port = free_udp_port()
    log = tmp_path / "server.log"
    with log.open("w") as log_file:
        process = subprocess.Popen(
            [
                sys.executable, "-m", "hypercorn", "--workers", "2",
                "--certfile", tls_files["certfile"], "--keyfile", tls_files["keyfile"],
                "-b", "127.0.0.1:0", "--quic-bind", f"127.0.0.1:{port}", "pidapp:app",
            ],
            cwd=tmp_path,
            stderr=log_file,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while log.read_text().count("(QUIC)") < 2:  # each worker says it runs
            assert process.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.05)

        async def one_client() -> list[bytes]:
            async with h3_connect(port, tls_files["ca"]) as client:
                bodies = []
                for _ in range(5):
                    response = await client.get("/")
                    assert response.status == 200
                    bodies.append(bytes(response.body))
                return bodies

        async def main() -> list[list[bytes]]:
            return await asyncio.gather(*(one_client() for _ in range(50)))

        results = run(main())
        assert len(results) == 50
        for bodies in results:
            assert len(bodies) == 5
            assert len(set(bodies)) == 1  # one connection, one worker
        assert len({bodies[0] for bodies in results}) == 2  # both workers served clients
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0

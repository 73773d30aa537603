"""Features switched on by configuration alone: mounts, HTTPS redirect, trusted proxies,
and the request limits, each checked for its status code, the connection state after it, and
other connections being unaffected."""

from __future__ import annotations

import asyncio
import socket
import ssl
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from hypercorn.run import build_app
from hypercorn.settings import load_config
from tests.conftest import RunningServer, hello_app, raw_exchange

Serve = Callable[..., RunningServer]

APPS = {
    "main_app.py": """
        async def app(scope, receive, send):
            if scope["type"] != "http":
                return
            body = f"main {scope['client'][0]} {scope['scheme']} {scope['path']}"
            await send({"type": "http.response.start", "status": 200})
            await send({"type": "http.response.body", "body": body.encode()})
    """,
    "api_app.py": """
        async def app(scope, receive, send):
            if scope["type"] != "http":
                return
            body = f"api root_path={scope['root_path']} path={scope['path']}"
            await send({"type": "http.response.start", "status": 200})
            await send({"type": "http.response.body", "body": body.encode()})
    """,
    "legacy_app.py": """
        def app(environ, start_response):
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [f"wsgi {environ['SCRIPT_NAME']} {environ['PATH_INFO']}".encode()]
    """,
}


@pytest.fixture
def app_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    for name, source in APPS.items():
        (tmp_path / name).write_text(textwrap.dedent(source))
    monkeypatch.syspath_prepend(str(tmp_path))
    yield tmp_path
    for name in APPS:
        sys.modules.pop(name[:-3], None)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_toml_mounts_redirect_and_trusted_proxies(
    backend: str,
    app_dir: Path,
    tls_files: dict[str, str],
) -> None:
    tls_port, plain_port = free_port(), free_port()
    (app_dir / "hypercorn.toml").write_text(
        textwrap.dedent(f"""
        app = "main_app:app"
        bind = ["127.0.0.1:{tls_port}"]
        insecure_bind = ["127.0.0.1:{plain_port}"]
        certfile = "{tls_files["certfile"]}"
        keyfile = "{tls_files["keyfile"]}"
        https_redirect = true
        proxy_headers = "x-forwarded"
        trusted_proxies = ["127.0.0.1"]
        worker_class = "{"trio" if backend == "trio" else "asyncio"}"
        [mounts]
        "/api" = "api_app:app"
        "/legacy" = "legacy_app:app"
    """)
    )
    config, _, _ = load_config(None, str(app_dir / "hypercorn.toml"), {})
    server = RunningServer(build_app(config), backend, config=config).start()
    try:
        plain = f"http://127.0.0.1:{plain_port}"
        redirect = httpx.get(plain + "/api/x?y=1")
        assert redirect.status_code == 301
        assert redirect.headers["location"] == f"https://127.0.0.1:{tls_port}/api/x?y=1"
        assert httpx.post(plain + "/form").status_code == 308
        # a trusted proxy that terminated TLS itself: no redirect, client from the header
        proxied = httpx.get(
            plain + "/", headers={"X-Forwarded-Proto": "https", "X-Forwarded-For": "203.0.113.9"}
        )
        assert proxied.text == "main 203.0.113.9 https /"
        context = ssl.create_default_context(cafile=tls_files["ca"])
        with httpx.Client(verify=context) as client:
            secure = f"https://127.0.0.1:{tls_port}"
            assert client.get(secure + "/api/users").text == "api root_path=/api path=/api/users"
            assert client.get(secure + "/legacy/page").text == "wsgi /legacy /page"
            assert client.get(secure + "/other").text == "main 127.0.0.1 https /other"
    finally:
        server.stop()


def test_spoofed_forwarded_for_from_untrusted_peer_is_ignored(serve: Serve, tmp_path: Path) -> None:
    async def show(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200})
        await send(
            {
                "type": "http.response.body",
                "body": f"{scope['client'][0]} {scope['scheme']}".encode(),
            }
        )

    errors = tmp_path / "error.log"
    server = serve(
        show, proxy_headers="x-forwarded", trusted_proxies=["10.0.0.1"], errorlog=str(errors)
    )
    for _ in range(3):
        text = httpx.get(
            server.url, headers={"X-Forwarded-For": "6.6.6.6", "X-Forwarded-Proto": "https"}
        ).text
        assert text == "127.0.0.1 http"
    server.stop()
    assert errors.read_text().count("not in trusted_proxies") == 1  # one warning, not a flood


def test_forwarded_header_mode_walks_right_to_left(serve: Serve) -> None:
    async def show(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body", "body": scope["client"][0].encode()})

    server = serve(show, proxy_headers="forwarded", trusted_proxies=["127.0.0.1", "10.0.0.0/8"])
    header = 'for=6.6.6.6, for="[2001:db8::7]:1234", for=10.1.2.3'
    assert httpx.get(server.url, headers={"Forwarded": header}).text == "2001:db8::7"
    # X-Forwarded-For is not read in "forwarded" mode: one family cannot be smuggled in
    assert httpx.get(server.url, headers={"X-Forwarded-For": "9.9.9.9"}).text == "127.0.0.1"


# ------------------------------------------------------------------------------- limits


async def echo_length(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    total = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        total += len(message.get("body", b""))
        if not message.get("more_body"):
            break
    await send({"type": "http.response.start", "status": 200})
    await send({"type": "http.response.body", "body": str(total).encode()})


def wsgi_length(environ: Any, start_response: Any) -> list[bytes]:
    data = environ["wsgi.input"].read()
    start_response("200 OK", [])
    return [str(len(data)).encode()]


@pytest.mark.parametrize("application", [echo_length, wsgi_length], ids=["asgi", "wsgi"])
def test_max_request_body_size_gives_413(serve: Serve, application: Any) -> None:
    server = serve(application, max_request_body_size=1000)
    assert httpx.post(server.url, content=b"x" * 1000).text == "1000"
    declared = httpx.post(server.url, content=b"x" * 1001)
    assert declared.status_code == 413
    streamed = httpx.post(server.url, content=iter([b"x" * 600, b"x" * 600]))
    assert streamed.status_code == 413
    with httpx.Client(http1=False, http2=True) as client:  # HTTP/2: the connection lives on
        assert client.post(server.url, content=b"y" * 5000).status_code == 413
        assert client.post(server.url, content=b"y" * 10).text == "10"
    assert httpx.get(server.url).status_code == 200  # other connections unaffected


def test_request_body_timeout_gives_408_and_closes(serve: Serve) -> None:
    server = serve(echo_length, request_body_timeout=0.3)
    data = raw_exchange(server.port, b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nab")
    assert data.startswith(b"HTTP/1.1 408 ")
    assert httpx.post(server.url, content=b"fine").text == "4"


def held_at_slow(release: threading.Event) -> Callable[..., Any]:
    """An app answering "done"; requests to /slow first wait (in a thread) for ``release``."""

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        if scope["path"] == "/slow":
            await anyio.to_thread.run_sync(release.wait, 10)
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body", "body": b"done"})

    return app


def test_max_concurrent_requests_gives_503_with_retry_after(serve: Serve) -> None:
    release = threading.Event()
    server = serve(held_at_slow(release), max_concurrent_requests=2)

    async def run() -> list[httpx.Response]:
        async with httpx.AsyncClient(timeout=10) as client:
            first = asyncio.ensure_future(client.get(server.url + "/slow"))
            second = asyncio.ensure_future(client.get(server.url + "/slow"))
            await asyncio.sleep(0.3)
            third = await client.get(server.url + "/fast")
            release.set()
            return [await first, await second, third]

    first, second, third = asyncio.run(run())
    assert (first.text, second.text) == ("done", "done")
    assert third.status_code == 503 and third.headers["retry-after"] == "1"
    assert httpx.get(server.url + "/fast").text == "done"  # capacity is given back


def test_pipelined_requests_over_max_concurrent_requests_each_get_503(serve: Serve) -> None:
    """Each 503 completes a response at once, which hands over the next pipelined request:
    hundreds of them in one read must be answered in order, without recursion (an earlier
    asyncio driver nested one flush per request and could overflow the stack)."""
    release = threading.Event()
    server = serve(held_at_slow(release), max_concurrent_requests=1, keep_alive_max_requests=10_000)
    holder = socket.create_connection(("127.0.0.1", server.port), timeout=10)
    try:
        holder.sendall(b"GET /slow HTTP/1.1\r\nHost: a\r\n\r\n")
        time.sleep(0.3)  # the only slot is taken
        count = 3000
        request = b"GET /x HTTP/1.1\r\nHost: a\r\n\r\n"
        data = raw_exchange(
            server.port,
            request * count + b"GET /x HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n",
        )
        assert data.count(b"HTTP/1.1 503 ") == count + 1
        release.set()
        assert holder.recv(65536).startswith(b"HTTP/1.1 200 ")
    finally:
        holder.close()
    assert httpx.get(server.url).text == "done"


def test_server_names_gives_421_for_other_hosts(serve: Serve) -> None:
    server = serve(hello_app, server_names=["example.com", "*.example.org"])
    ok = httpx.get(server.url, headers={"Host": "api.example.org"})
    assert ok.text == "Hello, world!"
    refused = httpx.get(server.url, headers={"Host": "evil.test"})
    assert refused.status_code == 421
    with httpx.Client() as client:  # the connection stays usable after a 421
        assert client.get(server.url, headers={"Host": "evil.test"}).status_code == 421
        assert client.get(server.url, headers={"Host": "example.com"}).status_code == 200


def test_max_connections_refuses_extra_connections_with_a_log_line(
    serve: Serve, caplog: pytest.LogCaptureFixture
) -> None:
    server = serve(hello_app, max_connections=2)
    first = socket.create_connection(("127.0.0.1", server.port))
    second = socket.create_connection(("127.0.0.1", server.port))
    try:
        for sock in (first, second):  # both are served (and stay open: keep-alive)
            sock.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            assert sock.recv(65536).startswith(b"HTTP/1.1 200")
        with socket.create_connection(("127.0.0.1", server.port)) as third:
            third.settimeout(5)
            try:
                third.sendall(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
                assert third.recv(65536) == b""  # closed without an answer
            except ConnectionResetError:
                pass
        assert any("max_connections (2) reached" in r.getMessage() for r in caplog.records)
    finally:
        first.close()
    # A slot is free again once a connection ends.
    for _ in range(50):
        try:
            response = httpx.get(server.url)
            break
        except httpx.TransportError:
            time.sleep(0.05)
    assert response.status_code == 200
    second.close()

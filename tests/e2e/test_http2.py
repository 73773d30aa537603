"""HTTP/2 end to end on every backend: ALPN, h2c (prior knowledge and Upgrade), concurrency,
flow control with bounded memory, push, trailers, early hints, resets and floods."""

from __future__ import annotations

import os
import shutil
import ssl
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import anyio
import h2.errors
import h2.events
import httpx
import pytest

from hypercorn.protocol.h2 import RESET_BUDGET
from tests.conftest import RunningServer, echo_app, hello_app
from tests.e2e.h2client import RawH2Client

Serve = Callable[..., RunningServer]


def test_alpn_h2_with_httpx(serve: Serve, tls_files: dict[str, str]) -> None:
    server = serve(echo_app, certfile=tls_files["certfile"], keyfile=tls_files["keyfile"])
    context = ssl.create_default_context(cafile=tls_files["ca"])
    with httpx.Client(http2=True, verify=context) as client:
        response = client.post(server.url + "/x", content=b"over h2")
    assert response.http_version == "HTTP/2"
    assert response.content == b"over h2"
    assert response.headers["server"] == "hypercorn-h2"


def test_h2c_prior_knowledge_with_httpx(serve: Serve) -> None:
    server = serve(echo_app)
    with httpx.Client(http1=False, http2=True) as client:
        response = client.post(server.url, content=b"cleartext")
    assert response.http_version == "HTTP/2"
    assert response.content == b"cleartext"


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_h2c_upgrade_with_curl(serve: Serve) -> None:
    server = serve(hello_app)
    result = subprocess.run(
        ["curl", "-s", "-v", "--http2", server.url + "/"],
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert result.stdout == "Hello, world!"
    assert "HTTP/1.1 101 Switching Protocols" in result.stderr
    assert "< HTTP/2 200" in result.stderr


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl is not installed")
def test_curl_prior_knowledge_and_alpn(serve: Serve, tls_files: dict[str, str]) -> None:
    plain = serve(hello_app)
    result = subprocess.run(
        [
            "curl",
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_version}",
            "--http2-prior-knowledge",
            plain.url,
        ],
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert result.stdout == "2"
    secure = serve(hello_app, certfile=tls_files["certfile"], keyfile=tls_files["keyfile"])
    result = subprocess.run(
        ["curl", "-s", "-w", " %{http_version}", "--cacert", tls_files["ca"], secure.url],
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert result.stdout == "Hello, world! 2"


@pytest.mark.skipif(shutil.which("nghttp") is None, reason="nghttp2-client is not installed")
def test_nghttp_client(serve: Serve) -> None:
    server = serve(hello_app)
    result = subprocess.run(
        ["nghttp", "-v", server.url + "/"], capture_output=True, text=True, timeout=20
    )
    assert "Hello, world!" in result.stdout
    assert ":status: 200" in result.stdout


def test_200_concurrent_streams_on_one_connection(serve: Serve) -> None:
    started = 0
    lock = threading.Lock()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        nonlocal started
        if scope["type"] != "http":
            return
        with lock:
            started += 1
        await anyio.sleep(0.2)  # every stream is in flight at once (up to the stream limit)
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body", "body": scope["path"].encode()})

    server = serve(app, h2_max_concurrent_streams=250)

    async def run() -> list[str]:
        async with httpx.AsyncClient(
            http1=False, http2=True, limits=httpx.Limits(max_connections=1)
        ) as client:
            responses = await anyio_gather([client.get(f"{server.url}/{i}") for i in range(200)])
        return [response.text for response in responses]

    began = time.monotonic()
    texts = anyio.run(run)
    assert texts == [f"/{i}" for i in range(200)]
    assert time.monotonic() - began < 5  # concurrent, not 200 x 0.2 s


async def anyio_gather(coroutines: list[Any]) -> list[Any]:
    results: list[Any] = [None] * len(coroutines)

    async def run(index: int, coroutine: Any) -> None:
        results[index] = await coroutine

    async with anyio.create_task_group() as group:
        for index, coroutine in enumerate(coroutines):
            group.start_soon(run, index, coroutine)
    return results


def test_push_trailers_and_early_hints_with_a_raw_client(serve: Serve) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        if scope["path"] == "/style.css":
            await send({"type": "http.response.start", "status": 200})
            await send({"type": "http.response.body", "body": b"body{}"})
            return
        await send({"type": "http.response.early_hint", "links": [b"</style.css>; rel=preload"]})
        await send({"type": "http.response.push", "path": "/style.css", "headers": []})
        await send({"type": "http.response.start", "status": 200, "trailers": True})
        await send({"type": "http.response.body", "body": b"page"})
        await send({"type": "http.response.trailers", "headers": [(b"x-checksum", b"abc")]})

    server = serve(app)
    client = RawH2Client(server.port)
    try:
        stream_id = client.request(b"/")
        events = client.read_until(
            lambda evs: (
                client.ended(stream_id)(evs)
                and any(
                    isinstance(e, h2.events.StreamEnded) and e.stream_id != stream_id for e in evs
                )
            )
        )
        [hint] = [e for e in events if isinstance(e, h2.events.InformationalResponseReceived)]
        assert dict(hint.headers)[b":status"] == b"103"
        [promise] = [e for e in events if isinstance(e, h2.events.PushedStreamReceived)]
        assert client.body(promise.pushed_stream_id) == b"body{}"
        assert client.body(stream_id) == b"page"
        [trailers] = [e for e in events if isinstance(e, h2.events.TrailersReceived)]
        assert trailers.headers == [(b"x-checksum", b"abc")]
    finally:
        client.close()


def test_reset_reaches_app_at_once_and_spares_other_streams(serve: Serve) -> None:
    disconnected = threading.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        if scope["path"] == "/wait":
            while (await receive())["type"] != "http.disconnect":
                pass
            disconnected.set()
            return
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body", "body": b"other"})

    server = serve(app)
    client = RawH2Client(server.port)
    try:
        waiting = client.request(b"/wait")
        time.sleep(0.1)
        client.conn.reset_stream(waiting, h2.errors.ErrorCodes.CANCEL)
        client.flush()
        assert disconnected.wait(5)
        other = client.request(b"/other")
        client.read_until(client.ended(other))
        assert client.body(other) == b"other"
    finally:
        client.close()


class StubbornApp:
    """/ok answers at once; every other path runs until it is cancelled (it ignores the
    disconnect), counting how many are running: what a flood must not leave behind."""

    def __init__(self) -> None:
        self.running = 0
        self._lock = threading.Lock()

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        if scope["path"] == "/ok":
            await send({"type": "http.response.start", "status": 200})
            await send({"type": "http.response.body", "body": b"served"})
            return
        with self._lock:
            self.running += 1
        try:
            await anyio.sleep(30)
        finally:
            with self._lock:
                self.running -= 1

    def all_stopped(self, timeout: float = 5) -> bool:
        deadline = time.monotonic() + timeout
        while self.running and time.monotonic() < deadline:
            time.sleep(0.05)
        return self.running == 0


def read_goaway(client: RawH2Client) -> h2.events.ConnectionTerminated:
    events = client.read_until(
        lambda evs: any(isinstance(e, h2.events.ConnectionTerminated) for e in evs)
    )
    [goaway] = [e for e in events if isinstance(e, h2.events.ConnectionTerminated)]
    return goaway


def test_rapid_reset_flood_is_bounded_and_others_are_served(serve: Serve) -> None:
    app = StubbornApp()
    server = serve(app, h2_max_concurrent_streams=1000)
    attacker = RawH2Client(server.port)
    try:
        for index in range(RESET_BUDGET + 50):
            try:  # the server may hang up (GOAWAY) before the attacker is done sending
                stream_id = attacker.request(b"/slow")
                if index % 10 == 0:
                    time.sleep(0.01)  # let some apps start before their reset arrives
                attacker.conn.reset_stream(stream_id, h2.errors.ErrorCodes.CANCEL)
                attacker.flush()
            except OSError:
                break
        assert read_goaway(attacker).error_code == h2.errors.ErrorCodes.ENHANCE_YOUR_CALM
        with httpx.Client(http1=False, http2=True) as client:  # meanwhile, others are served
            assert client.get(server.url + "/ok").text == "served"
        assert app.all_stopped()  # no app of a reset stream is left running
    finally:
        attacker.close()


def test_mtls_over_h2(serve: Serve, tls_files: dict[str, str], ca: Any) -> None:
    from tests.e2e.test_tls import scope_app

    server = serve(
        scope_app,
        certfile=tls_files["certfile"],
        keyfile=tls_files["keyfile"],
        ca_certs=tls_files["ca"],
        verify_mode=ssl.CERT_REQUIRED,
    )
    context = ssl.create_default_context(cafile=tls_files["ca"])
    ca.issue_cert("client@example.com").configure_cert(context)
    with httpx.Client(http2=True, verify=context) as client:
        response = client.get(server.url)
    assert response.http_version == "HTTP/2"
    assert response.text.endswith("|1")


# ---------------------------------------------------------------------------- big transfers

BIG_APP = textwrap.dedent("""
    CHUNK = b"z" * 65536

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        if scope["path"] == "/download":
            await send({"type": "http.response.start", "status": 200})
            for _ in range(800):  # 50 MiB
                await send({"type": "http.response.body", "body": CHUNK, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
            return
        total = 0
        while True:
            message = await receive()
            total += len(message.get("body", b""))
            if not message.get("more_body"):
                break
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body", "body": str(total).encode()})
""")


def peak_rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    raise RuntimeError("no VmHWM")


@pytest.fixture
def big_server(tmp_path: Path, backend: str) -> Iterator[tuple[str, int]]:
    (tmp_path / "big.py").write_text(BIG_APP)
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hypercorn",
            "-b",
            "127.0.0.1:0",
            "-w",
            "0",
            "-k",
            backend,
            "big:app",
        ],
        cwd=tmp_path,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    url = ""
    for line in process.stderr:
        if "Running on" in line:
            url = line.split("Running on ")[1].split()[0]
            break
    try:
        yield url, process.pid
    finally:
        process.terminate()
        process.wait(10)
        process.stderr.close()


@pytest.mark.skipif(not os.path.exists("/proc/self/status"), reason="needs /proc")
def test_50_mib_download_and_upload_with_bounded_memory(big_server: tuple[str, int]) -> None:
    url, pid = big_server
    with httpx.Client(http1=False, http2=True, timeout=60) as client:
        client.get(url + "/warm-up")
        before = peak_rss_kib(pid)
        received = 0
        with client.stream("GET", url + "/download") as response:
            for chunk in response.iter_bytes(65536):
                received += len(chunk)
                if received < 4 * 1024 * 1024:
                    time.sleep(0.01)  # a slow consumer for the first few MiB
        assert received == 50 * 1024 * 1024

        def upload() -> Iterator[bytes]:
            for _ in range(800):
                yield b"u" * 65536

        assert client.post(url + "/upload", content=upload()).text == str(50 * 1024 * 1024)
        grown_mib = (peak_rss_kib(pid) - before) / 1024
    assert grown_mib < 20, f"the server's peak RSS grew {grown_mib:.1f} MiB for 50 MiB each way"


def test_made_you_reset_flood_is_bounded(serve: Serve) -> None:
    """The client provokes the server into resetting streams whose apps are running (DATA
    after END_STREAM is a stream error); those resets share the budget."""
    from hyperframe.frame import DataFrame

    app = StubbornApp()
    server = serve(app, h2_max_concurrent_streams=1000)
    attacker = RawH2Client(server.port)
    try:
        for _ in range(RESET_BUDGET + 50):
            stream_id = attacker.request(b"/work")
            try:
                attacker.sock.sendall(DataFrame(stream_id, data=b"x").serialize())
            except OSError:
                break
        assert read_goaway(attacker).error_code == h2.errors.ErrorCodes.ENHANCE_YOUR_CALM
        assert app.all_stopped()
        assert httpx.get(server.url + "/ok").text == "served"  # another connection is served
    finally:
        attacker.close()


def test_continuation_flood_is_cut_off(serve: Serve) -> None:
    from hyperframe.frame import ContinuationFrame, HeadersFrame

    server = serve(hello_app)
    attacker = RawH2Client(server.port)
    try:
        attacker.read_until(
            lambda evs: any(isinstance(e, h2.events.RemoteSettingsChanged) for e in evs)
        )
        headers = HeadersFrame(
            1,
            data=attacker.conn.encoder.encode(
                [
                    (b":method", b"GET"),
                    (b":path", b"/"),
                    (b":scheme", b"http"),
                    (b":authority", b"a"),
                ]
            ),
        )
        attacker.sock.sendall(headers.serialize())  # no END_HEADERS: a header block follows
        sent = 0
        try:
            for _ in range(10_000):  # never ending the block
                attacker.sock.sendall(ContinuationFrame(1, data=b"\x00" * 10).serialize())
                sent += 1
        except OSError:
            pass
        events = attacker.read_until(
            lambda evs: any(isinstance(e, h2.events.ConnectionTerminated) for e in evs)
        )
        assert any(isinstance(e, h2.events.ConnectionTerminated) for e in events) or sent < 10_000
        with httpx.Client(http1=False, http2=True) as client:
            assert client.get(server.url).text == "Hello, world!"
    finally:
        attacker.close()


def test_shutdown_finishes_in_flight_h2_stream_then_goaway(serve: Serve) -> None:
    entered = threading.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        entered.set()
        await anyio.sleep(0.5)
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body", "body": b"done"})

    server = serve(app, graceful_timeout=5)
    client = RawH2Client(server.port)
    try:
        stream_id = client.request(b"/")
        assert entered.wait(5)
        server.request_stop()
        events = client.read_until(
            lambda evs: any(isinstance(e, h2.events.ConnectionTerminated) for e in evs)
        )
        assert client.body(stream_id) == b"done"
        [goaway] = [e for e in events if isinstance(e, h2.events.ConnectionTerminated)]
        assert goaway.error_code == h2.errors.ErrorCodes.NO_ERROR
        assert goaway.last_stream_id == stream_id
    finally:
        client.close()
        server.stop()


def test_app_crash_on_one_stream_spares_the_others(serve: Serve) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        if scope["path"] == "/crash":
            raise RuntimeError("boom")
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body", "body": b"fine"})

    server = serve(app)
    with httpx.Client(http1=False, http2=True) as client:
        assert client.get(server.url + "/crash").status_code == 500
        assert client.get(server.url + "/ok").text == "fine"

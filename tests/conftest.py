"""Shared fixtures: a real server on loopback, started in a thread and stopped by the test."""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Optional

import pytest

from hypercorn.config import Config
from hypercorn.utils import wrap_app

BACKENDS = ["asyncio", "uvloop", "trio"]

# `make fuzz` sets HYPOTHESIS_PROFILE=fuzz: the property tests run many more examples.
FUZZ = os.environ.get("HYPOTHESIS_PROFILE") == "fuzz"


def examples(count: int) -> int:
    """``max_examples`` for a property test: ``count`` in ``make test``, 100x under fuzz."""
    return count * 100 if FUZZ else count


class RunningServer:
    """A server running ``app`` in its own thread and event loop until :meth:`stop`."""

    def __init__(
        self,
        app: Any,
        backend: str,
        mode: Optional[str] = None,
        config: Optional[Config] = None,
        **settings: Any,
    ) -> None:
        self.config = config or Config()
        if config is None:
            self.config.bind = ["127.0.0.1:0"]
        for key, value in settings.items():
            setattr(self.config, key, value)
        self.app = wrap_app(app, self.config.wsgi_max_body_size, mode)
        self.backend = backend
        self.urls: list[str] = []
        self.error: Optional[BaseException] = None
        self._started = threading.Event()
        self._request_stop: Optional[Callable[[], None]] = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def started(self, urls: list[str]) -> None:  # the task_status interface
        self.urls = urls
        self._started.set()

    def _run(self) -> None:
        try:
            if self.backend == "trio":
                import trio

                trio.run(self._trio_main)
            elif self.backend == "uvloop":
                import uvloop

                with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
                    runner.run(self._asyncio_main())
            else:
                asyncio.run(self._asyncio_main())
        except BaseException as error:  # reported to the test by stop()/start()
            self.error = error
        finally:
            self._started.set()

    async def _asyncio_main(self) -> None:
        from hypercorn.asyncio.run import worker_serve

        loop = asyncio.get_running_loop()
        stop = asyncio.Event()
        self._request_stop = lambda: loop.call_soon_threadsafe(stop.set)
        await worker_serve(self.app, self.config, shutdown_trigger=stop.wait, task_status=self)

    async def _trio_main(self) -> None:
        import trio

        from hypercorn.trio.run import worker_serve

        token = trio.lowlevel.current_trio_token()
        stop = trio.Event()
        self._request_stop = lambda: token.run_sync_soon(stop.set)
        await worker_serve(self.app, self.config, shutdown_trigger=stop.wait, task_status=self)

    def start(self) -> RunningServer:
        self._thread.start()
        if not self._started.wait(15):
            raise TimeoutError("server did not start")
        if self.error is not None:
            raise self.error
        return self

    @property
    def url(self) -> str:
        return self.urls[0]

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])

    def request_stop(self) -> None:
        if self._request_stop is not None and self._thread.is_alive():
            try:
                self._request_stop()
            except RuntimeError:  # the loop has already finished
                pass

    def stop(self, timeout: float = 15) -> None:
        self.request_stop()
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise TimeoutError("server did not stop")
        if self.error is not None:
            raise self.error


@pytest.fixture(scope="session")
def ca() -> Any:
    import trustme

    return trustme.CA()


@pytest.fixture
def tls_files(ca: Any, tmp_path: Path) -> dict[str, str]:
    """A certificate for localhost/127.0.0.1/::1 (``certfile``, ``keyfile``) and its CA."""
    leaf = ca.issue_cert("localhost", "127.0.0.1", "::1")
    cert = tmp_path / "cert.pem"
    key = tmp_path / "key.pem"
    leaf.private_key_pem.write_to_path(str(key))
    with open(cert, "wb") as file_:
        for blob in leaf.cert_chain_pems:
            file_.write(blob.bytes())
    ca_path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(ca_path))
    return {"certfile": str(cert), "keyfile": str(key), "ca": str(ca_path)}


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    if request.param == "uvloop" and sys.platform == "win32":
        pytest.skip("uvloop is not available on Windows")
    return str(request.param)


@pytest.fixture
def http1_parser() -> str:
    """The HTTP/1.1 parser servers use; a module overrides this fixture (parametrised) to run
    its tests on both the httptools fast path and the h11 path."""
    return "auto"


@pytest.fixture
def serve(backend: str, http1_parser: str) -> Iterator[Callable[..., RunningServer]]:
    """``serve(app, mode=None, **config_settings)`` starts a server; all stop at teardown."""
    servers: list[RunningServer] = []

    def start(
        app: Any, mode: str | None = None, config: Config | None = None, **settings: Any
    ) -> RunningServer:
        if config is None:
            settings.setdefault("http1_parser", http1_parser)
        server = RunningServer(app, backend, mode, config, **settings)
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.stop()


def raw_exchange(
    port: int,
    data: bytes,
    *,
    timeout: float = 5.0,
    until: bytes | None = None,
    host: str = "127.0.0.1",
) -> bytes:
    """Send ``data`` on a fresh connection; read until the server closes (or ``until`` seen)."""
    with socket.create_connection((host, port), timeout=timeout) as sock:
        sock.sendall(data)
        chunks = bytearray()
        while True:
            try:
                chunk = sock.recv(65536)
            except (ConnectionResetError, TimeoutError):
                break
            if not chunk:
                break
            chunks += chunk
            if until is not None and until in chunks:
                break
        return bytes(chunks)


# ---------------------------------------------------------------------------- small apps


async def hello_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain")],
        }
    )
    await send({"type": "http.response.body", "body": b"Hello, world!"})


async def echo_app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    """Echoes the body; path /stream streams it back in the chunks it arrived in."""
    if scope["type"] != "http":
        return
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            break
    headers = [
        (b"content-type", b"application/octet-stream"),
        (b"x-path", scope["path"].encode()),
        (b"x-client-port", str(scope["client"][1]).encode() if scope["client"] else b""),
    ]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    if scope["path"] == "/stream":
        for chunk in chunks:
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    else:
        await send({"type": "http.response.body", "body": b"".join(chunks)})

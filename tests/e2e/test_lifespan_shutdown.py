"""Lifespan (state, failures, timeouts) and graceful shutdown, end to end."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import anyio
import httpx
import pytest

from hypercorn.utils import LifespanFailureError, LifespanTimeoutError
from tests.conftest import RunningServer

Serve = Callable[..., RunningServer]


def lifespan_app(events: list[str], fail: str | None = None, raise_in: str | None = None) -> Any:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                stage = message["type"].split(".")[1]
                events.append(stage)
                if raise_in == stage:
                    raise RuntimeError(f"{stage} broke")
                if fail == stage:
                    await send({"type": f"lifespan.{stage}.failed", "message": "no database"})
                    return
                if stage == "startup":
                    scope["state"]["greeting"] = "hello from lifespan"
                await send({"type": f"lifespan.{stage}.complete"})
                if stage == "shutdown":
                    return
        else:
            scope["state"]["mutated"] = True  # must not leak into other requests
            body = f"{scope['state'].get('greeting')}|{scope['state'].get('mutated_before')}"
            scope["state"]["mutated_before"] = True
            await send({"type": "http.response.start", "status": 200})
            await send({"type": "http.response.body", "body": body.encode()})

    return app


def test_lifespan_state_is_copied_into_each_request(serve: Serve) -> None:
    events: list[str] = []
    server = serve(lifespan_app(events))
    assert events == ["startup"]
    for _ in range(2):
        assert httpx.get(server.url).text == "hello from lifespan|None"
    server.stop()
    assert events == ["startup", "shutdown"]


def test_startup_failure_stops_the_server(backend: str) -> None:
    server = RunningServer(lifespan_app([], fail="startup"), backend)
    with pytest.raises(LifespanFailureError, match="no database"):
        server.start()


def test_exception_after_receiving_startup_is_a_startup_failure(backend: str) -> None:
    server = RunningServer(lifespan_app([], raise_in="startup"), backend)
    with pytest.raises(LifespanFailureError, match="startup broke"):
        server.start()


def test_app_without_lifespan_support_is_served(serve: Serve) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        assert scope["type"] == "http"
        await send({"type": "http.response.start", "status": 204})
        await send({"type": "http.response.body"})

    server = serve(app)
    assert httpx.get(server.url).status_code == 204


def test_startup_timeout(backend: str) -> None:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        await receive()
        await anyio.sleep(30)

    server = RunningServer(app, backend, startup_timeout=0.2)
    with pytest.raises(LifespanTimeoutError):
        server.start()


def test_graceful_shutdown_lets_in_flight_request_finish(serve: Serve) -> None:
    entered = threading.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        entered.set()
        await anyio.sleep(0.5)
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body", "body": b"finished"})

    server = serve(app, graceful_timeout=5.0)
    result: dict[str, Any] = {}

    def slow_request() -> None:
        result["response"] = httpx.get(server.url, timeout=10)

    thread = threading.Thread(target=slow_request)
    thread.start()
    assert entered.wait(5)
    started = time.monotonic()
    server.stop()
    thread.join(5)
    response = result["response"]
    assert response.text == "finished"
    assert response.headers["connection"] == "close"
    assert time.monotonic() - started < 4.0
    with pytest.raises(httpx.ConnectError):
        httpx.get(server.url)


def test_graceful_timeout_cancels_stuck_requests(serve: Serve) -> None:
    entered = threading.Event()
    cancelled = threading.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        entered.set()
        try:
            await anyio.sleep(60)
        except anyio.get_cancelled_exc_class():
            cancelled.set()
            raise

    server = serve(app, graceful_timeout=0.3)
    outcome: list[BaseException] = []

    def request() -> None:
        try:
            httpx.get(server.url, timeout=10)
        except httpx.HTTPError as error:
            outcome.append(error)

    thread = threading.Thread(target=request)
    thread.start()
    assert entered.wait(5)
    started = time.monotonic()
    server.stop()
    thread.join(5)
    assert cancelled.is_set()
    assert len(outcome) == 1  # the client saw the connection end without a response
    assert time.monotonic() - started < 3.0


def test_idle_keep_alive_connection_closed_at_shutdown(serve: Serve) -> None:
    from tests.conftest import hello_app

    server = serve(hello_app, keep_alive_timeout=60)
    import socket

    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
        data = b""
        while not data.endswith(b"Hello, world!"):
            data += sock.recv(4096)
        started = time.monotonic()
        server.stop()
        assert sock.recv(4096) == b""
        assert time.monotonic() - started < 2.0

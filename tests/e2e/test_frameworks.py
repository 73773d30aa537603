"""A real ASGI framework (Starlette) served end to end, lifespan included."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import httpx
import pytest

from tests.conftest import RunningServer

Serve = Callable[..., RunningServer]


def test_starlette_app(serve: Serve) -> None:
    pytest.importorskip("starlette")
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, PlainTextResponse, StreamingResponse
    from starlette.routing import Route

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[dict[str, str]]:
        yield {"db": "connected"}

    async def home(request: Request) -> PlainTextResponse:
        return PlainTextResponse(f"db={request.state.db}")

    async def echo(request: Request) -> JSONResponse:
        return JSONResponse({"body": (await request.body()).decode(), "path": request.url.path})

    async def stream(request: Request) -> StreamingResponse:
        async def numbers() -> AsyncIterator[bytes]:
            for i in range(3):
                yield f"{i}\n".encode()

        return StreamingResponse(numbers())

    app = Starlette(
        routes=[Route("/", home), Route("/echo", echo, methods=["POST"]), Route("/stream", stream)],
        lifespan=lifespan,
    )
    server = serve(app)
    assert httpx.get(server.url).text == "db=connected"
    assert httpx.post(server.url + "/echo", content=b"hi").json() == {"body": "hi", "path": "/echo"}
    assert httpx.get(server.url + "/stream").text == "0\n1\n2\n"

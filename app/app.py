"""The demo application baked into the image: HTTP, a streamed response and a WebSocket echo.

Serve it with ``make run`` (http://127.0.0.1:8000). Replace it by mounting your own code on
``/app`` in the container (``app:app`` by default, ``HYPERCORN_APP`` picks another object).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

PAGE = b"""<!doctype html>
<html><head><meta charset="utf-8"><title>hypercorn demo</title></head>
<body>
<h1>hypercorn is serving</h1>
<ul>
<li><a href="/stream">/stream</a>: a response streamed in ten chunks</li>
<li><a href="/info">/info</a>: this request's ASGI scope as JSON</li>
<li>POST /echo: echoes the request body</li>
<li>ws://HOST/ws: a WebSocket echo</li>
</ul>
</body></html>
"""


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                scope["state"]["started"] = True
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    elif scope["type"] == "websocket":
        await websocket_echo(receive, send)
    else:
        await http(scope, receive, send)


async def http(scope: dict[str, Any], receive: Any, send: Any) -> None:
    path = scope["path"]
    if path == "/stream":
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/plain; charset=utf-8")],
            }
        )
        for number in range(10):
            await send(
                {
                    "type": "http.response.body",
                    "body": f"chunk {number}\n".encode(),
                    "more_body": True,
                }
            )
            await asyncio.sleep(0.1)
        await send({"type": "http.response.body", "body": b""})
        return
    if path == "/echo":
        body = bytearray()
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body", False):
                break
        await respond(send, 200, bytes(body), b"application/octet-stream")
        return
    if path == "/info":
        info = {
            key: value
            for key, value in scope.items()
            if key
            in (
                "http_version",
                "method",
                "scheme",
                "path",
                "query_string",
                "root_path",
                "client",
                "server",
            )
        }
        info["query_string"] = scope["query_string"].decode("latin-1")
        info["headers"] = [[k.decode("latin-1"), v.decode("latin-1")] for k, v in scope["headers"]]
        await respond(send, 200, json.dumps(info, indent=2).encode(), b"application/json")
        return
    if path == "/":
        await respond(send, 200, PAGE, b"text/html; charset=utf-8")
        return
    await respond(send, 404, b"not found\n", b"text/plain; charset=utf-8")


async def respond(send: Any, status: int, body: bytes, content_type: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", content_type)],
        }
    )
    await send({"type": "http.response.body", "body": body})


async def websocket_echo(receive: Any, send: Any) -> None:
    while True:
        message = await receive()
        if message["type"] == "websocket.connect":
            await send({"type": "websocket.accept"})
        elif message["type"] == "websocket.receive":
            if message.get("text") is not None:
                await send({"type": "websocket.send", "text": message["text"]})
            else:
                await send({"type": "websocket.send", "bytes": message.get("bytes")})
        else:
            return

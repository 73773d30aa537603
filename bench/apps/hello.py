"""The applications every server in the benchmark serves (ASGI here, WSGI in hello_wsgi.py):
``/`` hello world, ``/1mib`` a 1 MiB body, ``/echo`` the request body back, and a WebSocket
echo."""

from __future__ import annotations

from typing import Any

BODY = b"Hello, world!"
HEADERS = [(b"content-type", b"text/plain"), (b"content-length", b"13")]
MIB = b"x" * (1024 * 1024)
MIB_HEADERS = [(b"content-type", b"application/octet-stream"), (b"content-length", b"1048576")]


async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.accept"})
        while True:
            message = await receive()
            if message["type"] != "websocket.receive":
                return
            await send(
                {
                    "type": "websocket.send",
                    "bytes": message.get("bytes"),
                    "text": message.get("text"),
                }
            )
    if scope["type"] != "http":
        return
    path = scope["path"]
    if path == "/1mib":
        await send({"type": "http.response.start", "status": 200, "headers": MIB_HEADERS})
        await send({"type": "http.response.body", "body": MIB})
    elif path == "/echo":
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-length", str(len(body)).encode())],
            }
        )
        await send({"type": "http.response.body", "body": body})
    else:
        await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
        await send({"type": "http.response.body", "body": BODY})

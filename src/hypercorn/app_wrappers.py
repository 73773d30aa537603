"""Adapters from ASGI and WSGI applications to the server's calling convention.

Both wrappers are awaited as ``wrapper(scope, receive, send, sync_spawn, call_soon)``.
``sync_spawn(fn, *args)`` runs a blocking callable in a worker thread; ``call_soon(async_fn,
*args)`` is called from such a thread to run a coroutine function on the event loop and wait for
its result.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Iterator
from functools import partial
from typing import Any

from .typing import (
    ASGIFramework,
    ASGIReceiveCallable,
    ASGISendCallable,
    CallSoon,
    Scope,
    SyncSpawn,
    WSGIFramework,
)


class InvalidPathError(Exception):
    """The request path cannot be represented in a WSGI environ."""


class ASGIWrapper:
    """Runs an ASGI 3 application."""

    def __init__(self, app: ASGIFramework) -> None:
        self.app = app

    async def __call__(
        self,
        scope: Scope,
        receive: ASGIReceiveCallable,
        send: ASGISendCallable,
        sync_spawn: SyncSpawn,
        call_soon: CallSoon,
    ) -> None:
        await self.app(scope, receive, send)


class RequestBodyTooLarge(Exception):
    """The request body exceeded the WSGI body limit."""


class _InputStream:
    """``wsgi.input``: pulls the request body from the event loop as the application reads.

    Nothing is buffered beyond the chunk being read, so uploads stream to the application.
    """

    def __init__(self, receive: ASGIReceiveCallable, call_soon: CallSoon, limit: int) -> None:
        self._receive = receive
        self._call_soon = call_soon
        self._limit = limit
        self._buffer = bytearray()
        self._received = 0
        self._done = False

    def _fill(self) -> bool:
        if self._done:
            return False
        message = self._call_soon(self._receive)
        if message["type"] != "http.request":
            self._done = True  # disconnected
            return False
        body = message.get("body", b"")
        self._received += len(body)
        if self._received > self._limit:
            self._done = True
            raise RequestBodyTooLarge()
        self._buffer += body
        if not message.get("more_body", False):
            self._done = True
        return True

    def read(self, size: int | None = -1) -> bytes:
        if size is None or size < 0:
            while self._fill():
                pass
            size = len(self._buffer)
        while len(self._buffer) < size and self._fill():
            pass
        data = bytes(self._buffer[:size])
        del self._buffer[:size]
        return data

    def readline(self, size: int | None = -1) -> bytes:
        while True:
            newline = self._buffer.find(b"\n")
            if newline != -1:
                end = newline + 1
                break
            if size is not None and 0 <= size <= len(self._buffer):
                end = size
                break
            if not self._fill():
                end = len(self._buffer)
                break
        if size is not None and size >= 0:
            end = min(end, size)
        data = bytes(self._buffer[:end])
        del self._buffer[:end]
        return data

    def readlines(self, hint: int | None = -1) -> list[bytes]:
        return list(iter(self.readline, b""))

    def __iter__(self) -> Iterator[bytes]:
        return iter(self.readline, b"")


class _FileWrapper:
    """``wsgi.file_wrapper``: iterate a file-like object in blocks."""

    def __init__(self, filelike: Any, blksize: int = 65536) -> None:
        self.filelike = filelike
        self.blksize = blksize
        if hasattr(filelike, "close"):
            self.close = filelike.close

    def __iter__(self) -> Iterator[bytes]:
        return iter(partial(self.filelike.read, self.blksize), b"")


def _status_code(status: str) -> int:
    try:
        code = int(status.split(" ", 1)[0])
    except (ValueError, AttributeError):
        raise ValueError(f"Invalid WSGI status line {status!r}") from None
    if not 100 <= code <= 599:
        raise ValueError(f"Invalid WSGI status line {status!r}")
    return code


class WSGIWrapper:
    """Runs a WSGI (PEP 3333) application in a worker thread.

    Bodies larger than ``max_body_size`` are answered with 413 (before the application runs when
    Content-Length says so, or as soon as the streamed body passes the limit).
    """

    def __init__(self, app: WSGIFramework, max_body_size: int) -> None:
        self.app = app
        self.max_body_size = max_body_size

    async def __call__(
        self,
        scope: Scope,
        receive: ASGIReceiveCallable,
        send: ASGISendCallable,
        sync_spawn: SyncSpawn,
        call_soon: CallSoon,
    ) -> None:
        if scope["type"] == "http":
            await self.handle_http(scope, receive, send, sync_spawn, call_soon)
        elif scope["type"] == "websocket":
            await send({"type": "websocket.close", "code": 1000})
        elif scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return

    async def handle_http(
        self,
        scope: Any,
        receive: ASGIReceiveCallable,
        send: ASGISendCallable,
        sync_spawn: SyncSpawn,
        call_soon: CallSoon,
    ) -> None:
        for name, value in scope["headers"]:
            if name.lower() == b"content-length":
                try:
                    too_large = int(value) > self.max_body_size
                except ValueError:
                    too_large = False
                if too_large:
                    await _send_simple(send, 413)
                    return
        # The last messages of a response come back from the thread and are sent here: a
        # response in one piece (most WSGI responses) costs one thread hop, not three.
        for message in await sync_spawn(self.run_app, scope, receive, send, call_soon):
            await send(message)

    def run_app(
        self,
        scope: Any,
        receive: ASGIReceiveCallable,
        send: ASGISendCallable,
        call_soon: CallSoon,
    ) -> list[dict[str, Any]]:
        """Run the application in the calling (worker) thread. Earlier parts of a streamed
        response are sent from here; the messages that end it are returned, for the caller
        to send on the event loop."""
        environ = build_environ(scope, _InputStream(receive, call_soon, self.max_body_size))
        response: dict[str, Any] = {}
        headers_sent = False

        def start_response(
            status: str, headers: list[tuple[str, str]], exc_info: Any = None
        ) -> Callable[[bytes], None]:
            if exc_info is not None:
                try:
                    if headers_sent:
                        raise exc_info[1].with_traceback(exc_info[2])
                finally:
                    exc_info = None
            elif response:
                raise AssertionError("start_response called twice without exc_info")
            response["status"] = _status_code(status)
            response["headers"] = [
                (name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers
            ]
            return write

        def start_message() -> dict[str, Any]:
            nonlocal headers_sent
            if not response:
                raise AssertionError("the WSGI application returned before start_response")
            headers_sent = True
            return {
                "type": "http.response.start",
                "status": response["status"],
                "headers": response["headers"],
            }

        def send_headers() -> None:
            call_soon(send, start_message())

        def write(data: bytes) -> None:
            if not headers_sent:
                send_headers()
            if data:
                call_soon(
                    send, {"type": "http.response.body", "body": bytes(data), "more_body": True}
                )

        try:
            result: Iterable[bytes] = self.app(environ, start_response)
        except RequestBodyTooLarge:
            if not headers_sent:
                call_soon(_send_simple, send, 413)
                return []
            raise
        try:
            iterator = iter(result)
            first = b""
            try:
                # Buffer until the first non-empty chunk so a one-chunk body gets a
                # Content-Length and is sent with the headers in one write.
                for chunk in iterator:
                    if chunk:
                        first = chunk
                        break
            except RequestBodyTooLarge:
                if not headers_sent:
                    call_soon(_send_simple, send, 413)
                    return []
                raise
            pending = first
            for chunk in iterator:
                if not chunk:
                    continue
                if not headers_sent:
                    send_headers()
                if pending:
                    call_soon(
                        send,
                        {"type": "http.response.body", "body": bytes(pending), "more_body": True},
                    )
                pending = chunk
            last = {"type": "http.response.body", "body": bytes(pending), "more_body": False}
            return [last] if headers_sent else [start_message(), last]
        finally:
            close = getattr(result, "close", None)
            if close is not None:
                close()


async def _send_simple(send: ASGISendCallable, status: int) -> None:
    from http import HTTPStatus

    body = HTTPStatus(status).phrase.encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def build_environ(scope: Any, body: Any) -> dict[str, Any]:
    """The PEP 3333 environ for an ASGI HTTP scope."""
    server = scope.get("server") or ("localhost", 80)
    path = scope["path"]
    script_name = scope.get("root_path", "")
    if script_name and path.startswith(script_name):
        path = path[len(script_name) :]
    try:
        path_info = path.encode("utf-8").decode("latin-1")
        script_name = script_name.encode("utf-8").decode("latin-1")
    except UnicodeError:
        raise InvalidPathError(f"Cannot encode path {path!r} for WSGI") from None
    environ: dict[str, Any] = {
        "REQUEST_METHOD": scope["method"],
        "SCRIPT_NAME": script_name,
        "PATH_INFO": path_info,
        "QUERY_STRING": scope["query_string"].decode("ascii", "replace"),
        "SERVER_NAME": str(server[0]),
        "SERVER_PORT": str(server[1]) if server[1] is not None else "",
        "SERVER_PROTOCOL": f"HTTP/{scope['http_version']}",
        "wsgi.version": (1, 0),
        "wsgi.url_scheme": scope.get("scheme", "http"),
        "wsgi.input": body,
        "wsgi.errors": sys.stderr,
        "wsgi.multithread": True,
        "wsgi.multiprocess": True,
        "wsgi.run_once": False,
        "wsgi.file_wrapper": _FileWrapper,
        "asgi.scope": scope,
    }
    if scope.get("client"):
        environ["REMOTE_ADDR"] = scope["client"][0]
        environ["REMOTE_PORT"] = str(scope["client"][1])
    for raw_name, raw_value in scope["headers"]:
        name = raw_name.decode("latin-1").upper()
        value = raw_value.decode("latin-1")
        if name == "CONTENT-LENGTH":
            key = "CONTENT_LENGTH"
        elif name == "CONTENT-TYPE":
            key = "CONTENT_TYPE"
        else:
            key = "HTTP_" + name.replace("-", "_")
        if key in environ:
            value = f"{environ[key]}{'; ' if key == 'HTTP_COOKIE' else ','}{value}"
        environ[key] = value
    return environ


__all__ = ["ASGIWrapper", "InvalidPathError", "WSGIWrapper", "build_environ"]

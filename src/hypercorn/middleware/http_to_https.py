"""Redirect plain-HTTP (and ws://) requests to HTTPS (wss://).

GET and HEAD get ``301 Moved Permanently`` (cacheable, what browsers and crawlers expect);
other methods get ``308 Permanent Redirect`` so the method and body are kept. WebSocket
handshakes are denied with a 308 through ``websocket.http.response`` where the server offers
it, and closed otherwise.
"""

from __future__ import annotations

from typing import Any, Optional
from urllib.parse import urlunsplit

from ..typing import ASGIFramework, ASGIReceiveCallable, ASGISendCallable, Scope


class HTTPToHTTPSRedirectMiddleware:
    """Send secure requests to ``app``; redirect the rest to ``https://host``."""

    def __init__(
        self, app: ASGIFramework, host: Optional[str], https_port: Optional[int] = None
    ) -> None:
        """``host`` is where to send clients (default: the request's Host); ``https_port``, if
        given, replaces the port of the request's Host (omitted when it is 443)."""
        self.app = app
        self.host = host
        self.https_port = https_port

    async def __call__(
        self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        if scope["type"] == "http" and scope["scheme"] == "http":
            await self._redirect_http(scope, send)
        elif scope["type"] == "websocket" and scope["scheme"] == "ws":
            await self._redirect_websocket(scope, send)
        else:
            await self.app(scope, receive, send)

    def _new_url(self, scheme: str, scope: Any) -> str:
        host = self.host
        if host is None:
            for name, value in scope["headers"]:
                if name == b"host":
                    host = value.decode("latin-1")
                    break
            if host is not None and self.https_port is not None:
                bare = host.rsplit(":", 1)[0] if host.count(":") == 1 or "]:" in host else host
                host = bare if self.https_port == 443 else f"{bare}:{self.https_port}"
        if host is None and scope.get("server"):
            server_host, port = scope["server"]
            host = server_host if port in (None, 80, 443) else f"{server_host}:{port}"
        path = scope.get("raw_path") or scope["path"].encode()
        return str(
            urlunsplit(
                (
                    scheme,
                    host or "",
                    path.decode("latin-1"),
                    scope["query_string"].decode("latin-1"),
                    "",
                )
            )
        )

    async def _redirect_http(self, scope: Any, send: ASGISendCallable) -> None:
        status = 301 if scope["method"] in ("GET", "HEAD") else 308
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"location", self._new_url("https", scope).encode("latin-1")),
                    (b"content-length", b"0"),
                ],
            }
        )
        await send({"type": "http.response.body"})

    async def _redirect_websocket(self, scope: Any, send: ASGISendCallable) -> None:
        if "websocket.http.response" in scope.get("extensions", {}):
            await send(
                {
                    "type": "websocket.http.response.start",
                    "status": 308,
                    "headers": [(b"location", self._new_url("wss", scope).encode("latin-1"))],
                }
            )
            await send({"type": "websocket.http.response.body", "body": b""})
        else:
            await send({"type": "websocket.close"})

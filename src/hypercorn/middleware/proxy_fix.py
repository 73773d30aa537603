"""Take the client address, scheme and host from a reverse proxy's headers.

``mode="legacy"`` reads ``X-Forwarded-For``, ``X-Forwarded-Proto`` and ``X-Forwarded-Host``;
``mode="modern"`` reads RFC 7239 ``Forwarded``. ``trusted_hops`` is the number of proxies in
front of the server: the value used is the one that many entries from the right, the first
one a trusted proxy appended (entries further left are client-controlled). If fewer entries
than that are present the header is ignored.

Only use this when every request comes through the proxies; otherwise a client can choose its
own address. The server-level ``trusted_proxies`` setting checks the peer address too.
"""

from __future__ import annotations

from typing import Any, Literal, Optional

from ..typing import ASGIFramework, ASGIReceiveCallable, ASGISendCallable, Scope


def header_values(headers: Any, name: bytes) -> list[str]:
    """Every comma-separated entry of every ``name`` header, in order."""
    values: list[str] = []
    for header_name, value in headers:
        if header_name.lower() == name:
            values += [part.strip() for part in value.decode("latin-1").split(",")]
    return values


def parse_forwarded(element: str) -> dict[str, str]:
    """One RFC 7239 forwarded-element (``for=1.2.3.4;proto=https``) as a dict."""
    result: dict[str, str] = {}
    for pair in element.split(";"):
        key, sep, value = pair.partition("=")
        if sep:
            result[key.strip().lower()] = value.strip().strip('"')
    return result


def strip_port(node: str) -> str:
    """The address of a forwarded node: ``[::1]:80`` -> ``::1``, ``1.2.3.4:80`` -> ``1.2.3.4``."""
    if node.startswith("["):
        return node[1 : node.find("]")] if "]" in node else node
    if node.count(":") == 1:
        return node.split(":", 1)[0]
    return node


class ProxyFixMiddleware:
    """Rewrite ``client``, ``scheme`` and the Host header from trusted forwarding headers."""

    def __init__(
        self,
        app: ASGIFramework,
        mode: Literal["legacy", "modern"] = "legacy",
        trusted_hops: int = 1,
    ) -> None:
        self.app = app
        self.mode = mode
        self.trusted_hops = trusted_hops

    def _pick(self, values: list[str]) -> Optional[str]:
        if len(values) < self.trusted_hops or self.trusted_hops < 1:
            return None
        return values[-self.trusted_hops] or None

    async def __call__(
        self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        if scope["type"] in ("http", "websocket"):
            scope = self.apply(scope)
        await self.app(scope, receive, send)

    def apply(self, scope: Any) -> Any:
        """A copy of ``scope`` with the forwarded values applied."""
        headers = scope["headers"]
        client: Optional[str]
        proto: Optional[str]
        host: Optional[str]
        if self.mode == "modern":
            element = self._pick(header_values(headers, b"forwarded"))
            fields = parse_forwarded(element) if element else {}
            client, proto, host = fields.get("for"), fields.get("proto"), fields.get("host")
        else:
            client = self._pick(header_values(headers, b"x-forwarded-for"))
            proto = self._pick(header_values(headers, b"x-forwarded-proto"))
            host = self._pick(header_values(headers, b"x-forwarded-host"))
        scope = dict(scope)
        if client:
            scope["client"] = (strip_port(client), 0)
        if proto:
            proto = proto.lower()
            if scope["type"] == "websocket":
                proto = {"http": "ws", "https": "wss"}.get(proto, proto)
            scope["scheme"] = proto
        if host:
            scope["headers"] = [
                (name, value) for name, value in headers if name.lower() != b"host"
            ] + [(b"host", host.encode("latin-1"))]
        return scope

"""What the backends share about transports: the ASGI view of a connection's addresses and TLS."""

from __future__ import annotations

import socket
import ssl
from typing import Any, Optional, Union

from .admin import metrics
from .logging import Logger
from .protocol import ConnectionInfo
from .utils import parse_socket_addr

_TLS_VERSIONS = {"TLSv1.2": 0x0303, "TLSv1.3": 0x0304}


def tls_extension(ssl_object: Union[ssl.SSLObject, ssl.SSLSocket, Any]) -> dict[object, object]:
    """The ASGI ``tls`` scope extension for an established TLS connection."""
    chain: list[str] = []
    der = ssl_object.getpeercert(binary_form=True)
    if der:
        chain.append(ssl.DER_cert_to_PEM_cert(der))
    cipher = ssl_object.cipher()
    return {
        "server_cert": None,
        "client_cert_chain": chain,
        "client_cert_name": None,
        "client_cert_error": None,
        "tls_version": _TLS_VERSIONS.get(ssl_object.version() or ""),
        "cipher_suite": None,
        "cipher_name": cipher[0] if cipher else None,
    }


def connection_info(
    family: int | None, peer: Any, local: Any, ssl_object: Any, state: dict[str, Any]
) -> ConnectionInfo:
    """Build the :class:`ConnectionInfo` of an accepted connection. Without a socket to ask,
    the family is inferred from the shape of the peer address."""
    if family is None and isinstance(peer, tuple):
        family = socket.AF_INET6 if len(peer) == 4 else socket.AF_INET
    client = parse_socket_addr(family, peer) if family is not None else None
    server: tuple[str, int | None] | None = (
        parse_socket_addr(family, local) if family is not None else None
    )
    if server is None and isinstance(local, str):
        server = (local, None)  # a unix socket: ASGI's [path, None]
    if ssl_object is not None:
        return ConnectionInfo(client, server, "https", tls_extension(ssl_object), state)
    return ConnectionInfo(client, server, "http", None, state)


def access_response(stream: Any) -> Optional[dict[str, Any]]:
    """What the access log needs to know about a finished stream's response."""
    if stream.status is None:
        return None
    return {
        "status": stream.status,
        "headers": stream.response_headers,
        "bytes": stream.bytes_sent,
        "peer": stream.peer,
    }


def app_starting(stream: Any, context: Any) -> bool:
    """Bookkeeping before an application call; True if the request is counted in the metrics
    (only when an admin listener can serve them, and never the admin listener's own)."""
    if context.metrics:
        metrics().request_started(stream.scope["type"] == "websocket")
        return True
    return False


def untrusted_warning_due(stream: Any, context: Any) -> bool:
    """True (once per worker) when a request carried forwarded headers from a peer that is
    not a trusted proxy: the caller logs UNTRUSTED_FORWARDED_WARNING."""
    if stream.untrusted_forwarded and not context.warned_untrusted:
        context.warned_untrusted = True
        return True
    return False


def app_ended(stream: Any, context: Any, log: Any, elapsed: float) -> bool:
    """Bookkeeping after an application call (metrics). True if the access log wants the
    request: the caller awaits ``log.access``. (Plain functions, not coroutines: these run
    for every request, and most servers neither count nor log them.)"""
    if context.metrics:
        metrics().request_finished(
            stream.status,
            stream.scope["http_version"],
            elapsed,
            stream.scope["type"] == "websocket",
        )
    return bool(context.observe) and (
        log.access_logger is not None or type(log).access is not Logger.access
    )


UNTRUSTED_FORWARDED_WARNING = (
    "forwarded headers arrived from %s, which is not in trusted_proxies, and were ignored "
    "(set trusted_proxies to the proxy's address to use them); this is logged once"
)


def log_refusal(config: Any, kind: str, refused: int) -> None:
    """Say that ``max_connections`` turned a connection away: the first time, then every
    1000th, so a flood cannot flood the log too."""
    if refused == 1 or refused % 1000 == 0:
        error_logger = config.log.error_logger
        if error_logger is not None:
            error_logger.warning(
                "max_connections (%d) reached: new %s connections are refused (%d so far)",
                config.max_connections,
                kind,
                refused,
            )

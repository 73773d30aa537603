"""One rooted tree of protocol errors, each carrying its wire meaning."""

from __future__ import annotations


class ProtocolError(Exception):
    """The peer broke the protocol. ``status`` is the HTTP status to answer with (when a
    response is still possible), ``h2_code`` the HTTP/2 error code and ``ws_code`` the
    WebSocket close code."""

    status = 400
    h2_code = 0x1  # PROTOCOL_ERROR
    ws_code = 1002

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        if status is not None:
            self.status = status


class MalformedRequest(ProtocolError):
    """An HTTP/2 or HTTP/3 request header block the RFCs call malformed: a stream error
    (PROTOCOL_ERROR, H3_MESSAGE_ERROR)."""


class HeaderBlockError(ProtocolError):
    """An HTTP/2 header block that cannot be decoded (``hpack_decoder``): RFC 9113 section 4.3
    makes it a connection error of type COMPRESSION_ERROR. h2 does not catch it (it would
    have wrapped an hpack error in a PROTOCOL_ERROR); the adapter ends the connection."""

    h2_code = 0x9  # COMPRESSION_ERROR


class ClientDisconnected(OSError):
    """Raised by ``send()`` once the client has gone (ASGI 2.4: an OSError subclass)."""


class HandshakeError(Exception):
    """The upgrade request is not a valid WebSocket handshake; ``status`` says how to answer."""

    def __init__(
        self, message: str, status: int = 400, headers: list[tuple[bytes, bytes]] | None = None
    ) -> None:
        super().__init__(message)
        self.status = status
        self.headers = headers or []


class HeadersTooLarge(ProtocolError):
    status = 431


class MethodNotAllowed(ProtocolError):
    status = 405

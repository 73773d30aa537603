"""What both HTTP/1.1 adapters (h11 and the httptools fast path) decide the same way.

Every request head passes :func:`check_request`; the raw bytes of a head pass
:func:`head_violation` (h11 tolerates some framing that RFC 9112 lets a server reject, and
llhttp rejects it, so the h11 path checks the bytes itself). The answers:

- 400: bare CR or LF, obsolete line folding, control characters in a header, duplicate
  Content-Length (even with equal values), Content-Length with Transfer-Encoding, a missing
  Host on HTTP/1.1, a request target that is not origin-form, absolute-form or ``OPTIONS *``,
  a method outside :data:`KNOWN_METHODS` (what llhttp can parse; it cannot tell an unknown
  method from a line that is not a request line, so neither path answers 501);
- 405: CONNECT (only WebSocket upgrades are tunnelled, and over HTTP/2 and HTTP/3);
- 431: a head larger than ``h11_max_incomplete_size``;
- 501: a Transfer-Encoding other than ``chunked`` (RFC 9112 6.1).

Also 400: an HTTP version other than 1.0 and 1.1 (llhttp reads a malformed request line as
HTTP/0.9, h11 takes ``HTTP/2.0`` at its word). Empty lines before a request line are ignored
(RFC 9112 2.2), at the start of a connection and between pipelined requests.

Each of these closes the connection after the answer.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Optional

from .errors import HeadersTooLarge, MethodNotAllowed, ProtocolError
from .http_stream import reason_phrase
from .selection import SUPPORTED_ALPN

if TYPE_CHECKING:
    from ..config import Config
    from . import ConnectionInfo

# The methods llhttp knows (HTTP and WebDAV/CalDAV extensions); a test keeps this in step
# with the installed httptools.
KNOWN_METHODS = frozenset(
    b"ACL BIND CHECKOUT CONNECT COPY DELETE GET HEAD LINK LOCK M-SEARCH MERGE MKACTIVITY "
    b"MKCALENDAR MKCOL MOVE NOTIFY OPTIONS PATCH POST PROPFIND PROPPATCH PURGE PUT QUERY "
    b"REBIND REPORT SEARCH SOURCE SUBSCRIBE TRACE UNBIND UNLINK UNLOCK UNSUBSCRIBE".split()
)
# The end of a head as h11 finds it (it accepts bare LF line endings).
_HEAD_END = re.compile(rb"\r?\n\r?\n")
# Bare LF, bare CR, a folded line, or a control character other than HTAB.
_HEAD_VIOLATION = re.compile(rb"(?<!\r)\n|\r(?!\n)|\r\n[ \t]|[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def head_violation(buffer: bytes | bytearray) -> bool:
    """True if the request head at the start of ``buffer`` (all of it if its end has not
    arrived) has bare CR/LF, folded lines, control characters or two Content-Length fields
    (the checks llhttp makes and h11 does not)."""
    end = _HEAD_END.search(buffer)
    if end is not None:
        head = buffer[: end.end()]  # with its terminator, which must be CRLF CRLF
    else:  # incomplete: a CR at the very end may yet be followed by its LF
        head = buffer[:-1] if buffer[-1:] == b"\r" else buffer
    # h11 merges repeated equal Content-Length fields, so they are counted here.
    return bool(_HEAD_VIOLATION.search(head)) or head.lower().count(b"\ncontent-length:") > 1


def check_request(
    config: Config,
    method: bytes,
    target: bytes,
    headers: Sequence[tuple[bytes, bytes]],
    http_version: bytes,
) -> tuple[bytes, bool]:
    """Apply the shared rules to a parsed head (lower-case header names); return the request
    target in origin form and whether the request has a body. Raises :class:`ProtocolError`
    with the status to answer."""
    if method not in KNOWN_METHODS:
        raise ProtocolError("unrecognized method")
    head_size = len(method) + len(target) + 12
    lengths = chunked = 0
    host = False
    for name, value in headers:
        head_size += len(name) + len(value) + 4
        if name == b"content-length":
            lengths += 1
        elif name == b"transfer-encoding":
            if value.strip().lower() != b"chunked":  # the only coding a server must know
                raise ProtocolError("unsupported Transfer-Encoding", 501)  # RFC 9112 6.1
            chunked += 1
        elif name == b"host":
            host = True
    # Bound complete heads too (h11 bounds only heads that arrive in pieces), so the answer
    # does not depend on how the bytes were split.
    if head_size > config.h11_max_incomplete_size:
        raise HeadersTooLarge("request head too large")
    if lengths > 1:
        raise ProtocolError("duplicate Content-Length")
    if lengths and chunked:
        raise ProtocolError("both Content-Length and Transfer-Encoding present")
    if http_version not in (b"1.1", b"1.0"):
        raise ProtocolError("unsupported HTTP version")
    if not host and http_version == b"1.1":
        raise ProtocolError("missing Host header")
    if method == b"CONNECT":
        raise MethodNotAllowed("CONNECT is not supported over HTTP/1.1")
    if target[:1] != b"/":
        if target == b"*" and method == b"OPTIONS":
            pass
        elif target.startswith((b"http://", b"https://")):
            slash = target.find(b"/", target.find(b"//") + 2)
            target = target[slash:] if slash != -1 else b"/"
        else:
            raise ProtocolError("request target is not origin-form or absolute-form")
    return target, bool(lengths or chunked)


def body_timeout(config: Config) -> Optional[float]:
    """The request-body inactivity timeout: the shorter of ``request_body_timeout`` and
    ``read_timeout`` (Hypercorn's name for it), when set."""
    timeouts = [t for t in (config.request_body_timeout, config.read_timeout) if t]
    return min(timeouts) if timeouts else None


def h2c_settings(
    info: ConnectionInfo, headers: Sequence[tuple[bytes, bytes]], has_body: bool
) -> Optional[bytes]:
    """The HTTP2-Settings value if this request asks for (and may get) an h2c upgrade.

    Only on plain connections and for requests without a body (the body would have to be
    read as HTTP/1.1 first); otherwise the Upgrade header is ignored, as RFC 9110 allows.
    """
    if info.scheme != "http" or has_body or "h2" not in SUPPORTED_ALPN:
        return None
    upgrade = settings = None
    for name, value in headers:
        if name == b"upgrade":
            upgrade = value.lower()
        elif name == b"http2-settings":
            settings = value
    if upgrade is None or settings is None:
        return None
    if b"h2c" not in [token.strip() for token in upgrade.split(b",")]:
        return None
    return settings


H2C_SWITCH = b"HTTP/1.1 101 Switching Protocols\r\nconnection: Upgrade\r\nupgrade: h2c\r\n\r\n"
H2C_DROPPED = (b"connection", b"upgrade", b"http2-settings")


def error_response(
    config: Config, status: int, headers: Sequence[tuple[bytes, bytes]] = ()
) -> bytes:
    """A short plain-text response for a request no application sees; the connection closes."""
    body = reason_phrase(status)
    head = [b"HTTP/1.1 %d %s\r\n" % (status, body)]
    for name, value in [*config.response_headers("h11"), *headers]:
        head.append(b"%s: %s\r\n" % (name, value))
    head.append(b"content-type: text/plain; charset=utf-8\r\n")
    head.append(b"content-length: %d\r\nconnection: close\r\n\r\n" % len(body))
    return b"".join(head) + body

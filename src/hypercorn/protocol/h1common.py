"""What both HTTP/1.1 adapters (h11 and the httptools fast path) decide the same way.

Every request head passes :func:`check_request`; the raw bytes of a head pass
:func:`head_violation` (h11 tolerates some framing that RFC 9112 lets a server reject, and
llhttp rejects it, so the h11 path checks the bytes itself). The answers:

- 400: bare CR or LF, obsolete line folding, control characters in a header, duplicate
  Content-Length (even with equal values), Content-Length with Transfer-Encoding, a missing
  Host on HTTP/1.1, more than one Host, a request target that is not origin-form,
  absolute-form or ``OPTIONS *``, a method outside :data:`KNOWN_METHODS` (what llhttp can
  parse; it cannot tell an unknown method from a line that is not a request line, so neither
  path answers 501);
- 405: CONNECT (only WebSocket upgrades are tunnelled, and over HTTP/2 and HTTP/3);
- 431: a head larger than ``h11_max_incomplete_size``;
- 501: a Transfer-Encoding other than ``chunked`` (RFC 9112 6.1).

Also 400: an HTTP version other than 1.0 and 1.1 (llhttp reads a malformed request line as
HTTP/0.9, h11 takes ``HTTP/2.0`` at its word). Empty lines before a request line are ignored
(RFC 9112 2.2), at the start of a connection and between pipelined requests, and a run of
spaces between the parts of a request line reads as one (RFC 9112 3 allows it; llhttp does it).

Each of these closes the connection after the answer.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, ClassVar, Optional, cast

from .errors import HeadersTooLarge, MethodNotAllowed, ProtocolError
from .events import Event, Request, StreamClosed
from .http_stream import HTTPStream, reason_phrase
from .selection import SUPPORTED_ALPN

if TYPE_CHECKING:
    from ..config import Config
    from .connection_info import ConnectionInfo
    from .core_settings import CoreSettings
    from .ws_stream import AnyStream, WSStream

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


_LONGEST_METHOD = max(map(len, KNOWN_METHODS))


def unknown_method(buffer: bytes | bytearray) -> bool:
    """Whether the head at the start of ``buffer`` begins with a method outside
    :data:`KNOWN_METHODS`, as far as its bytes tell: llhttp refuses such a request before it
    reads the headers, so the h11 path must not answer another error found in them."""
    space = buffer.find(b" ", 0, _LONGEST_METHOD + 1)
    if space == -1:
        return len(buffer) > _LONGEST_METHOD
    return bytes(buffer[:space]) not in KNOWN_METHODS


def check_request(
    settings: CoreSettings,
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
    if http_version not in (b"1.1", b"1.0"):  # (llhttp reads a line without one as 0.9)
        raise ProtocolError("unsupported HTTP version")  # before the headers' errors, as h11
    head_size = len(method) + len(target) + 12
    lengths = chunked = hosts = 0
    for name, value in headers:
        head_size += len(name) + len(value) + 4
        if name == b"content-length":
            lengths += 1
        elif name == b"transfer-encoding":
            if value.strip().lower() != b"chunked":  # the only coding a server must know
                raise ProtocolError("unsupported Transfer-Encoding", 501)  # RFC 9112 6.1
            chunked += 1
        elif name == b"host":
            hosts += 1
    # Bound complete heads too (h11 bounds only heads that arrive in pieces), so the answer
    # does not depend on how the bytes were split.
    if head_size > settings.h11_max_incomplete_size:
        raise HeadersTooLarge("request head too large")
    if lengths > 1:
        raise ProtocolError("duplicate Content-Length")
    if lengths and chunked:
        raise ProtocolError("both Content-Length and Transfer-Encoding present")
    if not hosts and http_version == b"1.1":
        raise ProtocolError("missing Host header")
    if hosts > 1:
        raise ProtocolError("more than one Host header")  # RFC 9112 3.2
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


def client_closes(http_version: str, headers: Iterable[tuple[bytes, bytes]]) -> bool:
    """Whether a request says its client sends nothing more on the connection (RFC 9112
    9.3, 9.6): ``Connection: close``, or HTTP/1.0 without ``Connection: keep-alive``."""
    tokens: set[bytes] = set()
    for name, value in headers:
        if name.lower() == b"connection":
            tokens.update(token.strip().lower() for token in value.split(b","))
    if http_version == "1.0":
        return b"keep-alive" not in tokens
    return b"close" in tokens


def is_websocket_upgrade(request: Request) -> bool:
    """True if an HTTP/1.1 request asks to upgrade to WebSocket."""
    for name, value in request.headers:
        if name == b"upgrade" and value.lower() == b"websocket":
            return True
    return False


def websocket_stream(
    config: Config,
    info: ConnectionInfo,
    request: Request,
    emit: Callable[[Event], None],
    now: float,
) -> WSStream:
    """A WebSocket session for an upgrade request (raises HandshakeError). wsproto is
    imported with the first one: a server that never sees one does not pay its memory."""
    from .ws_stream import WSStream

    return WSStream(config, info, request, emit, now)


def websocket_of(stream: AnyStream | None) -> WSStream | None:
    """``stream`` if it is a WebSocket session, else None (without importing ws_stream)."""
    if stream is None or stream.http:
        return None
    return cast("WSStream", stream)


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


class HTTP11Base:
    """What both HTTP/1.1 adapters share: the backend interface around one request at a time
    (or a WebSocket session after a 101), and the deadlines of the module docstring of
    :mod:`hypercorn.protocol.h11`. Subclasses parse and frame; they provide ``wants_read``,
    ``_awaiting_body`` (a request body is still arriving) and ``_send_error_and_close``."""

    multiplexed: ClassVar[bool] = False  # one request at a time

    # Slots (in the subclasses too): the fast adapter has ~40 attributes, past the 30 that
    # let instances share one key table; as plain objects each connection would build a
    # 1.5 KiB dict of its own, which is also slow to fill.
    __slots__ = (
        "_head_started",
        "_idle_pending",
        "_idle_since",
        "_last_body_data",
        "_new_streams",
        "_now",
        "_out",
        "_requests",
        "_shutting_down",
        "_stream",
        "_websocket",
        "client_done",
        "closed",
        "config",
        "info",
        "settings",
        "upgrade",
    )

    def __init__(self, config: Config, info: ConnectionInfo, now: float) -> None:
        self.config = config
        self.settings = config.core_settings  # (what is read per request: see core_settings.py)
        self.info = info
        self.closed = False
        # The client has said it sends nothing more (a complete request with Connection:
        # close, or HTTP/1.0 without keep-alive) and nothing followed it: closing at once
        # cannot make the kernel reset the connection, so the driver need not linger.
        self.client_done = False
        # What to write, in the pieces it was produced in: a large body is never copied on
        # its way to the transport (chunks_to_send and a vectored write).
        self._out: list[bytes] = []
        self._stream: AnyStream | None = None  # the request being answered
        self._websocket: WSStream | None = None  # after a 101: the connection is its
        self._new_streams: list[AnyStream] = []
        self._requests = 0
        self._shutting_down = False
        # Set when the client asked to switch to h2c: (HTTP2-Settings value, the request).
        self.upgrade: Optional[tuple[bytes, Request]] = None
        self._now = now
        self._idle_since: float | None = now
        self._idle_pending = False  # a response just completed; idle starts at the next ``now``
        self._head_started: float | None = None
        self._last_body_data = now

    def _awaiting_body(self) -> bool:
        raise NotImplementedError

    def unprocessed_data(self) -> bytes:
        """Bytes received after the request that switched protocols."""
        raise NotImplementedError

    def _send_error_and_close(
        self, status: int, headers: Sequence[tuple[bytes, bytes]] = ()
    ) -> None:
        raise NotImplementedError

    def connection_lost(self) -> None:
        self.closed = True
        if self._websocket is not None:
            self._websocket.handle(StreamClosed(self._websocket.stream_id))
        elif self._stream is not None:
            self._stream.handle(StreamClosed(self._stream.stream_id))

    @property
    def backlogged(self) -> bool:
        # Requests are parsed one at a time; a WebSocket session parses a turn's worth of
        # frames at a time (ws_stream.FRAMES_PER_TURN).
        websocket = self._websocket
        return websocket is not None and websocket.backlogged

    def process_backlog(self, now: float) -> None:
        websocket = self._websocket
        if websocket is not None:
            self._now = now
            websocket.process_backlog()

    def data_to_send(self) -> bytes:
        return b"".join(self.chunks_to_send())

    def chunks_to_send(self) -> Sequence[bytes]:
        out = self._out
        if not out:
            return ()
        self._out = []
        return out

    def pop_streams_to_cancel(self) -> Sequence[AnyStream]:
        return ()

    def pop_new_streams(self) -> Sequence[AnyStream]:
        if not self._new_streams:
            return ()
        streams, self._new_streams = self._new_streams, []
        return streams

    def _app_has_room(self) -> bool:
        stream = self._stream
        if stream is None:
            return True
        if stream.queued >= self.settings.max_app_queue_size:
            return False
        websocket = self._websocket  # (input it has not parsed yet comes first)
        return websocket is None or not websocket.unparsed

    @property
    def idle(self) -> bool:
        return self._stream is None and self._websocket is None

    def next_deadline(self, now: float) -> float | None:
        if self.closed:
            return None
        if self._websocket is not None:
            return self._websocket.next_deadline(now)
        if self._idle_pending:
            self._idle_pending = False
            if self._idle_since is None:
                self._idle_since = now
        if self._stream is None:
            settings = self.settings
            if self._head_started is not None and settings.request_header_timeout:
                return self._head_started + settings.request_header_timeout
            if self._idle_since is not None:
                return self._idle_since + settings.keep_alive_timeout
            return None
        if self._awaiting_body():
            timeout = self.settings.body_timeout
            if timeout:
                return self._last_body_data + timeout
        return None

    def handle_timer(self, now: float) -> None:
        self._now = now
        if self._websocket is not None:
            self._websocket.handle_timer(now)
            return
        deadline = self.next_deadline(now)
        if deadline is None or now < deadline:
            return
        if self._stream is None:
            if self._head_started is not None:
                self._send_error_and_close(408)
            else:
                self.closed = True
        else:  # the request body stalled
            stream = self._stream
            stream.handle(StreamClosed(stream.stream_id))
            if isinstance(stream, HTTPStream) and stream.state.name in ("REQUEST", "STARTED"):
                self._send_error_and_close(408)
            self.closed = True

    def begin_shutdown(self) -> None:
        self._shutting_down = True
        if self._websocket is not None:
            self._websocket.begin_shutdown()  # close 1001; the connection ends with the session
        elif self._stream is None and self._requests > 0:
            # An idle keep-alive connection: clients expect these to close and retry. A
            # connection that has not sent its first request yet gets it answered instead
            # (with Connection: close), so a drain never refuses a request.
            self.closed = True

"""The fast HTTP/1.1 adapter: httptools (llhttp) parses, responses are framed here.

It has the interface and the behaviour of :class:`~hypercorn.protocol.h11.H11Connection`
(the same states, deadlines, limits, answers to malformed input via
:mod:`~hypercorn.protocol.h1common`, WebSocket and h2c upgrades); a differential test feeds
both the same bytes and compares what applications and clients see. It is chosen when
httptools is installed (:func:`hypercorn.protocol.connection.http11_adapter`).

Request cycle (one request at a time is handed to an application):

    IDLE --head parsed--> current request (BODY while its body arrives)
         --response complete and request complete--> IDLE (keep-alive) or closed

llhttp parses everything it is given, so requests pipelined behind the current one are parsed
at once and kept (head and body) in ``_pending`` until their turn; reading stops
(``wants_read``) once more than ``h11_max_incomplete_size`` bytes wait there.

Responses: ``Content-Length`` when the application gives one, else chunked for HTTP/1.1 and
close-delimited for HTTP/1.0 (which never keeps the connection alive, as with h11).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Optional

import h11
import httptools

from .errors import HandshakeError, ProtocolError
from .events import (
    Body,
    Data,
    EndBody,
    EndData,
    Event,
    InformationalResponse,
    Request,
    Response,
    StreamClosed,
    Trailers,
)
from .h1common import (
    H2C_DROPPED,
    H2C_SWITCH,
    KNOWN_METHODS,
    HTTP11Base,
    check_request,
    error_response,
    h2c_settings,
    is_websocket_upgrade,
    websocket_of,
    websocket_stream,
)
from .http_stream import HTTPStream, reason_phrase

if TYPE_CHECKING:
    from ..config import Config
    from .connection_info import ConnectionInfo
    from .ws_stream import AnyStream

_STATUS_LINES: dict[int, bytes] = {}
_METHOD_NAMES = {method: method.decode("ascii") for method in KNOWN_METHODS}


# Response headers the framing decides (or that may ask for it: Connection: close).
_FRAMING = frozenset((b"content-length", b"transfer-encoding", b"connection"))


def _status_line(status: int) -> bytes:
    """The status line, without its CRLF."""
    line = _STATUS_LINES.get(status)
    if line is None:
        line = _STATUS_LINES[status] = b"HTTP/1.1 %d %s" % (status, reason_phrase(status))
    return line


class _Message:
    """A request parsed from the wire: its head, its body so far, and whether it ended."""

    __slots__ = (
        "body",
        "client_closes",
        "complete",
        "expect_100",
        "has_body",
        "keep_alive",
        "upgrade",
    )

    def __init__(self) -> None:
        self.body: list[bytes] = []
        self.client_closes = False  # its client sends nothing after it (see client_done)
        self.complete = False
        self.expect_100 = False
        self.has_body = False
        self.keep_alive = True
        self.upgrade = False  # it has an Upgrade header (WebSocket, h2c or another)


class FastH11Connection(HTTP11Base):
    """One HTTP/1.1 connection, sans-IO, parsed by httptools."""

    __slots__ = (
        "_body_withheld",
        "_chunked",
        "_client_11",
        "_close_after",
        "_deferred",
        "_discarding",
        "_expect",
        "_head_began_now",
        "_head_bytes",
        "_headers",
        "_in_head",
        "_input_done",
        "_message",
        "_parser",
        "_parsing",
        "_parsing_stream",
        "_pending",
        "_pending_bytes",
        "_raw_headers",
        "_remaining",
        "_responding",
        "_suppress_body",
        "_unprocessed",
        "_upgrade",
        "_url",
        "_used",
    )

    def __init__(self, config: Config, info: ConnectionInfo, now: float) -> None:
        super().__init__(config, info, now)
        self._parser = httptools.HttpRequestParser(self)
        self._message: _Message | None = None  # the wire state of the request answered
        self._unprocessed = b""  # bytes after a request that switched protocols
        # Parsing state of the message on the wire (may be a pipelined one).
        self._parsing: Optional[_Message] = None
        self._parsing_stream: Optional[_Pending] = None
        self._url = b""
        self._headers: list[tuple[bytes, bytes]] = []
        self._upgrade = False  # the head being parsed has Upgrade
        self._expect = False  # ... and Expect: 100-continue
        self._raw_headers: Optional[list[tuple[bytes, bytes]]] = None  # h11_pass_raw_headers
        # The size of an incomplete head (llhttp buffers a partial header out of our sight):
        # every read since the one where it began in full, and of that one what the requests
        # before it in the same read did not use (a read may hold many pipelined requests;
        # their sizes are counted from their parts, which can only undercount them).
        self._head_bytes = 0  # the parts of the head being parsed, then its estimate
        self._head_began_now = False  # ... in the read being parsed
        self._used = 0  # bytes of the read being parsed that earlier requests used
        self._in_head = False
        # Parsed requests waiting for their turn (a list: a deque costs 760 bytes for every
        # connection, and this one is short, bounded by h11_max_incomplete_size).
        self._pending: list[_Pending] = []
        self._pending_bytes = 0
        self._discarding = False  # answered before the body ended: drop the rest
        self._input_done = False  # a request without keep-alive ended: the rest is ignored
        self._deferred: Optional[ProtocolError] = None  # malformed input behind the requests
        # Response state
        self._responding = False
        self._chunked = False
        self._suppress_body = False
        self._close_after = False
        self._remaining: Optional[int] = None  # Content-Length bytes still to send
        self._body_withheld = False
        self._client_11 = True

    # ---------------------------------------------------------------- backend interface
    def receive_data(self, data: bytes, now: float) -> None:
        if self.closed:
            return
        self._now = now
        if self._websocket is not None:
            stream = self._websocket
            stream.handle(Data(stream.stream_id, data) if data else StreamClosed(stream.stream_id))
            return
        if not data:
            self._peer_closed()
            return
        if self._input_done:
            self.client_done = False  # it said it was done, yet it sends: linger
            return  # after a request that closes the connection nothing more is read
        self._last_body_data = now
        if (
            self._parsing is None
            and not self._in_head
            and self._head_started is None
            and self._stream is None
        ):
            self._head_started = now
        self._used = 0
        self._head_began_now = False
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade as upgrade:
            self._upgraded(data, int(str(upgrade.args[0]) if upgrade.args else len(data)))
        except httptools.HttpParserInvalidMethodError:
            self._fail(ProtocolError("unrecognized method"))
        except httptools.HttpParserCallbackError as error:
            cause = error.__context__
            if not isinstance(cause, ProtocolError):
                raise (cause or error) from None  # a bug: the driver logs it
            self._fail(cause)
        except httptools.HttpParserError as error:
            if self._input_done:
                self.client_done = False  # bytes after a request that closes the connection
            else:
                # llhttp refuses unknown codings before the head is complete (RFC 9112 6.1).
                status = 501 if "invalid `transfer-encoding`" in str(error).lower() else 400
                self._fail(ProtocolError("malformed request", status))
        else:
            if self._in_head:
                if self._head_began_now:
                    self._head_bytes = len(data) - self._used
                else:
                    self._head_bytes += len(data)
                if self._head_bytes > self.settings.h11_max_incomplete_size:
                    self._fail(ProtocolError("request head too large", 431))

    def unprocessed_data(self) -> bytes:
        return self._unprocessed

    @property
    def wants_read(self) -> bool:
        if self.closed or self._pending_bytes > self.settings.h11_max_incomplete_size:
            return False
        return self._app_has_room()

    def _awaiting_body(self) -> bool:
        message = self._message
        return message is not None and not message.complete and not self._body_withheld

    # ---------------------------------------------------------------- httptools callbacks
    def on_message_begin(self) -> None:
        self._in_head = True
        self._head_bytes = 0
        self._head_began_now = True
        self._url = b""
        self._headers = []
        self._upgrade = self._expect = False
        if self.settings.h11_pass_raw_headers:
            self._raw_headers = []
        if self._head_started is None and self._stream is None:
            self._head_started = self._now

    def on_url(self, url: bytes) -> None:
        self._url += url
        self._head_bytes += len(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        if value[-1:] in (b" ", b"\t"):  # llhttp keeps trailing whitespace; it is not the value's
            value = value.rstrip(b" \t")
        lowered = name.lower()
        if lowered == b"transfer-encoding":
            value = value.lower()  # as h11 gives it (the coding is case-insensitive)
        elif lowered == b"upgrade":
            self._upgrade = True
        elif lowered == b"expect" and value.lower() == b"100-continue":
            self._expect = True
        self._headers.append((lowered, value))
        self._head_bytes += len(name) + len(value) + 4
        if self._raw_headers is not None:
            self._raw_headers.append((name, value))

    def on_headers_complete(self) -> None:
        self._in_head = False
        parser = self._parser
        method = parser.get_method()
        if self._head_began_now:  # request line, headers and the blank line: all in this read
            self._used += len(method) + 14 + self._head_bytes
        http_version = parser.get_http_version()
        version = http_version.encode("ascii")
        target, has_body = check_request(self.settings, method, self._url, self._headers, version)
        message = _Message()
        message.has_body = has_body
        keep_alive = parser.should_keep_alive()
        message.keep_alive = http_version == "1.1" and keep_alive
        message.client_closes = not keep_alive
        message.expect_100 = self._expect and http_version == "1.1"
        message.upgrade = self._upgrade
        request = Request(
            0,
            self._raw_headers if self._raw_headers is not None else self._headers,
            http_version,
            _METHOD_NAMES[method],  # (check_request let only known methods through)
            target,
        )
        self._parsing = message
        if self._stream is None and not self._pending and self.upgrade is None:
            self._begin(request, message)
        else:
            pending = _Pending(request, message)
            self._pending.append(pending)
            self._parsing_stream = pending
            self._pending_bytes += pending.size

    def on_body(self, body: bytes) -> None:
        self._used += len(body)
        message = self._parsing
        if message is None:
            return
        message.expect_100 = False  # the client stopped waiting
        if self._parsing_stream is not None:  # a pipelined request: kept for its turn
            message.body.append(body)
            self._parsing_stream.size += len(body)
            self._pending_bytes += len(body)
        elif self._discarding:
            if body:
                self.closed = True  # a body nobody reads: closing is cheaper than draining
        elif self._stream is not None:
            self._stream.handle(Body(self._stream.stream_id, body))

    def on_message_complete(self) -> None:
        message = self._parsing
        self._parsing = None
        if message is None:
            return
        message.complete = True
        if not message.keep_alive:
            self._input_done = True  # llhttp refuses what follows; nothing more is read
            self.client_done = message.client_closes
        if self._parsing_stream is not None:
            self._parsing_stream = None
        elif self._discarding:
            self._discarding = False
            self._next_cycle_or_close()
        elif self._stream is not None:
            self._stream.handle(EndBody(self._stream.stream_id))

    # ---------------------------------------------------------------- request cycle
    def _begin(self, request: Request, message: _Message) -> None:
        """Hand a request (just parsed, or pipelined and now due) to an application."""
        self._requests += 1
        request.stream_id = self._requests
        self._head_started = None
        self._idle_since = None
        self._last_body_data = self._now
        self._message = message
        self._client_11 = request.http_version == "1.1"
        self._responding = False
        self._body_withheld = False
        settings = (
            h2c_settings(self.info, request.headers, message.has_body) if message.upgrade else None
        )
        if settings is not None and request.http_version == "1.1":
            self._out.append(H2C_SWITCH)
            request.stream_id = 1
            request.http_version = "2"
            request.headers = [(n, v) for n, v in request.headers if n not in H2C_DROPPED]
            self.upgrade = (settings, request)
            return
        stream: AnyStream
        if message.upgrade and request.method == "GET" and is_websocket_upgrade(request):
            try:
                stream = websocket_stream(
                    self.config, self.info, request, self._stream_event, self._now
                )
            except HandshakeError as error:
                self._send_error_and_close(error.status, error.headers)
                return
        else:
            stream = HTTPStream(self.settings, self.info, request, self._stream_event, self._now)
        self._stream = stream
        for chunk in message.body:
            stream.handle(Body(stream.stream_id, chunk))
        message.body = []
        if message.complete:
            stream.handle(EndBody(stream.stream_id))
        if stream.admit():
            self._new_streams.append(stream)

    def _upgraded(self, data: bytes, offset: int) -> None:
        """llhttp stops at a request with ``Upgrade`` (or CONNECT): what follows is not
        HTTP/1.1 for it. Serve the request; the bytes after it are the new protocol's
        (WebSocket, h2c), or, when the upgrade is ignored, the next HTTP/1.1 request."""
        message = self._parsing
        if message is not None and not message.complete:
            # An upgrade request with a body: llhttp leaves the body unparsed.
            self._fail(ProtocolError("a body on an Upgrade request"))
            return
        rest = data[offset:]
        if self.upgrade is not None:
            self._unprocessed = rest
            return
        stream = self._stream
        if websocket_of(stream) is not None:
            self._unprocessed = rest  # delivered after the 101
            return
        # An Upgrade we do not act on: carry on with HTTP/1.1 after this request.
        self._parser = httptools.HttpRequestParser(self)
        if rest:
            self.receive_data(rest, self._now)

    def _peer_closed(self) -> None:
        if self._stream is not None:
            self._stream.handle(StreamClosed(self._stream.stream_id))
            message = self._message
            if message is not None and not message.complete and not self._responding:
                self._send_error_and_close(400)  # the client ended in the middle of a body
        elif self._in_head and not self._input_done:
            self._send_error_and_close(400)  # the client ended in the middle of a head
        self.closed = True

    def _fail(self, error: ProtocolError) -> None:
        """Malformed input: the application (if one runs) sees a disconnect; the client gets
        the error status if no response has started; the connection closes. Input after a
        complete request (pipelined) is answered in its turn, after the requests before it."""
        message = self._message
        if self._stream is not None and message is not None and message.complete:
            self._deferred = error
            self._input_done = True
            return
        if self._stream is not None:
            self._stream.handle(StreamClosed(self._stream.stream_id))
        self._send_error_and_close(error.status)

    def _send_error_and_close(
        self, status: int, headers: Sequence[tuple[bytes, bytes]] = ()
    ) -> None:
        if not self._responding:
            self._out.append(error_response(self.config, status, headers))
        self.closed = True

    # ---------------------------------------------------------------- outbound
    def _stream_event(self, event: Event) -> None:
        if self.closed:
            return
        # (the event classes have no subclasses: ``type() is`` is cheaper than isinstance)
        if type(event) is Response:
            self._start_response(event)
            if event.body:
                self._send_body(event.body)
            if event.end:
                self._end_response(None)
        elif type(event) is Body:
            self._send_body(event.data)
        elif type(event) is EndBody:
            if self._responding:
                self._end_response(None)
        elif type(event) is Trailers:
            self._end_response(event.headers if self._chunked else None)
        elif type(event) is InformationalResponse:
            self._send_informational(event)
        elif type(event) is Data:  # WebSocket frames, after the 101
            self._out.append(event.data)
        elif type(event) is StreamClosed or type(event) is EndData:
            self.closed = True

    def _start_response(self, event: Response) -> None:
        message = self._message
        assert message is not None and self._stream is not None
        self._responding = True
        self._body_withheld = message.expect_100 and not message.complete
        status = event.status_code
        head_request = getattr(self._stream, "method", "GET") == "HEAD"
        length: Optional[int] = None
        # The head as pieces joined once at the end (one join is cheaper than one per line).
        parts = [_status_line(status)]
        for name, value in event.headers:
            if name in _FRAMING:
                if name == b"content-length":
                    if not value.isdigit():
                        self.closed = True
                        raise h11.LocalProtocolError("bad Content-Length")
                    length = int(value)
                    continue  # written with the framing below
                elif name == b"transfer-encoding":
                    continue  # the framing is decided below
                elif value.lower() == b"close":
                    self._close_after = True
                    continue
            parts.append(b"\r\n")
            parts.append(name)
            parts.append(b": ")
            parts.append(value)
        close = (
            self._close_after
            or not message.keep_alive
            or self._shutting_down
            or self._requests >= self.settings.keep_alive_max_requests
        )
        self._suppress_body = head_request or status in (204, 304)
        self._chunked = False
        self._remaining = None
        if status in (204, 304):
            if length is not None:
                parts.append(b"\r\ncontent-length: %d" % length)
        elif length is not None:
            parts.append(b"\r\ncontent-length: %d" % length)
            self._remaining = length
        elif self._client_11:
            parts.append(b"\r\ntransfer-encoding: chunked")
            self._chunked = True
        else:
            close = True  # HTTP/1.0 without a length: the end of the body is the close
        if close:
            self._close_after = True
            parts.append(b"\r\nconnection: close")
        parts.append(b"\r\n\r\n")
        self._out.append(b"".join(parts))

    def _send_body(self, data: bytes) -> None:
        if not self._responding or not data or self._suppress_body:
            return
        if self._remaining is not None:
            if len(data) > self._remaining:
                self.closed = True
                raise h11.LocalProtocolError("Too much data for declared Content-Length")
            self._remaining -= len(data)
            self._out.append(data)
        elif self._chunked:
            self._out += (b"%x\r\n" % len(data), data, b"\r\n")  # (the data is not copied)
        else:
            self._out.append(data)

    def _end_response(self, trailers: Optional[list[tuple[bytes, bytes]]]) -> None:
        if not self._responding:
            return
        if self._remaining and not self._suppress_body:
            self.closed = True
            raise h11.LocalProtocolError("Too little data for declared Content-Length")
        if self._chunked and not self._suppress_body:
            if trailers:
                self._out.append(b"0\r\n" + b"".join(b"%s: %s\r\n" % item for item in trailers))
                self._out.append(b"\r\n")
            else:
                self._out.append(b"0\r\n\r\n")
        self._responding = False
        self._response_complete()

    def _send_informational(self, event: InformationalResponse) -> None:
        message = self._message
        if message is None or self._responding:
            return
        if event.status_code == 100:
            if not message.expect_100 or message.complete:
                return
            message.expect_100 = False
        elif not self._client_11:
            return  # HTTP/1.0 clients cannot take 1xx responses
        lines = [_status_line(event.status_code)]
        lines += [b": ".join(item) for item in event.headers]
        lines.append(b"\r\n")
        self._out.append(b"\r\n".join(lines))
        websocket = websocket_of(self._stream)
        if event.status_code == 101 and websocket is not None:
            self._websocket = websocket
            leftover, self._unprocessed = self._unprocessed, b""
            if leftover:
                websocket.handle(Data(websocket.stream_id, leftover))

    def _response_complete(self) -> None:
        message = self._message
        self._stream = None
        if self._close_after:
            self.closed = True
            return
        if message is not None and not message.complete:
            if self._body_withheld or self._shutting_down:
                self.closed = True
                return
            # Answered before the request was read to its end: only its end may follow.
            self._discarding = True
            self._idle_pending = True
            return
        self._next_cycle_or_close()

    def _next_cycle_or_close(self) -> None:
        if self._shutting_down or self._close_after:
            self.closed = True
            return
        self._message = None
        self._idle_since = None
        self._idle_pending = True
        if self._pending:
            pending = self._pending.pop(0)
            self._pending_bytes -= pending.size
            if self._parsing_stream is pending:
                self._parsing_stream = None  # its body now goes straight to its stream
            self._begin(pending.request, pending.message)
            if self._deferred is not None and not pending.message.complete:
                error, self._deferred = self._deferred, None
                self._fail(error)  # the malformed input was this request's body
        elif self._deferred is not None:
            self._send_error_and_close(self._deferred.status)


class _Pending:
    """A request parsed while another was being answered; ``size`` counts its buffered
    head and body bytes."""

    __slots__ = ("message", "request", "size")

    def __init__(self, request: Request, message: _Message) -> None:
        self.request = request
        self.message = message
        self.size = len(request.raw_path) + sum(len(n) + len(v) for n, v in request.headers)

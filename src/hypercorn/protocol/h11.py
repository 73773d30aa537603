"""The HTTP/1.1 adapter: h11 on the wire side, :class:`HTTPStream` on the application side.

Connection states and their deadline (all times come from the caller's ``now``):

    IDLE (no bytes of a request yet)       -> keep_alive_timeout, then close quietly
    HEAD (part of a request head buffered) -> request_header_timeout, then 408 and close
    BODY (request body still arriving)     -> request_body_timeout / read_timeout, then abort
    RESPONDING (app running, body read)    -> no deadline

Pipelined requests stay in h11's buffer until the response in flight is complete. Reading
continues meanwhile (that is how a vanished client is noticed during a long response), but the
connection asks not to be read from (``wants_read``) once more than ``h11_max_incomplete_size``
bytes wait behind the current request, or while the application has not consumed the queued
body chunks, so buffering is bounded.

End of input from the client (a FIN) is a disconnect: the application's ``receive()`` returns
``http.disconnect``, which long-poll and streaming applications rely on. A client that
half-closes after sending its request therefore gets no response (as with Uvicorn and
Hypercorn).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

import h11

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
    HTTP11Base,
    check_request,
    client_closes,
    error_response,
    h2c_settings,
    head_violation,
    is_websocket_upgrade,
    unknown_method,
    websocket_of,
    websocket_stream,
)
from .http_stream import HTTPStream, reason_phrase

if TYPE_CHECKING:
    from ..config import Config
    from .connection_info import ConnectionInfo
    from .ws_stream import AnyStream

# llhttp refuses chunk sizes that overflow 64 bits; h11 would wait for them: same answer here.
MAX_CHUNK_SIZE = 2**64
_SPACES = re.compile(rb" {2,}")


class H11Connection(HTTP11Base):
    """One HTTP/1.1 connection, sans-IO."""

    __slots__ = (
        "_body_withheld",
        "_chunked",
        "_client_closes",
        "_h11",
        "_held_bytes",
        "_paused",
        "_processing",
    )

    def __init__(self, config: Config, info: ConnectionInfo, now: float) -> None:
        super().__init__(config, info, now)
        self._h11 = h11.Connection(
            h11.SERVER, max_incomplete_event_size=config.h11_max_incomplete_size
        )
        self._processing = False
        # Answered a request whose client waits for 100-continue: its body never comes.
        self._body_withheld = False
        self._paused = False  # h11 holds pipelined bytes until the current response ends
        self._held_bytes = 0
        self._chunked = False
        self._client_closes = False  # the request in progress says it is the client's last

    # ---------------------------------------------------------------- backend interface
    def receive_data(self, data: bytes, now: float) -> None:
        if self.closed:
            return
        self._now = now
        if self._websocket is not None:
            stream = self._websocket
            stream.handle(Data(stream.stream_id, data) if data else StreamClosed(stream.stream_id))
            return
        self._h11.receive_data(data)
        if data:
            self._last_body_data = now
            if self._paused:
                self._held_bytes += len(data)
        self._process(now)

    def unprocessed_data(self) -> bytes:
        """Bytes received after the request that switched protocols."""
        return bytes(self._h11.trailing_data[0])

    @property
    def wants_read(self) -> bool:
        if self.closed or self._held_bytes > self.settings.h11_max_incomplete_size:
            return False
        return self._app_has_room()

    def _awaiting_body(self) -> bool:
        assert self._stream is not None
        return not self._stream.body_complete and self._h11.their_state is h11.SEND_BODY

    # ---------------------------------------------------------------- inbound
    def _process(self, now: float) -> None:
        if self._processing:
            return  # re-entered from a response completed while handling events: the outer
            # loop carries on with whatever is buffered
        self._processing = True
        try:
            self._process_events(now)
        finally:
            self._processing = False
        if self._client_closes and self._h11.their_state is h11.MUST_CLOSE:
            # (empty lines are read and harmless; llhttp skips them too)
            self.client_done = not self._h11.trailing_data[0].strip(b"\r\n")

    def _process_events(self, now: float) -> None:
        while not self.closed and self.upgrade is None:
            buffered, eof = self._h11.trailing_data
            if self._h11.their_state is h11.MUST_CLOSE and buffered:
                # Bytes after a request that closes the connection are ignored (h11 would
                # call them an error and end the request in flight).
                if eof:
                    self._peer_closed()
                break
            if self._stream is None and self._h11.their_state is h11.IDLE and buffered:
                if buffered[:1] in (b"\r", b"\n") and self._h11.our_state is h11.IDLE:
                    self._restart(bytes(buffered).lstrip(b"\r\n"), eof)
                    continue
                if head_violation(buffered) or unknown_method(buffered):
                    self._send_error_and_close(400)
                    return
                line_end = buffered.find(b"\n")
                if (
                    line_end != -1
                    and buffered.find(b"  ", 0, line_end) != -1
                    and self._h11.our_state is h11.IDLE
                ):
                    # Runs of spaces between the parts of a request line: RFC 9112 3 lets a
                    # server read them as one, as llhttp does; h11 refuses them.
                    line, rest = bytes(buffered[:line_end]), bytes(buffered[line_end:])
                    self._restart(_SPACES.sub(b" ", line) + rest, eof)
                    continue
            try:
                event = self._h11.next_event()
            except h11.RemoteProtocolError as error:
                self._remote_error(error)
                return
            if event is h11.NEED_DATA:
                if getattr(self._h11._reader, "_bytes_in_chunk", 0) >= MAX_CHUNK_SIZE:
                    self._remote_error(h11.RemoteProtocolError("chunk size overflow"))
                    return
                if self._stream is None and self._h11.their_state is h11.IDLE:
                    if self._h11.trailing_data[0] and self._head_started is None:
                        self._head_started = now
                    if self._h11.trailing_data[1]:  # EOF while idle
                        self.closed = True
                break
            if event is h11.PAUSED:
                if not self._paused:
                    self._paused = True
                    self._held_bytes = len(self._h11.trailing_data[0])
                if self._h11.trailing_data[1]:  # the client closed while we were answering
                    self._peer_closed()
                break
            if isinstance(event, h11.Request):
                try:
                    self._start_request(event, now)
                except ProtocolError as error:
                    self._send_error_and_close(error.status)
                    return
            elif isinstance(event, h11.Data):
                if getattr(self._h11._reader, "_bytes_in_chunk", 0) >= MAX_CHUNK_SIZE:
                    self._remote_error(h11.RemoteProtocolError("chunk size overflow"))
                    return
                # (h11 declares bytes but gives a bytearray: read untyped, or the compiled
                # build's check of the declared type refuses it)
                data = cast(Any, event).data
                if self._stream is not None:
                    self._stream.handle(Body(self._stream.stream_id, bytes(data)))
                elif data:
                    # The response is already complete and the client is still sending a
                    # body nobody will read: closing is cheaper than draining it.
                    self.closed = True
            elif isinstance(event, h11.EndOfMessage):
                if self._stream is not None:
                    self._stream.handle(EndBody(self._stream.stream_id))
                else:  # the end of a request answered before it was fully read
                    self._next_cycle_or_close()
            elif isinstance(event, h11.ConnectionClosed):
                self._peer_closed()
                break

    def _restart(self, buffered: bytes, eof: bool) -> None:
        """Between requests (where a fresh h11 state machine is equivalent), replace h11 by
        one holding ``buffered`` instead of what it held: without the empty lines before a
        request line (ignored, RFC 9112 2.2) or with its runs of spaces made single, both of
        which h11 refuses."""
        self._h11 = h11.Connection(
            h11.SERVER, max_incomplete_event_size=self.config.h11_max_incomplete_size
        )
        if buffered:  # (receive_data(b"") would mean end of input)
            self._h11.receive_data(buffered)
        if eof:
            self._h11.receive_data(b"")

    def _peer_closed(self) -> None:
        if self._stream is not None:
            self._stream.handle(StreamClosed(self._stream.stream_id))
        self.closed = True

    def _start_request(self, request: h11.Request, now: float) -> None:
        headers = list(
            request.headers.raw_items() if self.settings.h11_pass_raw_headers else request.headers
        )
        method = request.method.decode("ascii")
        target, has_body = check_request(
            self.settings, request.method, request.target, request.headers, request.http_version
        )
        self._requests += 1
        self._head_started = None
        self._idle_since = None
        self._last_body_data = now
        self._client_closes = client_closes(request.http_version.decode("ascii"), request.headers)
        asgi_request = Request(
            stream_id=self._requests,
            headers=headers,
            http_version=request.http_version.decode("ascii"),
            method=method,
            raw_path=target,
        )
        settings = h2c_settings(self.info, request.headers, has_body)
        if settings is not None:
            # RFC 7540 3.2: answer 101 and serve the request as HTTP/2 stream 1.
            self._out.append(H2C_SWITCH)
            asgi_request.stream_id = 1
            asgi_request.http_version = "2"
            asgi_request.headers = [
                (name, value) for name, value in headers if name.lower() not in H2C_DROPPED
            ]
            self.upgrade = (settings, asgi_request)
            return
        stream: AnyStream
        if method == "GET" and is_websocket_upgrade(asgi_request):
            try:
                stream = websocket_stream(
                    self.config, self.info, asgi_request, self._stream_event, now
                )
            except HandshakeError as error:
                self._send_error_and_close(error.status, error.headers)
                return
        else:
            stream = HTTPStream(self.settings, self.info, asgi_request, self._stream_event, now)
        self._stream = stream
        if stream.admit():
            self._new_streams.append(stream)

    def _remote_error(self, error: h11.RemoteProtocolError) -> None:
        """Malformed input: the application (if one runs) sees a disconnect; the client gets
        the error status if no response has started; the connection closes."""
        if self._stream is not None:
            self._stream.handle(StreamClosed(self._stream.stream_id))
        if self._h11.our_state in (h11.IDLE, h11.SEND_RESPONSE):
            self._send_error_and_close(error.error_status_hint)
        self.closed = True

    def _send_error_and_close(
        self, status: int, headers: Sequence[tuple[bytes, bytes]] = ()
    ) -> None:
        """Answer a request we will not hand to the application, then close."""
        if self._h11.our_state in (h11.IDLE, h11.SEND_RESPONSE):
            self._out.append(error_response(self.config, status, headers))
        self.closed = True

    # ---------------------------------------------------------------- outbound
    def _stream_event(self, event: Event) -> None:
        if self.closed:
            return
        try:
            self._send_stream_event(event)
        except h11.LocalProtocolError:
            # The application produced an invalid response (e.g. too much body for its
            # Content-Length); the message cannot be completed, so the connection ends.
            self.closed = True
            raise

    def _send_stream_event(self, event: Event) -> None:
        h11_conn = self._h11
        if isinstance(event, Response):
            self._body_withheld = h11_conn.they_are_waiting_for_100_continue
            headers = event.headers
            if self._shutting_down or self._requests >= self.settings.keep_alive_max_requests:
                headers = [*headers, (b"connection", b"close")]
            self._chunked = h11_conn.their_http_version == b"1.1" and all(
                name != b"content-length" for name, _ in headers
            )
            self._out.append(
                h11_conn.send(
                    h11.Response(
                        status_code=event.status_code,
                        headers=headers,
                        reason=reason_phrase(event.status_code),
                    )
                )
            )
            if event.body:
                self._send_data(event.body)
            if event.end:
                self._send_stream_event(EndBody(event.stream_id))
        elif isinstance(event, Body):
            self._send_data(event.data)
        elif isinstance(event, Trailers):
            # Trailers need chunked framing; with Content-Length or HTTP/1.0 they are dropped.
            trailers = event.headers if self._chunked else []
            self._out.append(h11_conn.send(h11.EndOfMessage(headers=trailers)))
            self._response_complete()
        elif isinstance(event, EndBody):
            if h11_conn.our_state is h11.SEND_BODY:
                self._out.append(h11_conn.send(h11.EndOfMessage()))
                self._response_complete()
        elif isinstance(event, InformationalResponse):
            self._send_informational(event)
        elif isinstance(event, Data):  # WebSocket frames, after the 101
            self._out.append(event.data)
        elif isinstance(event, (StreamClosed, EndData)):
            self.closed = True  # abandoning a response mid-body, or the WebSocket session ended

    def _send_data(self, data: bytes) -> None:
        # h11's framing around the data, and the data itself uncopied (None: nothing to send)
        self._out += self._h11.send_with_data_passthrough(h11.Data(data=data)) or ()

    def _send_informational(self, event: InformationalResponse) -> None:
        if event.status_code == 100:
            if not self._h11.they_are_waiting_for_100_continue:
                return
        elif self._h11.their_http_version != b"1.1":
            return  # HTTP/1.0 clients cannot take 1xx responses
        self._out.append(
            self._h11.send(
                h11.InformationalResponse(
                    status_code=event.status_code,
                    headers=event.headers,
                    reason=reason_phrase(event.status_code),
                )
            )
        )
        websocket = websocket_of(self._stream)
        if event.status_code == 101 and websocket is not None:
            # Switched: from now on the bytes belong to the WebSocket session.
            self._websocket = websocket
            leftover = bytes(self._h11.trailing_data[0])
            if leftover:
                websocket.handle(Data(websocket.stream_id, leftover))

    def _response_complete(self) -> None:
        h11_conn = self._h11
        self._stream = None
        if (
            h11_conn.their_state is h11.SEND_BODY
            and not self._shutting_down
            and not self._body_withheld
        ):
            # Answered before the request was read to its end: what is buffered decides
            # (just the end of the request: keep the connection; body data: close).
            self._idle_pending = True
            self._process(self._now)
        else:
            self._next_cycle_or_close()

    def _next_cycle_or_close(self) -> None:
        h11_conn = self._h11
        if (
            h11_conn.our_state is h11.DONE
            and h11_conn.their_state is h11.DONE
            and not self._shutting_down
        ):
            h11_conn.start_next_cycle()
            self._paused = False
            self._held_bytes = 0
            self._idle_since = None
            self._idle_pending = True
            # Requests pipelined behind this one are already buffered: handle them now.
            self._process(self._now)
        else:
            self.closed = True

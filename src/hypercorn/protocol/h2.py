"""The HTTP/2 adapter: h2 on the wire side, :class:`HTTPStream` per stream.

Flow control both ways:

- inbound: a stream's DATA is acknowledged (WINDOW_UPDATE) only as the application consumes
  it, so a slow application makes the client wait instead of the server buffering;
- outbound: body bytes beyond the peer's window wait in a per-stream buffer; while one is not
  empty the stream is ``send_blocked`` and the backend holds the application's ``send()``.

RST_STREAM from the client reaches the application as ``http.disconnect`` at once; nothing
else is cancelled. An application error resets only its own stream. Resets are budgeted: more
than ``RESET_BUDGET`` client resets, or server resets the client provoked ("made you reset"),
within ``RESET_WINDOW`` seconds end the connection with GOAWAY ENHANCE_YOUR_CALM, and the
application tasks of the reset streams are cancelled (``pop_streams_to_cancel``).
CONTINUATION floods are bounded by h2 (a header block may span at most 64 frames) and by
``h2_max_header_list_size``.

Draining (after ``keep_alive_max_requests``, or on shutdown): GOAWAY is sent as soon as no
stream is in flight, and the connection then closes. It is not sent while streams are in
flight because clients built on the h2 library (httpx among them) fail every open stream when
a GOAWAY arrives, even those it lets finish; streams opened before the GOAWAY are served, and
shutdown stays bounded by ``graceful_timeout``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import TYPE_CHECKING, Optional

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.exceptions
import h2.settings

from .errors import HeaderBlockError, MalformedRequest
from .events import (
    Body,
    Data,
    EndBody,
    EndData,
    Event,
    InformationalResponse,
    Request,
    Response,
    ServerPush,
    StreamClosed,
    Trailers,
)
from .hpack_decoder import HeaderDecoder
from .hpack_encoder import HeaderEncoder
from .http_stream import CONNECTION_SPECIFIC, HTTPStream, check_trailers, request_from_fields
from .selection import H2_PREFACE
from .ws_stream import FRAMES_PER_TURN, AnyStream, WSStream

if TYPE_CHECKING:
    from ..config import Config
    from .connection_info import ConnectionInfo

RESET_BUDGET = 200
RESET_WINDOW = 10.0
# Response headers that are connection-specific in HTTP/1.1 and forbidden in HTTP/2
# (RFC 9113 section 8.2.2; TE, allowed in requests only, means nothing in a response).
CONNECTION_HEADERS = CONNECTION_SPECIFIC | {b"te"}


def multiplexed_fields(headers: Sequence[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
    """Validated header fields (build_and_validate_headers) without the ones HTTP/2 and HTTP/3
    forbid (RFC 9113 section 8.2.2, RFC 9114 section 4.2), for any block sent."""
    return [(name, value) for name, value in headers if name not in CONNECTION_HEADERS]


_H2_SETTINGS = h2.settings.SettingCodes
PREFACE = H2_PREFACE
# At most FRAMES_PER_TURN (256) frames are handed to h2 per call of receive_data (or
# process_backlog); the rest of a read waits for the driver's next turn of the event loop. A
# read can hold 29,000 empty SETTINGS frames (256 KiB), a second of h2's time in which every
# other connection of the worker would wait; 256 frames are a few milliseconds. Requests, and
# DATA frames of any useful size, come far fewer to a read, so they are not held back.
FRAME_HEADER_SIZE = 9  # RFC 9113 section 4.1: 24-bit length, type, flags, stream id


class FrameCounter:
    """Follows the frame boundaries of the bytes a client sends (RFC 9113 section 4.1) to say
    where a turn's worth of frames ends. It only splits the input: h2 parses it, and takes
    the pieces in order, so a miscount could cost fairness but never data."""

    __slots__ = ("_head", "_skip")

    def __init__(self, skip: int = len(PREFACE)) -> None:
        self._skip = skip  # bytes before the next frame header (at first, the client preface)
        self._head = b""  # the start of a frame header split across reads

    def turn_end(self, data: bytes, budget: int) -> int:
        """The index in ``data`` where the frame after the first ``budget`` ones (counting a
        frame whose header completes in ``data``) begins, or ``len(data)``. Call again with
        what follows that index: a split is always at a frame boundary."""
        size = len(data)
        frames = 0
        pos = self._skip
        if self._head:
            missing = FRAME_HEADER_SIZE - len(self._head)
            if size < missing:
                self._head += data
                return size
            pos = missing + int.from_bytes((self._head + data[:missing])[:3], "big")
            self._head = b""
            frames = 1
        while pos < size:
            if frames >= budget:
                self._skip = 0
                return pos
            if size - pos < FRAME_HEADER_SIZE:
                self._head = data[pos:]
                self._skip = 0
                return size
            frames += 1
            pos += FRAME_HEADER_SIZE + int.from_bytes(data[pos : pos + 3], "big")
        self._skip = pos - size
        return size


class _Outbox:
    """Body bytes (and the end, or trailers) of one stream waiting for flow-control window."""

    __slots__ = ("data", "end", "trailers")

    def __init__(self) -> None:
        self.data = bytearray()
        self.end = False
        self.trailers: Optional[list[tuple[bytes, bytes]]] = None


class H2Connection:
    """One HTTP/2 connection, sans-IO."""

    # HTTP/2 has no "this is my last request": a GOAWAY may cross the client's next frames,
    # so the driver always lingers when it closes (see ProtocolConnection.client_done).
    client_done = False
    multiplexed = True  # (see ProtocolConnection.multiplexed)

    def __init__(
        self,
        config: Config,
        info: ConnectionInfo,
        now: float,
        upgrade: Optional[tuple[bytes, Request]] = None,
        preamble: bytes = b"",
    ) -> None:
        """``upgrade``: the HTTP2-Settings and request of an h2c upgrade, answered on stream
        1; ``preamble``: bytes to send before anything HTTP/2 (the 101 of that upgrade)."""
        self.config = config
        self.settings = config.core_settings  # (what streams read per request)
        self.info = info
        self.closed = False
        self._now = now
        self._h2 = h2.connection.H2Connection(
            # h2 checks (and rewrites) outbound headers on every block; ours need neither:
            # names and values are validated by build_and_validate_headers when the
            # application sends them (lower case tokens, no pseudo-headers, no CR LF NUL,
            # no surrounding whitespace), the pseudo-headers are ours, and multiplexed_fields drops
            # what HTTP/2 forbids. Inbound blocks are checked (and split Cookies joined) by
            # request_from_fields and check_trailers instead of h2.
            config=h2.config.H2Configuration(
                client_side=False,
                header_encoding=None,
                validate_outbound_headers=False,
                normalize_outbound_headers=False,
                validate_inbound_headers=False,
                normalize_inbound_headers=False,
            )
        )
        self._h2.local_settings = h2.settings.Settings(
            client=False,
            initial_values={
                _H2_SETTINGS.MAX_CONCURRENT_STREAMS: config.h2_max_concurrent_streams,
                _H2_SETTINGS.MAX_HEADER_LIST_SIZE: config.h2_max_header_list_size,
                _H2_SETTINGS.MAX_FRAME_SIZE: config.h2_max_inbound_frame_size,
                _H2_SETTINGS.ENABLE_CONNECT_PROTOCOL: 1,  # RFC 8441 WebSockets
            },
        )
        # h2 enforces these from its own copies, which only follow *changes* to the settings;
        # set them so the configured limits really apply.
        self._h2.max_inbound_frame_size = config.h2_max_inbound_frame_size
        # Request headers are decoded by our compiled decoder (see hpack_decoder); h2 calls
        # decode() and sets max_header_list_size and max_allowed_table_size.
        self._h2.decoder = HeaderDecoder(config.h2_max_header_list_size)  # type: ignore[assignment]
        # Response headers are encoded without the dynamic table, each field once per
        # process (see hpack_encoder); h2 calls only encode() and sets header_table_size.
        self._h2.encoder = HeaderEncoder()  # type: ignore[assignment]
        self._frames = FrameCounter()
        self._backlog = b""  # read, but left for the next turn (FRAMES_PER_TURN)
        self._streams: dict[int, AnyStream] = {}
        self._websockets: dict[int, WSStream] = {}  # (those of _streams)
        self._outboxes: dict[int, _Outbox] = {}
        self._new_streams: list[AnyStream] = []
        self._to_cancel: list[AnyStream] = []
        self._resets: deque[tuple[float, Optional[AnyStream]]] = deque()
        self._requests = 0
        self._goaway_sent = False
        self._draining = False
        self._idle_since: Optional[float] = now
        self._preamble = preamble
        if upgrade is None:
            self._h2.initiate_connection()
        else:
            settings, request = upgrade
            self._h2.initiate_upgrade_connection(settings)
            self._start_stream(1, request, ended=True)

    # ---------------------------------------------------------------- backend interface
    def receive_data(self, data: bytes, now: float) -> None:
        if self.closed:
            return
        self._now = now
        if not data:
            self.connection_lost()
            return
        if self._backlog:  # (drivers do not read while there is one; kept in order if they do)
            data = self._backlog + data
            self._backlog = b""
        self._receive(data)

    def process_backlog(self, now: float) -> None:
        if self.closed:
            return
        self._now = now
        if self._backlog:
            data, self._backlog = self._backlog, b""
            self._receive(data)
        if self._websockets:
            for websocket in list(self._websockets.values()):
                websocket.process_backlog()
            self._flush_outboxes()
            self._check_done()

    @property
    def backlogged(self) -> bool:
        """Frames read but not yet given to h2, or a WebSocket session with frames it has
        not parsed yet and room for them in its application's queue. Reading goes on
        meanwhile for the latter: flow control holds that session's client back (its
        unparsed bytes are not acknowledged), not the connection's other streams."""
        if self.closed:
            return False
        if self._backlog:
            return True
        return bool(self._websockets) and any(
            websocket.backlogged for websocket in self._websockets.values()
        )

    def _receive(self, data: bytes) -> None:
        end = self._frames.turn_end(data, FRAMES_PER_TURN)
        if end < len(data):
            self._backlog = data[end:]
            data = data[:end]
        try:
            events = self._h2.receive_data(data)
        except h2.exceptions.ProtocolError:
            # h2 has already queued a GOAWAY with the matching error code.
            self._goaway_sent = True
            self.connection_lost()
            return
        except HeaderBlockError as error:  # from our decoder, before h2 changed any state
            self._h2.close_connection(error.h2_code)
            self._goaway_sent = True
            self.connection_lost()
            return
        for event in events:
            if self.closed:  # e.g. a flood ended the connection part-way through the batch
                break
            self._handle(event)
        self._flush_outboxes()
        self._check_done()

    def connection_lost(self) -> None:
        self.closed = True
        self._backlog = b""
        for stream in list(self._streams.values()):
            stream.handle(StreamClosed(stream.stream_id))
        self._streams.clear()
        self._websockets.clear()
        self._outboxes.clear()

    def data_to_send(self) -> bytes:
        if self._preamble:
            data, self._preamble = self._preamble, b""
            return data + self._h2.data_to_send()
        return self._h2.data_to_send()

    def chunks_to_send(self) -> Sequence[bytes]:
        data = self.data_to_send()  # (h2 gives its frames as one buffer)
        return (data,) if data else ()

    def pop_new_streams(self) -> Sequence[AnyStream]:
        if not self._new_streams:
            return ()
        streams, self._new_streams = self._new_streams, []
        # A stream reset before its application was started never starts one (the common
        # shape of a rapid-reset attack: HEADERS and RST_STREAM in one read).
        return [stream for stream in streams if not stream.disconnected]

    def pop_streams_to_cancel(self) -> Sequence[AnyStream]:
        if not self._to_cancel:
            return ()
        streams, self._to_cancel = self._to_cancel, []
        return streams

    @property
    def wants_read(self) -> bool:
        # h2's flow control bounds what a client may send; a backlog is processed first.
        return not self.closed and not self._backlog

    @property
    def idle(self) -> bool:
        return not self._streams

    def next_deadline(self, now: float) -> Optional[float]:
        if self.closed:
            return None
        if self._streams:
            deadlines = [
                stream.next_deadline(now)
                for stream in self._streams.values()
                if isinstance(stream, WSStream)
            ]  # WebSocket pings and closes
            return min((d for d in deadlines if d is not None), default=None)
        if self._idle_since is None:
            self._idle_since = now
        return self._idle_since + self.config.keep_alive_timeout

    def handle_timer(self, now: float) -> None:
        self._now = now
        if self._streams:
            for stream in list(self._streams.values()):
                if isinstance(stream, WSStream):
                    stream.handle_timer(now)
            self._flush_outboxes()
            return
        deadline = self.next_deadline(now)
        if deadline is not None and now >= deadline:
            self._close(h2.errors.ErrorCodes.NO_ERROR)

    def begin_shutdown(self) -> None:
        self._draining = True
        for stream in list(self._streams.values()):
            if isinstance(stream, WSStream):
                stream.begin_shutdown()  # close 1001; the stream ends with the session
        self._check_done()

    # ---------------------------------------------------------------- inbound
    def _handle(self, event: h2.events.Event) -> None:
        if isinstance(event, h2.events.RequestReceived):
            self._request_received(event)
        elif isinstance(event, h2.events.DataReceived):
            stream = self._streams.get(event.stream_id)
            if stream is None:
                self._h2.acknowledge_received_data(event.flow_controlled_length, event.stream_id)
            else:
                stream.handle(Body(event.stream_id, bytes(event.data)))
                padding = event.flow_controlled_length - len(event.data)
                if padding:
                    self._h2.acknowledge_received_data(padding, event.stream_id)
            if event.stream_ended is not None:
                self._end_request(event.stream_id)
        elif isinstance(event, h2.events.StreamEnded):
            self._end_request(event.stream_id)
        elif isinstance(event, h2.events.TrailersReceived):  # not passed to ASGI
            try:
                check_trailers(event.headers)
            except MalformedRequest:
                self._malformed(event.stream_id)
        elif isinstance(event, h2.events.StreamReset):
            self._stream_reset(event.stream_id, by_peer=True)
        elif isinstance(event, (h2.events.WindowUpdated, h2.events.RemoteSettingsChanged)):
            pass  # _flush_outboxes runs after every batch of events
        elif isinstance(event, h2.events.ConnectionTerminated):
            self.connection_lost()

    def _request_received(self, event: h2.events.RequestReceived) -> None:
        if self._goaway_sent:
            self._reset(event.stream_id, h2.errors.ErrorCodes.REFUSED_STREAM)
            return
        try:
            request, pseudo = request_from_fields(event.stream_id, event.headers, "2")
        except MalformedRequest:
            self._malformed(event.stream_id)
            return
        method = request.method
        if method == "CONNECT":
            if pseudo.get(b":protocol") != b"websocket":  # only RFC 8441 WebSockets
                self._h2.send_headers(event.stream_id, [(b":status", b"405")], end_stream=True)
                return
            request.method = "GET"
            self._start_stream(event.stream_id, request, ended=False, websocket=True)
            return
        self._start_stream(event.stream_id, request, ended=event.stream_ended is not None)

    def _start_stream(
        self, stream_id: int, request: Request, ended: bool, websocket: bool = False
    ) -> None:
        self._requests += 1
        self._idle_since = None  # idle again from the first deadline asked once it is done
        stream: AnyStream
        if websocket:
            stream = self._websockets[stream_id] = WSStream(
                self.config, self.info, request, self._stream_event, self._now
            )
        else:
            extensions: dict[str, dict[object, object]] = {}
            if self._h2.remote_settings.enable_push:
                extensions["http.response.push"] = {}
            stream = HTTPStream(
                self.settings, self.info, request, self._stream_event, self._now, extensions
            )
        stream.on_body_consumed = self._body_consumed
        self._streams[stream_id] = stream
        if ended:
            stream.handle(EndBody(stream_id))
        if not stream.admit():  # answered already (421/413): no application is started
            if not ended:
                self._reset(stream_id, h2.errors.ErrorCodes.NO_ERROR)  # stop the upload
            self._maybe_forget(stream_id)
            return
        self._new_streams.append(stream)
        if self._requests >= self.config.keep_alive_max_requests:
            self._draining = True

    def _end_request(self, stream_id: int) -> None:
        stream = self._streams.get(stream_id)
        if stream is not None:
            stream.handle(EndBody(stream_id))
            self._maybe_forget(stream_id)

    def _body_consumed(self, stream_id: int, size: int) -> None:
        if size and stream_id in self._streams and not self.closed:
            try:
                self._h2.acknowledge_received_data(size, stream_id)
            except h2.exceptions.StreamClosedError:
                pass

    def _stream_reset(self, stream_id: int, by_peer: bool) -> None:
        stream = self._streams.pop(stream_id, None)
        self._websockets.pop(stream_id, None)
        self._outboxes.pop(stream_id, None)
        if stream is None:
            return
        stream.handle(StreamClosed(stream_id))
        self._check_done()
        self._count_reset(stream)

    def _malformed(self, stream_id: int) -> None:
        """RFC 9113 section 8.1.1: a malformed request (or its trailers) is a stream error of
        type PROTOCOL_ERROR; the reset counts against the budget like any the client
        provokes, whether or not the stream had an application yet."""
        if stream_id in self._streams:
            self._reset(stream_id, h2.errors.ErrorCodes.PROTOCOL_ERROR)
            return
        try:
            self._h2.reset_stream(stream_id, h2.errors.ErrorCodes.PROTOCOL_ERROR)
        except h2.exceptions.ProtocolError:
            pass
        self._count_reset(None)

    def _count_reset(self, stream: Optional[AnyStream]) -> None:
        self._resets.append((self._now, stream))
        while self._resets and self._resets[0][0] < self._now - RESET_WINDOW:
            self._resets.popleft()
        if len(self._resets) > RESET_BUDGET:
            # A flood: stop the recently reset streams' applications (they were told about
            # the reset but may not be listening) and every other stream, and hang up.
            self._to_cancel += [
                reset for _, reset in self._resets if reset is not None and not reset.complete
            ]
            self._to_cancel += self._streams.values()
            self._resets.clear()
            self._close(h2.errors.ErrorCodes.ENHANCE_YOUR_CALM)

    # ---------------------------------------------------------------- outbound
    def _stream_event(self, event: Event) -> None:
        if self.closed:
            return
        stream_id = event.stream_id
        if isinstance(event, Response):
            headers = [(b":status", str(event.status_code).encode("ascii"))]
            headers += multiplexed_fields(event.headers)
            self._h2.send_headers(stream_id, headers)
            if event.body or event.end:  # a response in one piece
                outbox = self._outbox(stream_id)
                outbox.data += event.body
                outbox.end = event.end
                self._flush_outbox(stream_id)
        elif isinstance(event, (Body, Data)):  # Data: WebSocket frames
            self._outbox(stream_id).data += event.data
            self._flush_outbox(stream_id)
        elif isinstance(event, (EndBody, EndData)):
            self._outbox(stream_id).end = True
            self._flush_outbox(stream_id)
        elif isinstance(event, Trailers):
            outbox = self._outbox(stream_id)
            outbox.trailers = multiplexed_fields(event.headers)
            outbox.end = True
            self._flush_outbox(stream_id)
        elif isinstance(event, InformationalResponse):
            headers = [(b":status", str(event.status_code).encode("ascii"))]
            headers += multiplexed_fields(event.headers)
            self._h2.send_headers(stream_id, headers)
        elif isinstance(event, ServerPush):
            self._push(event)
        elif isinstance(event, StreamClosed):
            self._reset(stream_id, h2.errors.ErrorCodes.INTERNAL_ERROR)

    def _outbox(self, stream_id: int) -> _Outbox:
        outbox = self._outboxes.get(stream_id)
        if outbox is None:
            outbox = self._outboxes[stream_id] = _Outbox()
        return outbox

    def _flush_outboxes(self) -> None:
        for stream_id in list(self._outboxes):
            self._flush_outbox(stream_id)

    def _flush_outbox(self, stream_id: int) -> None:
        """Send what the flow-control windows allow; mark the stream blocked otherwise."""
        outbox = self._outboxes.get(stream_id)
        stream = self._streams.get(stream_id)
        if outbox is None:
            return
        try:
            ended = False
            while outbox.data:
                window = min(
                    self._h2.local_flow_control_window(stream_id), self._h2.max_outbound_frame_size
                )
                if window <= 0:
                    break
                chunk = bytes(outbox.data[:window])
                del outbox.data[:window]
                # The last chunk carries END_STREAM itself: no extra empty DATA frame.
                ended = not outbox.data and outbox.end and outbox.trailers is None
                self._h2.send_data(stream_id, chunk, end_stream=ended)
            if not outbox.data and outbox.end:
                if outbox.trailers is not None:
                    self._h2.send_headers(stream_id, outbox.trailers, end_stream=True)
                elif not ended:
                    self._h2.end_stream(stream_id)
                del self._outboxes[stream_id]
                self._maybe_forget(stream_id)
        except (h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
            self._outboxes.pop(stream_id, None)
            self._stream_reset(stream_id, by_peer=False)
            return
        if stream is not None:
            blocked = bool(outbox.data)
            if stream.send_blocked != blocked:
                stream.send_blocked = blocked
                if not blocked:
                    stream.wake()

    def _maybe_forget(self, stream_id: int) -> None:
        """Drop a stream once both directions are done, so nothing per-stream leaks."""
        stream = self._streams.get(stream_id)
        if (
            stream is not None
            and stream.complete
            and stream.body_complete
            and stream_id not in self._outboxes
        ):
            del self._streams[stream_id]
            self._websockets.pop(stream_id, None)
            self._check_done()

    def _reset(self, stream_id: int, code: h2.errors.ErrorCodes) -> None:
        try:
            self._h2.reset_stream(stream_id, code)
        except h2.exceptions.ProtocolError:  # the stream or the connection is already closed
            pass
        self._stream_reset(stream_id, by_peer=False)

    def _push(self, event: ServerPush) -> None:
        if not self._h2.remote_settings.enable_push or self._goaway_sent:
            return
        parent = self._streams.get(event.stream_id)
        if parent is None:
            return
        promised = self._h2.get_next_available_stream_id()
        authority = next((value for name, value in parent.scope["headers"] if name == b"host"), b"")
        scheme = parent.scope["scheme"].encode("ascii")
        request_headers = [
            (b":method", b"GET"),
            (b":path", event.path),
            (b":authority", authority),
            (b":scheme", scheme),
            *multiplexed_fields(event.headers),
        ]
        try:
            self._h2.push_stream(event.stream_id, promised, request_headers)
        except h2.exceptions.ProtocolError:
            return  # e.g. the client refused more streams
        headers = [(b"host", authority), *multiplexed_fields(event.headers)]
        self._start_stream(promised, Request(promised, headers, "2", "GET", event.path), ended=True)

    def _close(self, code: h2.errors.ErrorCodes) -> None:
        """End the connection now: GOAWAY, and every stream is disconnected."""
        if not self._goaway_sent:
            self._goaway_sent = True
            try:
                self._h2.close_connection(code, last_stream_id=self._h2.highest_inbound_stream_id)
            except h2.exceptions.ProtocolError:
                pass
        self.connection_lost()

    def _check_done(self) -> None:
        if self._draining and not self._streams and not self.closed:
            self._close(h2.errors.ErrorCodes.NO_ERROR)

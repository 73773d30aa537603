"""The HTTP/3 adapter: aioquic's QUIC and H3 state machines on the wire side, the same
:class:`HTTPStream`/:class:`WSStream` per request stream as HTTP/1.1 and HTTP/2.

One :class:`H3Session` per QUIC connection; :class:`hypercorn.protocol.quic.QuicEndpoint` owns
the sessions of one UDP socket and routes datagrams to them by connection ID.

Flow control both ways, as for HTTP/2:

- inbound: a request stream's receive window moves only as its application consumes the body
  (aioquic's own policy doubles the window whenever half of it has arrived, whatever the
  application did with it), so a slow application makes the client wait;
- outbound: once more than ``SEND_HIGH_WATER`` bytes of a stream are unacknowledged the stream
  is ``send_blocked`` and the backend holds the application's ``send()`` until the peer has
  acknowledged enough.

Limits: at most ``h2_max_concurrent_streams`` request streams at once per connection (the
same key bounds HTTP/2), each with a receive window of ``STREAM_WINDOW`` bytes.

Extended CONNECT (RFC 9220) carries WebSockets exactly as RFC 8441 does over HTTP/2.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Optional

from aioquic.buffer import encode_uint_var
from aioquic.h3.connection import ErrorCode as H3ErrorCode
from aioquic.h3.connection import FrameType, H3Connection, encode_frame
from aioquic.h3.events import DataReceived, H3Event, HeadersReceived
from aioquic.h3.exceptions import H3Error
from aioquic.quic.connection import QuicConnection
from aioquic.quic.events import (
    ConnectionTerminated,
    ProtocolNegotiated,
    QuicEvent,
    StopSendingReceived,
    StreamReset,
)
from aioquic.quic.packet import QuicFrameType
from aioquic.quic.packet_builder import QuicPacketBuilder

from .errors import MalformedRequest
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
from .h2 import multiplexed_fields
from .http_stream import HTTPStream, request_from_fields
from .ws_stream import AnyStream, WSStream

if TYPE_CHECKING:
    from aioquic.quic.configuration import QuicConfiguration
    from aioquic.quic.stream import QuicStream

    from ..config import Config
    from .connection_info import ConnectionInfo

STREAM_WINDOW = 256 * 1024  # bytes a client may send on a stream beyond what the app consumed
SEND_HIGH_WATER = 256 * 1024  # unacknowledged response bytes per stream before send() waits
SEND_LOW_WATER = 64 * 1024  # ... and the level at which it resumes
CLOSE_ACK_WAIT = 2.0  # seconds a draining connection waits for its last acknowledgements
_MAX_STREAM_DATA_FRAME_CAPACITY = 1 + 8 + 8  # frame type + stream ID + limit (varints)


class BoundedQuicConnection(QuicConnection):
    """aioquic's QUIC connection with request-stream receive windows set by the adapter.

    aioquic raises a stream's window whenever half of it has arrived; for the request streams
    the adapter :meth:`manage_window` s, the window is raised only by :meth:`raise_window`, as
    the application consumes. Every other stream (HTTP/3 control and QPACK streams) keeps
    aioquic's policy.
    """

    def __init__(self, *, configuration: QuicConfiguration, max_streams: int, **kwargs: Any):
        super().__init__(configuration=configuration, **kwargs)
        self._managed_windows: set[int] = set()
        # How many request streams the client may open at once (aioquic's default is 128).
        self._local_max_streams_bidi.value = max_streams

    def manage_window(self, stream_id: int) -> None:
        self._managed_windows.add(stream_id)

    def release_window(self, stream_id: int) -> None:
        self._managed_windows.discard(stream_id)

    def raise_window(self, stream_id: int, unconsumed: int) -> None:
        """Let the client send up to ``STREAM_WINDOW`` bytes beyond what the application has
        consumed (``unconsumed`` bytes were delivered to it but not yet received)."""
        stream = self._streams.get(stream_id)
        if stream is None:
            return
        limit = stream.receiver.starting_offset() - unconsumed + STREAM_WINDOW
        if limit > stream.max_stream_data_local:
            stream.max_stream_data_local = limit

    def unacknowledged(self, stream_id: int) -> int:
        """Bytes written to a stream that the peer has not acknowledged yet."""
        stream = self._streams.get(stream_id)
        return 0 if stream is None else len(stream.sender._buffer)

    def decrypted_a_packet(self) -> bool:
        """True once a packet from the peer was authenticated (aioquic records the peer's
        connection ID then); garbage that merely looks like an Initial never gets here."""
        return self._peer_cid.sequence_number is not None

    def all_acknowledged(self) -> bool:
        """True when the peer has acknowledged every byte written to every stream."""
        return all(not stream.sender._buffer for stream in self._streams.values())

    def _write_stream_limits(
        self, builder: QuicPacketBuilder, space: Any, stream: QuicStream
    ) -> None:
        if stream.stream_id not in self._managed_windows:
            super()._write_stream_limits(builder, space, stream)
            return
        if stream.max_stream_data_local_sent == stream.max_stream_data_local:
            return
        buf = builder.start_frame(
            QuicFrameType.MAX_STREAM_DATA,
            capacity=_MAX_STREAM_DATA_FRAME_CAPACITY,
            handler=self._on_max_stream_data_delivery,
            handler_args=(stream,),
        )
        buf.push_uint_var(stream.stream_id)
        buf.push_uint_var(stream.max_stream_data_local)
        stream.max_stream_data_local_sent = stream.max_stream_data_local


class H3Session:
    """One QUIC connection carrying HTTP/3, sans-IO (its endpoint does the datagram I/O)."""

    def __init__(
        self,
        config: Config,
        info: ConnectionInfo,
        quic: BoundedQuicConnection,
        on_output: Callable[[H3Session], None],
    ) -> None:
        self.config = config
        self.settings = config.core_settings  # (what streams read per request)
        self.info = info
        self.quic = quic
        self.cids: set[bytes] = set()  # the connection IDs the endpoint routes here
        self._on_output = on_output
        self.h3: Optional[H3Connection] = None
        self.terminated = False
        self._now = 0.0
        self._streams: dict[int, AnyStream] = {}
        self._blocked: set[int] = set()
        self._new_streams: list[AnyStream] = []
        self._unconsumed: dict[int, int] = {}  # body bytes delivered, not yet received
        self._highest_request = -1
        self._draining = False
        self._goaway_sent = False
        self._closed = False
        self._close_deadline = 0.0

    # ---------------------------------------------------------------- from the endpoint
    def quic_event(self, event: QuicEvent, now: float) -> None:
        self._now = now
        if isinstance(event, ProtocolNegotiated):
            if self.h3 is None:
                self.h3 = H3Connection(self.quic)
            return
        if isinstance(event, ConnectionTerminated):
            self.connection_lost()
            return
        if isinstance(event, (StreamReset, StopSendingReceived)):
            stream = self._streams.get(event.stream_id)
            if stream is not None:
                if isinstance(event, StopSendingReceived):  # the client wants no response
                    self._reset(event.stream_id)
                else:
                    self._forget(event.stream_id, disconnect=True)
        if self.h3 is None:
            return
        for h3_event in self.h3.handle_event(event):
            self._h3_event(h3_event)

    def after_events(self) -> None:
        """Called by the endpoint after each batch of input: unblock senders the peer's
        acknowledgements made room for, and finish draining."""
        for stream_id in list(self._blocked):
            if self.quic.unacknowledged(stream_id) <= SEND_LOW_WATER:
                self._blocked.discard(stream_id)
                stream = self._streams.get(stream_id)
                if stream is not None:
                    stream.send_blocked = False
                    stream.wake()
        self._check_done()

    @property
    def has_new_streams(self) -> bool:
        return bool(self._new_streams)

    def pop_new_streams(self) -> list[AnyStream]:
        streams, self._new_streams = self._new_streams, []
        return [stream for stream in streams if not stream.disconnected]

    def connection_lost(self) -> None:
        self.terminated = True
        for stream_id in list(self._streams):
            self._forget(stream_id, disconnect=True)

    def next_deadline(self, now: float) -> Optional[float]:
        """The earliest WebSocket ping/close or drain deadline (QUIC's timers are aioquic's);
        ``now`` while a WebSocket session has frames waiting for their turn: the backends'
        timer is the QUIC driver's way to a later turn of the event loop."""
        if self._goaway_sent and not self._closed:
            return self._close_deadline
        deadlines = []
        for stream in self._streams.values():
            if isinstance(stream, WSStream):
                if stream.backlogged:
                    return now
                deadlines.append(stream.next_deadline(now))
        return min((d for d in deadlines if d is not None), default=None)

    def handle_timer(self, now: float) -> None:
        self._now = now
        for stream in list(self._streams.values()):
            if isinstance(stream, WSStream):
                if stream.backlogged:
                    stream.process_backlog()
                stream.handle_timer(now)
        self._check_done()

    def begin_shutdown(self, now: float) -> None:
        self._now = now
        self._draining = True
        for stream in list(self._streams.values()):
            if isinstance(stream, WSStream):
                stream.begin_shutdown()  # close 1001; the stream ends with the session
        self._check_done()

    @property
    def idle(self) -> bool:
        return not self._streams

    # ---------------------------------------------------------------- inbound
    def _h3_event(self, event: H3Event) -> None:
        if isinstance(event, HeadersReceived):
            stream = self._streams.get(event.stream_id)
            if stream is None:
                self._request_received(event)
            elif event.stream_ended:  # request trailers: not passed to ASGI
                self._end_request(event.stream_id)
        elif isinstance(event, DataReceived):
            stream = self._streams.get(event.stream_id)
            if stream is not None:
                if event.data:
                    self._unconsumed[event.stream_id] += len(event.data)
                    stream.handle(Body(event.stream_id, event.data))
                if event.stream_ended:
                    self._end_request(event.stream_id)

    def _request_received(self, event: HeadersReceived) -> None:
        stream_id = event.stream_id
        if self._draining:
            self._reset(stream_id, H3ErrorCode.H3_REQUEST_REJECTED)
            return
        self._highest_request = max(self._highest_request, stream_id)
        try:
            request, pseudo = request_from_fields(stream_id, event.headers, "3")
        except MalformedRequest:  # RFC 9114 section 4.1.2: a stream error, both directions
            if not event.stream_ended:
                self.quic.stop_stream(stream_id, H3ErrorCode.H3_MESSAGE_ERROR)
            self._reset(stream_id, H3ErrorCode.H3_MESSAGE_ERROR)
            return
        method = request.method
        if method == "CONNECT":
            if pseudo.get(b":protocol") != b"websocket":  # only RFC 9220 WebSockets
                self._send(lambda h3: h3.send_headers(stream_id, [(b":status", b"405")], True))
                return
            request.method = "GET"
            self._start_stream(request, event.stream_ended, websocket=True)
            return
        self._start_stream(request, event.stream_ended)

    def _start_stream(self, request: Request, ended: bool, websocket: bool = False) -> None:
        stream_id = request.stream_id
        stream: AnyStream
        if websocket:
            stream = WSStream(self.config, self.info, request, self._stream_event, self._now)
        else:
            # Push is offered once the client has allowed some (MAX_PUSH_ID); aioquic keeps
            # that to itself, hence the private attribute.
            push = getattr(self.h3, "_max_push_id", None) is not None
            stream = HTTPStream(
                self.settings,
                self.info,
                request,
                self._stream_event,
                self._now,
                {"http.response.push": {}} if push else None,
            )
        stream.on_body_consumed = self._body_consumed
        self._streams[stream_id] = stream
        self._unconsumed[stream_id] = 0
        self.quic.manage_window(stream_id)
        if ended:
            stream.handle(EndBody(stream_id))
        if not stream.admit():  # answered already (421/413): no application is started
            if not ended:
                self.quic.stop_stream(stream_id, H3ErrorCode.H3_NO_ERROR)  # stop the upload
            self._maybe_forget(stream_id)
            return
        self._new_streams.append(stream)

    def _end_request(self, stream_id: int) -> None:
        stream = self._streams.get(stream_id)
        if stream is not None:
            stream.handle(EndBody(stream_id))
            self._maybe_forget(stream_id)

    def _body_consumed(self, stream_id: int, size: int) -> None:
        if stream_id in self._unconsumed:
            self._unconsumed[stream_id] -= size
            self.quic.raise_window(stream_id, self._unconsumed[stream_id])
            self._on_output(self)  # MAX_STREAM_DATA to send

    # ---------------------------------------------------------------- outbound
    def _stream_event(self, event: Event) -> None:
        if self.terminated or self.h3 is None:
            return
        self._on_output(self)
        stream_id = event.stream_id
        if isinstance(event, (Response, InformationalResponse)):
            headers = [(b":status", str(event.status_code).encode("ascii"))]
            headers += multiplexed_fields(event.headers)
            self._send(lambda h3: h3.send_headers(stream_id, headers))
            if type(event) is Response:  # a response in one piece: its body and end
                if event.body:
                    self._stream_event(Body(stream_id, event.body))
                if event.end:
                    self._stream_event(EndBody(stream_id))
        elif isinstance(event, (Body, Data)):  # Data: WebSocket frames
            if event.data:
                self._send(lambda h3: h3.send_data(stream_id, event.data, False))
                self._check_blocked(stream_id)
        elif isinstance(event, (EndBody, EndData)):
            self._send(lambda h3: h3.send_data(stream_id, b"", True))
            self._maybe_forget(stream_id)
        elif isinstance(event, Trailers):
            trailers = multiplexed_fields(event.headers)
            self._send(lambda h3: h3.send_headers(stream_id, trailers, True))
            self._maybe_forget(stream_id)
        elif isinstance(event, ServerPush):
            self._push(event)
        elif isinstance(event, StreamClosed):
            self._reset(stream_id)

    def _send(self, action: Any) -> None:
        """Run one H3 write; a stream the peer has already closed is forgotten quietly."""
        assert self.h3 is not None
        try:
            action(self.h3)
        except (H3Error, AssertionError, ValueError):
            # aioquic refuses writes to a stream that was reset or finished (AssertionError
            # from its stream sender, ValueError for an unknown stream, H3 frame errors).
            pass

    def _check_blocked(self, stream_id: int) -> None:
        stream = self._streams.get(stream_id)
        if stream is not None and self.quic.unacknowledged(stream_id) > SEND_HIGH_WATER:
            stream.send_blocked = True
            self._blocked.add(stream_id)

    def _push(self, event: ServerPush) -> None:
        parent = self._streams.get(event.stream_id)
        if parent is None or self.h3 is None or self._draining:
            return
        authority = next((value for name, value in parent.scope["headers"] if name == b"host"), b"")
        request_headers = [
            (b":method", b"GET"),
            (b":scheme", b"https"),
            (b":authority", authority),
            (b":path", event.path),
            *multiplexed_fields(event.headers),
        ]
        try:
            promised = self.h3.send_push_promise(event.stream_id, request_headers)
        except (H3Error, AssertionError, ValueError):
            return  # the client has not allowed pushes (MAX_PUSH_ID), or no more of them
        headers = [(b"host", authority), *multiplexed_fields(event.headers)]
        self._start_stream(Request(promised, headers, "3", "GET", event.path), ended=True)

    def _maybe_forget(self, stream_id: int) -> None:
        """Drop a stream once both directions are done, so nothing per-stream leaks."""
        stream = self._streams.get(stream_id)
        if stream is not None and stream.complete and stream.body_complete:
            self._forget(stream_id, disconnect=False)

    def _forget(self, stream_id: int, disconnect: bool) -> None:
        stream = self._streams.pop(stream_id, None)
        self._unconsumed.pop(stream_id, None)
        self._blocked.discard(stream_id)
        self.quic.release_window(stream_id)
        if stream is not None and disconnect:
            stream.handle(StreamClosed(stream_id))
        self._check_done()

    def _reset(self, stream_id: int, code: int = H3ErrorCode.H3_INTERNAL_ERROR) -> None:
        try:
            self.quic.reset_stream(stream_id, code)
        except (AssertionError, ValueError):
            pass  # already reset or finished
        self._forget(stream_id, disconnect=True)

    def _check_done(self) -> None:
        """Draining and no request left: GOAWAY, then CONNECTION_CLOSE once the peer has
        acknowledged everything sent (closing discards unsent stream data), or after
        ``CLOSE_ACK_WAIT`` seconds (a peer that has gone away acknowledges nothing)."""
        if not self._draining or self._streams or self.terminated or self._closed:
            return
        if not self._goaway_sent:
            self._goaway_sent = True
            self._close_deadline = self._now + CLOSE_ACK_WAIT
            self._send_goaway()
        if self.quic.all_acknowledged() or self._now >= self._close_deadline:
            self._closed = True
            self.quic.close(error_code=H3ErrorCode.H3_NO_ERROR)
            self._on_output(self)

    def _send_goaway(self) -> None:
        """GOAWAY on the control stream (RFC 9114 5.2): no request from the next stream ID on
        was or will be processed. aioquic has no call for it, hence the private stream ID."""
        control = getattr(self.h3, "_local_control_stream_id", None)
        if control is None:
            return
        next_stream = self._highest_request + 4 if self._highest_request >= 0 else 0
        try:
            self.quic.send_stream_data(
                control, encode_frame(FrameType.GOAWAY, encode_uint_var(next_stream))
            )
        except (AssertionError, ValueError):
            pass

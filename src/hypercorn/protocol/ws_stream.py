"""The per-connection ASGI WebSocket state machine, shared by HTTP/1.1 and HTTP/2 (RFC 8441).

The stream does the handshake itself and runs wsproto's frame-level connection over the bytes
its adapter carries (the socket after h11's ``101``, or the DATA frames of an extended-CONNECT
stream), so both transports behave the same. Application messages go through
``_TRANSITIONS``, one entry per valid (state, message type):

    HANDSHAKE --accept--> CONNECTED --close / peer close / error--> CLOSING --> CLOSED
    HANDSHAKE --close--> CLOSED (403)
    HANDSHAKE --websocket.http.response.start--> RESPONSE --last body--> CLOSED

Close codes reach the application unchanged (a peer's 1000 is 1000); a transport lost without a
close frame is 1006; an application crash closes with 1011, server shutdown with 1001, a message
over ``websocket_max_message_size`` with 1009. Messages the application sends after the close
are ignored. With ``websocket_ping_interval`` set, a ping is sent that often and a peer that does
not answer within ``websocket_ping_timeout`` is disconnected (1006 for the application).
"""

from __future__ import annotations

import base64
import binascii
import struct
from collections import deque
from collections.abc import Callable, Sequence
from enum import Enum, auto
from typing import TYPE_CHECKING, Any, Optional, Union

from wsproto.connection import Connection, ConnectionState, ConnectionType
from wsproto.events import BytesMessage, CloseConnection, Ping, Pong, TextMessage
from wsproto.extensions import Extension, PerMessageDeflate
from wsproto.utilities import LocalProtocolError, generate_accept_token

from .._headers import build_and_validate_headers
from ..utils import UnexpectedMessageError
from .errors import HandshakeError
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
)
from .http_stream import ASGI_VERSIONS, HTTPStream, admit_host, request_scope

if TYPE_CHECKING:
    from ..config import Config
    from ..typing import WebsocketScope
    from .connection_info import ConnectionInfo

CLOSE_HANDSHAKE_TIMEOUT = 5.0  # seconds to wait for the peer's answering close frame
# At most this many frames of a peer's input are processed per turn of the event loop, the
# rest on later turns (``backlogged``): one read can hold 43,000 empty pings (256 KiB), half
# a second of wsproto's time in which every other connection of the worker would wait. The
# HTTP/2 adapter applies the same budget to its own frames. (Over HTTP/2 and HTTP/3 a
# session still parses all it is given: see "Not yet" in the changelog.)
FRAMES_PER_TURN = 256
OPCODE_TEXT = 0x1
OPCODE_BINARY = 0x2


def plain_frame(opcode: int, payload: bytes) -> bytes:
    """A whole message in one frame as a server sends it (RFC 6455 5.2): FIN set, no RSV
    bits (no extension), not masked, the shortest length encoding."""
    length = len(payload)
    if length < 126:
        return bytes((0x80 | opcode, length)) + payload
    if length < 0x10000:
        return struct.pack("!BBH", 0x80 | opcode, 126, length) + payload
    return struct.pack("!BBQ", 0x80 | opcode, 127, length) + payload


class WSState(Enum):
    # Members are looked up in the transition table on every message: hash by identity
    # (Enum's own __hash__ is a Python function; equality is identity either way).
    __hash__ = object.__hash__

    HANDSHAKE = auto()
    CONNECTED = auto()
    RESPONSE = auto()
    CLOSING = auto()
    CLOSED = auto()


class WSStream:
    """One WebSocket session, seen from the application."""

    http = False

    def __init__(
        self,
        config: Config,
        info: ConnectionInfo,
        request: Request,
        emit: Callable[[Event], None],
        now: float,
    ) -> None:
        self.config = config
        self.stream_id = request.stream_id
        self.emit = emit
        self.start_time = now
        self.state = WSState.HANDSHAKE
        self.extended_connect = request.http_version in ("2", "3")  # RFC 8441 / RFC 9220
        self.status: Optional[int] = None
        self.response_headers: list[tuple[bytes, bytes]] = []
        self.bytes_sent = 0
        self.disconnected = False
        self.body_complete = True
        self.send_blocked = False
        self.on_wake: Optional[Callable[[], None]] = None
        self.on_body_consumed: Optional[Callable[[int, int], None]] = None
        self._inbox: deque[dict[str, Any]] = deque()
        self._connect_sent = False
        self._close_code: Optional[int] = None
        self._close_reason: Optional[str] = None
        self._ws: Optional[Connection] = None
        self._plain = False  # no extension negotiated: messages are framed here (_send)
        self._fragments: list[Any] = []
        self._fragment_size = 0
        self._unacknowledged = 0
        self._unparsed = False  # input may be waiting in wsproto's buffer (FRAMES_PER_TURN)
        self._now = now
        self._next_ping: Optional[float] = None
        self._pong_deadline: Optional[float] = None
        self._close_deadline: Optional[float] = None

        headers = request.headers
        self._key = self._offered_extensions = None
        subprotocols: list[str] = []
        for name, value in headers:
            if name == b"sec-websocket-key":
                self._key = value
            elif name == b"sec-websocket-protocol":
                subprotocols += [p.strip() for p in value.decode("latin-1").split(",") if p.strip()]
            elif name == b"sec-websocket-extensions":
                self._offered_extensions = value.decode("latin-1")
        self.peer = info.client
        common = request_scope(config.core_settings, info, request)
        self.untrusted_forwarded = common.untrusted_forwarded
        self.scope: WebsocketScope = {
            "type": "websocket",
            "asgi": ASGI_VERSIONS,
            "http_version": request.http_version,
            "scheme": "wss" if common.scheme == "https" else "ws",
            "path": common.path,
            "raw_path": common.raw_path,
            "query_string": common.query_string,
            "root_path": common.root_path,
            "headers": common.headers,
            "client": common.client,
            "server": info.server,
            "subprotocols": subprotocols,
            "state": info.state.copy(),
            "extensions": {"websocket.http.response": {}, **common.extensions},
        }
        if not self.extended_connect:
            self._check_http11_handshake(headers)

    def _check_http11_handshake(self, headers: list[tuple[bytes, bytes]]) -> None:
        version = next((value for name, value in headers if name == b"sec-websocket-version"), None)
        if version != b"13":
            raise HandshakeError(
                "unsupported WebSocket version", 426, [(b"sec-websocket-version", b"13")]
            )
        try:
            if self._key is None or len(base64.b64decode(self._key, validate=True)) != 16:
                raise HandshakeError("missing or invalid Sec-WebSocket-Key")
        except binascii.Error:
            raise HandshakeError("invalid Sec-WebSocket-Key") from None

    # ---------------------------------------------------------------- shared stream surface
    @property
    def complete(self) -> bool:
        return self.state is WSState.CLOSED

    @property
    def queued(self) -> int:
        return len(self._inbox)

    def wake(self) -> None:
        if self.on_wake is not None:
            self.on_wake()

    # ---------------------------------------------------------------- from the adapter
    def handle(self, event: Event) -> None:
        if isinstance(event, (Data, Body)):
            self._receive_bytes(event.data)
        elif isinstance(event, StreamClosed):  # the peer's end of input, or no transport
            if self._unparsed:
                self._parse(0)  # what the peer sent before it comes first
            self._disconnect(1006, None)
            self.state = WSState.CLOSED
        elif isinstance(event, (EndBody, EndData)):
            if self.state is WSState.HANDSHAKE:
                return  # the end of the upgrade request itself, not of the session
            if self._unparsed:
                self._parse(0)  # what the peer sent before its end comes first
                if self.state is WSState.CLOSED:
                    return
            self._disconnect(1006, None)  # the peer ended its side without a close frame
            self._finish()

    def _receive_bytes(self, data: bytes) -> None:
        if self._ws is None or self.state is WSState.CLOSED:
            return  # bytes before the handshake completed (or after the end) are dropped
        self._unacknowledged += len(data)
        try:
            self._ws.receive_data(data)
        except LocalProtocolError:
            return
        if not self._unparsed:  # (else it waits its turn, behind what is already waiting)
            self._parse(FRAMES_PER_TURN)

    def _parse(self, budget: int) -> None:
        """Act on up to ``budget`` frames of what wsproto holds, stopping early once the
        application's queue is full (all of it for 0); the rest stays in its buffer,
        ``unparsed``, for process_backlog."""
        assert self._ws is not None
        self._unparsed = False
        limit = self.config.max_app_queue_size
        for event in self._ws.events():
            # (exact types first: wsproto's events are ABCs, and isinstance on an ABC is slow)
            if type(event) is BytesMessage or type(event) is TextMessage:
                self._message_part(event)
            elif isinstance(event, Ping):
                self._send_frame(event.response())
            elif isinstance(event, Pong):
                self._pong_deadline = None
            elif isinstance(event, CloseConnection):
                self._peer_close(event)
            if self.complete:
                break
            if budget:
                budget -= 1
                if budget == 0 or len(self._inbox) >= limit:
                    self._unparsed = True  # (wsproto parses lazily: leaving the loop
                    break  # leaves the rest)
        self._acknowledge()

    @property
    def unparsed(self) -> bool:
        """Input is waiting in wsproto's buffer for a later turn (an HTTP/1.1 connection
        does not read more meanwhile; on HTTP/2 the session's unparsed bytes are not
        acknowledged, which holds its client back)."""
        return self._unparsed and self.state is not WSState.CLOSED

    @property
    def backlogged(self) -> bool:
        """Input is waiting, and the application has room for what it holds."""
        return self.unparsed and len(self._inbox) < self.config.max_app_queue_size

    def process_backlog(self) -> None:
        """The next turn's worth of frames. Drivers call it (through their connection) on
        a later turn of the event loop while :attr:`backlogged`; the application's
        ``receive()`` also does, when taking a message makes room, since a driver whose
        connection goes on reading (HTTP/2) may be waiting for input rather than for it."""
        if self.unparsed:
            self._parse(FRAMES_PER_TURN)

    def _message_part(self, event: TextMessage | BytesMessage) -> None:
        if self.state is not WSState.CONNECTED:
            return
        self._fragments.append(event.data)
        self._fragment_size += len(event.data)
        if self._fragment_size > self.config.websocket_max_message_size:
            self._fragments.clear()
            # A normal closing handshake: the peer can still parse frames, and hanging up
            # while it is still sending would make the kernel reset the connection, which
            # can destroy our close frame before the peer reads it. What arrives meanwhile
            # is parsed and dropped, not buffered.
            self._close(1009, "message too big")
            return
        if event.message_finished:
            message: dict[str, Any]
            if type(event) is TextMessage:
                message = {"type": "websocket.receive", "text": "".join(self._fragments)}
            else:
                message = {"type": "websocket.receive", "bytes": b"".join(self._fragments)}
            self._fragments.clear()
            self._fragment_size = 0
            self._inbox.append(message)
            self.wake()

    def _peer_close(self, event: CloseConnection) -> None:
        assert self._ws is not None
        if self._ws.state is ConnectionState.REMOTE_CLOSING:  # the peer started the close
            self._send_frame(event.response())
            self._disconnect(int(event.code), event.reason)
            self._finish()
        elif self._ws.state is ConnectionState.CLOSED:  # the peer answered our close
            self._finish()
        else:
            # wsproto found a protocol error (1002, 1007, ...): "fail the WebSocket
            # connection" (RFC 6455 7.1.7): a close frame with that code, then hang up at
            # once, since nothing more the peer sends can be parsed.
            self._close(int(event.code), event.reason)
            self._finish()

    def _acknowledge(self) -> None:
        # Flow control (HTTP/2): the peer may send more once the app has room for it.
        # (Not for input still waiting to be parsed: it counts against the window until it is.)
        if (
            self.on_body_consumed is not None
            and self._unacknowledged
            and not self._unparsed
            and len(self._inbox) < self.config.max_app_queue_size
        ):
            self.on_body_consumed(self.stream_id, self._unacknowledged)
            self._unacknowledged = 0

    # ---------------------------------------------------------------- from the application
    def app_receive_nowait(self) -> Optional[dict[str, Any]]:
        if not self._connect_sent:
            self._connect_sent = True
            return {"type": "websocket.connect"}
        if self._inbox:
            message = self._inbox.popleft()
            if self.backlogged:  # room again: the next turn's worth, now (see process_backlog)
                self._parse(FRAMES_PER_TURN)
            else:
                self._acknowledge()
            return message
        if self.disconnected or self.state in (WSState.CLOSED, WSState.CLOSING):
            return self._disconnect_message()
        return None

    def _disconnect_message(self) -> dict[str, Any]:
        return {
            "type": "websocket.disconnect",
            "code": self._close_code or 1005,
            "reason": self._close_reason,
        }

    def app_send(self, message: dict[str, Any]) -> bool:
        """Apply one message from the application's ``send()``; True (output may be due)."""
        message_type = message["type"]
        handler = _TRANSITIONS.get((self.state, message_type))
        if handler is not None:
            handler(self, message)
        elif not (self.state in (WSState.CLOSING, WSState.CLOSED) or self.disconnected):
            raise UnexpectedMessageError(self.state, message_type)
        # (after the close, messages are ignored, as ASGI expects)
        return True

    def app_failed(self) -> None:
        if self.state is WSState.HANDSHAKE:
            self._respond_and_close(500)
        elif self.state is WSState.RESPONSE:
            self.state = WSState.CLOSED
            self.emit(StreamClosed(self.stream_id))
        elif self.state is WSState.CONNECTED:
            self._close(1011, "internal error")

    def app_finished(self) -> bool:
        if self.state is WSState.HANDSHAKE:
            self._respond_and_close(403)  # returned without accepting: a denial
        elif self.state is WSState.CONNECTED:
            self._close(1000, None)
        elif self.state is WSState.RESPONSE:
            self.app_failed()
            return False
        return True

    def admit(self) -> bool:
        """Apply the server's limits before any application sees the handshake (421 for a
        host not in ``server_names``)."""
        if not admit_host(self.config.core_settings, self.scope["headers"]):
            self.reject(421)
            return False
        return True

    def reject(self, status: int, headers: Sequence[tuple[bytes, bytes]] = ()) -> None:
        """Deny the handshake with ``status`` without involving the application."""
        self._respond_and_close(status, headers)

    def begin_shutdown(self) -> None:
        if self.state is WSState.CONNECTED:
            self._close(1001, "server shutting down")

    # ---------------------------------------------------------------- transitions
    def _accept(self, message: dict[str, Any]) -> None:
        subprotocol = message.get("subprotocol")
        headers = build_and_validate_headers(message.get("headers", ()))
        if subprotocol is not None:
            headers.append((b"sec-websocket-protocol", subprotocol.encode("latin-1")))
        extensions: list[Extension] = []
        if self.config.websocket_compression and self._offered_extensions:
            deflate = PerMessageDeflate()
            for offer in self._offered_extensions.split(","):
                if offer.strip().split(";")[0].strip() == deflate.name:
                    accepted = deflate.accept(offer.strip())
                    if accepted:
                        # accept() returns the parameters only (or True for none)
                        value = deflate.name if accepted is True else f"{deflate.name}; {accepted}"
                        headers.append((b"sec-websocket-extensions", value.encode("latin-1")))
                        extensions.append(deflate)
                    break
        self._ws = Connection(ConnectionType.SERVER, extensions)
        self._plain = not extensions
        self.state = WSState.CONNECTED
        self.response_headers = headers
        if self.extended_connect:
            self.status = 200
            self.emit(Response(self.stream_id, 200, headers))
        else:
            assert self._key is not None
            self.status = 101
            self.emit(
                InformationalResponse(
                    self.stream_id,
                    101,
                    [
                        (b"upgrade", b"websocket"),
                        (b"connection", b"Upgrade"),
                        (b"sec-websocket-accept", generate_accept_token(self._key)),
                        *headers,
                    ],
                )
            )
        if self.config.websocket_ping_interval:
            self._next_ping = self._now + self.config.websocket_ping_interval

    def _send(self, message: dict[str, Any]) -> None:
        text = message.get("text")
        if text is None:
            data = message.get("bytes")
            if data is None:
                raise TypeError("websocket.send needs bytes or text")
            opcode, payload = OPCODE_BINARY, bytes(data)
        else:
            opcode, payload = OPCODE_TEXT, text.encode("utf-8")
        assert self._ws is not None
        if self._plain and self._ws.state is ConnectionState.OPEN:
            # No extension transforms frames: write the frame here (wsproto's own way costs
            # an event object and several checks per message, a fifth of an echo's time).
            frame = plain_frame(opcode, payload)
            self.bytes_sent += len(frame)
            self.emit(Data(self.stream_id, frame))
        elif text is not None:
            self._send_frame(TextMessage(data=text))
        else:
            self._send_frame(BytesMessage(data=payload))

    def _app_close(self, message: dict[str, Any]) -> None:
        if self.state is WSState.HANDSHAKE:
            self._respond_and_close(403)
        else:
            self._close(int(message.get("code", 1000)), message.get("reason"))

    def _response_start(self, message: dict[str, Any]) -> None:
        status = int(message["status"])
        if not 100 <= status < 600 or status == 101:
            raise ValueError(f"Invalid denial status {status}")
        self.status = status
        self.response_headers = build_and_validate_headers(message.get("headers", ()))
        self.state = WSState.RESPONSE
        self.emit(Response(self.stream_id, status, self.response_headers))

    def _response_body(self, message: dict[str, Any]) -> None:
        body = message.get("body", b"")
        if body:
            self.bytes_sent += len(body)
            self.emit(Body(self.stream_id, bytes(body)))
        if not message.get("more_body", False):
            self.state = WSState.CLOSED
            self.disconnected = True
            self.emit(EndBody(self.stream_id))

    # ---------------------------------------------------------------- helpers
    def _send_frame(self, event: Any) -> None:
        if self._ws is None:
            return
        try:
            data = self._ws.send(event)
        except LocalProtocolError:
            return  # e.g. a frame after our close: nothing to send
        if data:
            self.bytes_sent += len(data)
            self.emit(Data(self.stream_id, data))

    def _close(self, code: int, reason: Optional[str]) -> None:
        """Start the closing handshake with ``code``; the app hears ``code`` too."""
        if self.state is not WSState.CONNECTED:
            return
        self._send_frame(CloseConnection(code=code, reason=reason))
        self.state = WSState.CLOSING
        self._close_deadline = self._now + CLOSE_HANDSHAKE_TIMEOUT
        self._disconnect(code, reason)

    def _disconnect(self, code: int, reason: Optional[str]) -> None:
        if not self.disconnected:
            self.disconnected = True
            self._close_code = code
            self._close_reason = reason
            self._inbox.append(self._disconnect_message())
            self.wake()

    def _finish(self) -> None:
        if self.state is not WSState.CLOSED:
            self.state = WSState.CLOSED
            self.emit(EndData(self.stream_id))

    def _respond_and_close(self, status: int, headers: Sequence[tuple[bytes, bytes]] = ()) -> None:
        self.status = status
        self.state = WSState.CLOSED
        self.disconnected = True
        self.response_headers = [(b"content-length", b"0"), *headers]
        self.emit(Response(self.stream_id, status, self.response_headers))
        self.emit(EndBody(self.stream_id))

    # ---------------------------------------------------------------- time
    def next_deadline(self, now: float) -> Optional[float]:
        self._now = now
        deadlines = [
            d for d in (self._next_ping, self._pong_deadline, self._close_deadline) if d is not None
        ]
        return min(deadlines) if deadlines and self.state is not WSState.CLOSED else None

    def handle_timer(self, now: float) -> None:
        self._now = now
        if self._close_deadline is not None and now >= self._close_deadline:
            self._close_deadline = None
            self._finish()  # the peer never answered our close frame
        elif self._pong_deadline is not None and now >= self._pong_deadline:
            if self._unparsed or len(self._inbox) >= self.config.max_app_queue_size:
                # We are not reading the peer (its application's queue is full): its pong may
                # be waiting behind the messages. Not reading is not the peer's silence.
                self._pong_deadline = now + (self.config.websocket_ping_timeout or 0.0)
                return
            self._pong_deadline = self._next_ping = None
            self._disconnect(1006, "ping timeout")  # for the app: the connection was lost
            self._close(1011, "ping timeout")
            self._finish()  # no point waiting for a dead peer's close frame
        elif (
            self._next_ping is not None
            and now >= self._next_ping
            and self.state is WSState.CONNECTED
        ):
            self._send_frame(Ping(payload=b"hypercorn"))
            interval = self.config.websocket_ping_interval or 0.0
            self._next_ping = now + interval
            if self.config.websocket_ping_timeout and self._pong_deadline is None:
                self._pong_deadline = now + self.config.websocket_ping_timeout


AnyStream = Union[HTTPStream, WSStream]

_TRANSITIONS: dict[tuple[WSState, str], Callable[[WSStream, dict[str, Any]], None]] = {
    (WSState.HANDSHAKE, "websocket.accept"): WSStream._accept,
    (WSState.HANDSHAKE, "websocket.close"): WSStream._app_close,
    (WSState.HANDSHAKE, "websocket.http.response.start"): WSStream._response_start,
    (WSState.RESPONSE, "websocket.http.response.body"): WSStream._response_body,
    (WSState.CONNECTED, "websocket.send"): WSStream._send,
    (WSState.CONNECTED, "websocket.close"): WSStream._app_close,
}

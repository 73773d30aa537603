"""The per-request ASGI HTTP state machine, shared by the HTTP/1.1, HTTP/2 and HTTP/3 adapters.

Application messages are dispatched through ``_TRANSITIONS``, a table of every valid
(state, message type) pair; anything else is an :class:`UnexpectedMessageError`.

    REQUEST --start--> STARTED --body--> BODY --last body--> CLOSED
    REQUEST --early_hint--> REQUEST
    BODY --last body, trailers announced--> TRAILERS --trailers--> CLOSED

STARTED holds the response headers until the first body message, so that a body sent in one
message gets a Content-Length instead of chunked framing.

The stream never does I/O: it emits protocol events to its adapter through ``emit`` and wakes
the backend's waiting ``receive()`` through ``on_wake``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import Enum, auto
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, Optional, cast
from urllib.parse import unquote_to_bytes

from .._headers import build_and_validate_headers, suppress_body
from ..utils import UnexpectedMessageError, valid_server_name
from .errors import ClientDisconnected, MalformedRequest
from .events import (
    Body,
    EndBody,
    Event,
    InformationalResponse,
    Request,
    Response,
    ServerPush,
    StreamClosed,
    Trailers,
)
from .proxy import has_forwarded_headers, is_trusted, resolve

if TYPE_CHECKING:
    from ..typing import ASGIVersions, HTTPScope
    from .connection_info import ConnectionInfo
    from .core_settings import CoreSettings

ASGI_VERSIONS: ASGIVersions = {"spec_version": "2.4", "version": "3.0"}
# An HTTP scope's keys in their order, with the values every request shares; the others are
# set per request (None here: a value left unset must not be a list or dict shared by all).
_SCOPE_TEMPLATE: dict[str, Any] = {
    "type": "http",
    "asgi": ASGI_VERSIONS,
    **dict.fromkeys(
        (
            "http_version",
            "method",
            "scheme",
            "path",
            "raw_path",
            "query_string",
            "root_path",
            "headers",
            "client",
            "server",
            "state",
            "extensions",
        )
    ),
}
_DISCONNECT = {"type": "http.disconnect"}
_DEFAULT_NAMES = frozenset((b"date", b"server", b"alt-svc"))  # Config.response_headers
_PROTOCOL_NAMES = {"1.0": "h11", "1.1": "h11", "2": "h2", "3": "h3"}
_PUSH_PATH = re.compile(rb"/[!-~]*")


class StreamState(Enum):
    # Members are looked up in the transition table on every message: hash by identity
    # (Enum's own __hash__ is a Python function; equality is identity either way).
    __hash__ = object.__hash__

    REQUEST = auto()
    STARTED = auto()
    BODY = auto()
    TRAILERS = auto()
    CLOSED = auto()


_REASONS = {status.value: status.phrase.encode("ascii") for status in HTTPStatus}


def reason_phrase(status: int) -> bytes:
    return _REASONS.get(status, b"")


# HTTP/2 and HTTP/3 request header blocks (RFC 9113 sections 8.2 and 8.3, RFC 9114 sections
# 4.2 and 4.3, the same rules). For HTTP/2 this replaces h2's inbound validation (a chain of
# generators per field, a tenth of an h2c request's time); tests/unit/test_h2_fields.py
# holds it to h2's verdicts, from which it departs only where h2 departs from the RFCs: h2
# joins split Cookie fields (moving them last) before checking, so it judges the crumbs
# only joined and accepts a Cookie before a pseudo-header; and it lets through a :method
# that is not a token. For HTTP/3, aioquic has checked names and values first.
_FIELD_NAME = re.compile(rb"[\x21-\x39\x3b-\x40\x5b-\x7e]+")  # no upper case, no ':'
_BAD_VALUE = re.compile(rb"[\x00\n\r]|\A[\t ]|[\t ]\Z")
_TOKEN = re.compile(rb"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_REQUEST_PSEUDO = frozenset((b":authority", b":method", b":path", b":protocol", b":scheme"))
# Connection-specific fields, malformed in HTTP/2 and HTTP/3 (RFC 9113 section 8.2.2, RFC 9114
# section 4.2); TE is the exception, allowed in requests as "trailers".
CONNECTION_SPECIFIC = frozenset(
    (b"connection", b"keep-alive", b"proxy-connection", b"transfer-encoding", b"upgrade")
)


def check_field(name: bytes, value: bytes) -> None:
    """A regular (not pseudo-header) field of an HTTP/2 or HTTP/3 block, or
    :class:`MalformedRequest`."""
    if _FIELD_NAME.fullmatch(name) is None:
        raise MalformedRequest(f"invalid field name {name!r}")
    if value and _BAD_VALUE.search(value) is not None:
        raise MalformedRequest(f"invalid value for {name!r}")
    if name in CONNECTION_SPECIFIC or (name == b"te" and value.lower() != b"trailers"):
        raise MalformedRequest(f"connection-specific field {name!r}")


def check_trailers(fields: Iterable[tuple[bytes, bytes]]) -> None:
    """Request trailers: regular fields only."""
    for name, value in fields:
        if name[:1] == b":":
            raise MalformedRequest(f"pseudo-header {name!r} in trailers")
        check_field(name, value)


def request_from_fields(
    stream_id: int, fields: Iterable[tuple[bytes, bytes]], http_version: str
) -> tuple[Request, dict[bytes, bytes]]:
    """An HTTP/2 or HTTP/3 request header block as a :class:`Request` and its pseudo-headers,
    or :class:`MalformedRequest` (a stream error). Split Cookie fields are joined into one,
    last; ``:authority`` becomes the ``host`` header when there is none."""
    pseudo: dict[bytes, bytes] = {}
    headers: list[tuple[bytes, bytes]] = []
    cookies: list[bytes] = []
    host: Optional[bytes] = None
    regular = False
    for name, value in fields:
        if name[:1] == b":":
            if regular or name in pseudo or name not in _REQUEST_PSEUDO:
                raise MalformedRequest(f"unexpected pseudo-header {name!r}")
            if value and _BAD_VALUE.search(value) is not None:
                raise MalformedRequest(f"invalid value for {name!r}")
            pseudo[name] = value
            continue
        regular = True
        check_field(name, value)
        if name == b"cookie":
            cookies.append(value)
            continue
        if name == b"host":
            if host is not None:
                raise MalformedRequest("more than one host field")
            host = value
        headers.append((name, value))
    if cookies:
        headers.append((b"cookie", b"; ".join(cookies)))
    method = pseudo.get(b":method")
    if method is None or _TOKEN.fullmatch(method) is None:
        raise MalformedRequest("missing or invalid :method")
    if method == b"CONNECT" and b":protocol" not in pseudo:
        if b":scheme" in pseudo or b":path" in pseudo:
            raise MalformedRequest("CONNECT with :scheme or :path")
    elif b":scheme" not in pseudo or not pseudo.get(b":path"):
        raise MalformedRequest("missing :scheme, or missing or empty :path")
    elif b":protocol" in pseudo and method != b"CONNECT":  # RFC 8441 section 4
        raise MalformedRequest(":protocol without CONNECT")
    authority = pseudo.get(b":authority")
    if authority is None:
        if host is None:
            raise MalformedRequest("neither :authority nor host")
    elif host is None:
        headers.insert(0, (b"host", authority))
    elif host != authority:
        raise MalformedRequest(":authority and host differ")
    path = pseudo.get(b":path", b"/")
    return Request(stream_id, headers, http_version, method.decode("ascii"), path), pseudo


def admit_host(settings: CoreSettings, headers: Iterable[tuple[bytes, bytes]]) -> bool:
    """True unless ``server_names`` is set and the request's Host is not one of them."""
    return not settings.server_names or valid_server_name(settings.source, headers)


def decode_path(raw_path: bytes) -> str:
    """Percent-decode a request path and decode it as UTF-8 (latin-1 if it is not UTF-8)."""
    # (an int: ``bytes in bytes`` first tries its operand as an int, and formats and
    # discards a TypeError on every call)
    unquoted = unquote_to_bytes(raw_path) if 0x25 in raw_path else raw_path  # "%"
    try:
        return unquoted.decode("utf-8")
    except UnicodeDecodeError:
        return unquoted.decode("latin-1")


@dataclass(slots=True, init=False)
class ScopeFields:
    """The parts of an ASGI ``http``/``websocket`` scope common to both (made per request:
    its own __init__, as the events', see events.py)."""

    scheme: str
    path: str
    raw_path: bytes
    query_string: bytes
    root_path: str
    headers: list[tuple[bytes, bytes]]
    client: tuple[str, int] | None
    extensions: dict[str, dict[object, object]]
    untrusted_forwarded: bool

    def __init__(
        self,
        scheme: str,
        path: str,
        raw_path: bytes,
        query_string: bytes,
        root_path: str,
        headers: list[tuple[bytes, bytes]],
        client: tuple[str, int] | None,
        extensions: dict[str, dict[object, object]],
        untrusted_forwarded: bool = False,
    ) -> None:
        self.scheme = scheme
        self.path = path
        self.raw_path = raw_path
        self.query_string = query_string
        self.root_path = root_path
        self.headers = headers
        self.client = client
        self.extensions = extensions
        self.untrusted_forwarded = untrusted_forwarded


def request_scope(settings: CoreSettings, info: ConnectionInfo, request: Request) -> ScopeFields:
    """Scope fields for a request, with forwarded headers applied when the peer is a trusted
    proxy (``proxy_headers``/``trusted_proxies``)."""
    scheme, client, headers = info.scheme, info.client, request.headers
    root_path = settings.root_path
    untrusted = False
    if settings.proxy_headers != "none":
        peer_host = info.client[0] if info.client else None
        if is_trusted(peer_host, settings.trusted_proxies):
            forwarded = resolve(headers, settings.proxy_headers, settings.trusted_proxies)
            if forwarded.client:
                client = (forwarded.client, 0)
            if forwarded.scheme:
                scheme = forwarded.scheme
            if forwarded.host:
                headers = [(name, value) for name, value in headers if name != b"host"]
                headers.append((b"host", forwarded.host.encode("latin-1")))
            if forwarded.prefix:
                root_path = forwarded.prefix.rstrip("/") + root_path
        else:
            untrusted = has_forwarded_headers(headers, settings.proxy_headers)
    path_part, _, query = request.raw_path.partition(b"?")
    path = decode_path(path_part)
    if root_path and not path.startswith(root_path):
        path = root_path + path
        path_part = root_path.encode() + path_part
    extensions: dict[str, dict[object, object]] = {} if info.tls is None else {"tls": info.tls}
    return ScopeFields(
        scheme, path, path_part, query, root_path, headers, client, extensions, untrusted
    )


class HTTPStream:
    """One request/response exchange, seen from the application."""

    http = True  # (and False on a WSStream: adapters tell the two apart without importing it)

    __slots__ = (
        "_body_ended",
        "_body_received",
        "_expect_100",
        "_inbox",
        "_sent_100",
        "_suppress",
        "_trailer_block",
        "_trailers_expected",
        "body_complete",
        "bytes_sent",
        "config",
        "disconnected",
        "emit",
        "method",
        "on_body_consumed",
        "on_wake",
        "peer",
        "protocol",
        "response_headers",
        "scope",
        "secure",
        "send_blocked",
        "settings",
        "start_time",
        "state",
        "status",
        "stream_id",
        "untrusted_forwarded",
    )

    def __init__(
        self,
        settings: CoreSettings,
        info: ConnectionInfo,
        request: Request,
        emit: Callable[[Event], None],
        now: float,
        extensions: dict[str, dict[object, object]] | None = None,
    ) -> None:
        # (the connection's Config.core_settings: what is read per request, see core_settings.py)
        self.settings = settings
        self.config = settings.source
        self.stream_id = request.stream_id
        self.emit = emit
        self.start_time = now
        self.method = request.method
        self.protocol = request.http_version
        self.state = StreamState.REQUEST
        self.status: int | None = None
        self.bytes_sent = 0
        self.disconnected = False
        self.body_complete = False
        self.on_wake: Callable[[], None] | None = None
        # Set by adapters with flow control: told how many body bytes the app has consumed,
        # and raising ``send_blocked`` while the peer's window holds the app's output back.
        self.on_body_consumed: Callable[[int, int], None] | None = None
        self.send_blocked = False
        # Request body messages not yet received: a list, as it is short (max_app_queue_size)
        # and a deque costs more to make than most requests ever put in it.
        self._inbox: list[dict[str, Any]] = []
        self._body_ended = False  # the application has received the body's last message
        self._body_received = 0
        self.response_headers: list[tuple[bytes, bytes]] = []
        self._trailers_expected = False
        self._trailer_block: list[tuple[bytes, bytes]] = []
        self._suppress = False
        self._sent_100 = False
        self._expect_100 = False
        for name, value in request.headers:
            if name == b"expect" and value.lower() == b"100-continue":
                self._expect_100 = True

        self.peer = info.client
        self.secure = info.scheme == "https"  # the transport's TLS, not a proxy's
        common = request_scope(settings, info, request)
        self.untrusted_forwarded = common.untrusted_forwarded
        scope_extensions = common.extensions
        scope_extensions["http.response.trailers"] = {}
        scope_extensions["http.response.early_hint"] = {}
        if extensions:
            scope_extensions.update(extensions)
        # (a copy of a template, then its values: cheaper than building a 14-key dict)
        scope: dict[str, Any] = _SCOPE_TEMPLATE.copy()
        scope["http_version"] = request.http_version
        scope["method"] = request.method
        scope["scheme"] = common.scheme
        scope["path"] = common.path
        scope["raw_path"] = common.raw_path
        scope["query_string"] = common.query_string
        scope["root_path"] = common.root_path
        scope["headers"] = common.headers
        scope["client"] = common.client
        scope["server"] = info.server
        scope["state"] = info.state.copy()
        scope["extensions"] = scope_extensions
        self.scope = cast("HTTPScope", scope)

    # ---------------------------------------------------------------- from the adapter
    def handle(self, event: Event) -> None:
        """Take an inbound event for this stream from the protocol adapter."""
        if isinstance(event, Body):
            self._body_received += len(event.data)
            limit = self.settings.max_request_body_size
            if limit is not None and self._body_received > limit:
                self._body_too_large()
            elif not self.disconnected:
                self._inbox.append({"type": "http.request", "body": event.data, "more_body": True})
                self.wake()
        elif isinstance(event, EndBody):
            self.body_complete = True
            if self.disconnected:
                return
            if self._inbox:
                self._inbox[-1]["more_body"] = False
            # (else app_receive_nowait makes the last message when the application asks)
            self.wake()
        elif isinstance(event, StreamClosed) and not self.disconnected:
            self.disconnected = True
            self._inbox.clear()
            self.wake()

    def admit(self) -> bool:
        """Apply the server's request limits before any application sees the request.

        Returns False after answering it itself: 421 for a host not in ``server_names``, 413
        when Content-Length exceeds ``max_request_body_size``.
        """
        if not admit_host(self.settings, self.scope["headers"]):
            self.reject(421)
            return False
        limit = self.settings.max_request_body_size
        if limit is not None:
            for name, value in self.scope["headers"]:
                if name == b"content-length" and value.isdigit() and int(value) > limit:
                    self.reject(413)
                    return False
        return True

    def reject(self, status: int, headers: Sequence[tuple[bytes, bytes]] = ()) -> None:
        """Answer with a short plain-text ``status`` response the application never sees."""
        body = reason_phrase(status)
        self.status = status
        self.state = StreamState.CLOSED
        self.disconnected = True
        self.response_headers = self._default_headers(
            [
                (b"content-type", b"text/plain; charset=utf-8"),
                (b"content-length", str(len(body)).encode("ascii")),
                *headers,
            ]
        )
        self.emit(Response(self.stream_id, status, self.response_headers))
        if not suppress_body(self.method, status):  # the same rule as the app's responses
            self.emit(Body(self.stream_id, body))
        self.emit(EndBody(self.stream_id))

    def _body_too_large(self) -> None:
        if self.disconnected:
            return
        if self.state in (StreamState.REQUEST, StreamState.STARTED):
            self.reject(413)
        else:  # the response has started: the only signal left is abandoning it
            self.state = StreamState.CLOSED
            self.emit(StreamClosed(self.stream_id))
        self.disconnected = True
        self._inbox.clear()
        self.wake()

    @property
    def queued(self) -> int:
        """Inbound messages read from the peer but not yet received by the application."""
        return len(self._inbox)

    @property
    def complete(self) -> bool:
        """True once the response has been sent in full (or abandoned)."""
        return self.state is StreamState.CLOSED

    def wake(self) -> None:
        """Wake the backend's waiting ``receive()``/``send()`` to look at the stream again."""
        if self.on_wake is not None:
            self.on_wake()

    # ---------------------------------------------------------------- from the application
    def app_receive_nowait(self) -> dict[str, Any] | None:
        """The next message for the application's ``receive()``, or ``None`` to wait."""
        if self._inbox:
            message = self._inbox.pop(0)
            if not message["more_body"]:
                self._body_ended = True
            if self.on_body_consumed is not None:
                self.on_body_consumed(self.stream_id, len(message["body"]))
            return message
        if self.body_complete and not self._body_ended and not self.disconnected:
            self._body_ended = True  # (most requests have no body: made only when asked for)
            return {"type": "http.request", "body": b"", "more_body": False}
        if self.disconnected or self.state is StreamState.CLOSED:
            return _DISCONNECT
        if self._expect_100 and not self._sent_100 and self.state is StreamState.REQUEST:
            self._sent_100 = True
            self.emit(InformationalResponse(self.stream_id, 100))
        return None

    def app_send(self, message: dict[str, Any]) -> bool:
        """Apply one message from the application's ``send()``. Returns False when nothing
        reached the adapter (``http.response.start`` is held until the first body), so the
        driver need not look for output."""
        if self.disconnected:
            raise ClientDisconnected("the client has disconnected")
        message_type = message["type"]
        handler = _TRANSITIONS.get((self.state, message_type))
        if handler is None:
            raise UnexpectedMessageError(self.state, message_type)
        return handler(self, message) is not False

    def app_failed(self) -> None:
        """The application raised: answer 500 if nothing was sent, else abandon the stream."""
        if self.state in (StreamState.REQUEST, StreamState.STARTED):
            self._suppress = suppress_body(self.method, 500)
            self.response_headers = headers = self._default_headers([(b"content-length", b"0")])
            self.state = StreamState.CLOSED
            self.status = 500
            if not self.disconnected:
                self.emit(Response(self.stream_id, 500, headers))
                self.emit(EndBody(self.stream_id))
        elif self.state is not StreamState.CLOSED:
            self.state = StreamState.CLOSED
            if not self.disconnected:
                self.emit(StreamClosed(self.stream_id))

    def app_finished(self) -> bool:
        """The application returned. Returns False (and fails the stream) if the response
        was left incomplete."""
        if self.state is StreamState.CLOSED or self.disconnected:
            return True
        self.app_failed()
        return False

    # ---------------------------------------------------------------- transitions
    def _start(self, message: dict[str, Any]) -> bool:
        status = int(message["status"])
        if not 200 <= status <= 599:
            raise ValueError(f"Invalid response status {status} in http.response.start")
        self.response_headers = build_and_validate_headers(message.get("headers", ()))
        self._trailers_expected = bool(message.get("trailers", False))
        self._suppress = suppress_body(self.method, status)
        self.status = status
        self.state = StreamState.STARTED
        return False  # held until the first body

    def _default_headers(self, headers: list[tuple[bytes, bytes]]) -> list[tuple[bytes, bytes]]:
        defaults = self.settings.default_headers.get(self.protocol_name, self.secure)
        if not defaults:
            return headers
        for name, _ in headers:
            if name in _DEFAULT_NAMES:  # the application set one itself: its value wins
                present = {name for name, _ in headers}
                return headers + [item for item in defaults if item[0] not in present]
        headers += defaults
        return headers

    @property
    def protocol_name(self) -> str:
        return _PROTOCOL_NAMES.get(self.protocol) or f"h{self.protocol}"

    def _first_body(self, message: dict[str, Any]) -> None:
        headers = self.response_headers
        body = message.get("body", b"")
        if (
            not message.get("more_body", False)
            and not self._trailers_expected
            and not self._suppress
        ):
            for name, _ in headers:
                if name == b"content-length" or name == b"transfer-encoding":
                    break
            else:
                headers.append((b"content-length", str(len(body)).encode("ascii")))
        assert self.status is not None
        self.response_headers = headers = self._default_headers(headers)
        if message.get("more_body", False) or self._trailers_expected:
            self.emit(Response(self.stream_id, self.status, headers))
            self.state = StreamState.BODY
            self._body(message)
            return
        # The whole response in one message (the common case): one event for the adapter.
        if body and not self._suppress:
            self.bytes_sent = len(body)
            body = bytes(body)
        else:
            body = b""
        self.state = StreamState.CLOSED
        self.emit(Response(self.stream_id, self.status, headers, body, True))

    def _body(self, message: dict[str, Any]) -> None:
        body = message.get("body", b"")
        if body and not self._suppress:
            self.bytes_sent += len(body)
            self.emit(Body(self.stream_id, bytes(body)))
        if not message.get("more_body", False):
            if self._trailers_expected:
                self.state = StreamState.TRAILERS
            else:
                self.state = StreamState.CLOSED
                self.emit(EndBody(self.stream_id))

    def _trailers(self, message: dict[str, Any]) -> None:
        self._trailer_block += build_and_validate_headers(message.get("headers", ()))
        if not message.get("more_trailers", False):  # trailers go out in one block, last
            self.state = StreamState.CLOSED
            self.emit(Trailers(self.stream_id, self._trailer_block))

    def _early_hint(self, message: dict[str, Any]) -> None:
        links = message.get("links", ())
        # (validated like any header: a CR or LF in a link would start a new header line)
        headers = build_and_validate_headers([(b"link", link) for link in links])
        if headers:
            self.emit(InformationalResponse(self.stream_id, 103, headers))

    def _push(self, message: dict[str, Any]) -> None:
        """Ask the adapter to push; adapters that cannot (HTTP/1.1) ignore it, as the
        extension is only offered where pushing is possible."""
        headers = build_and_validate_headers(message.get("headers", ()))
        path = message["path"].encode("utf-8")
        if _PUSH_PATH.fullmatch(path) is None:  # an absolute path, visible ASCII
            raise ValueError(f"Invalid path {message['path']!r} in http.response.push")
        self.emit(ServerPush(self.stream_id, path, headers))


# Each returns None, or False when it emitted nothing (see ``app_send``).
_TRANSITIONS: dict[
    tuple[StreamState, str], Callable[[HTTPStream, dict[str, Any]], Optional[bool]]
] = {
    (StreamState.REQUEST, "http.response.start"): HTTPStream._start,
    (StreamState.REQUEST, "http.response.early_hint"): HTTPStream._early_hint,
    (StreamState.REQUEST, "http.response.push"): HTTPStream._push,
    (StreamState.STARTED, "http.response.body"): HTTPStream._first_body,
    (StreamState.STARTED, "http.response.push"): HTTPStream._push,
    (StreamState.BODY, "http.response.body"): HTTPStream._body,
    (StreamState.BODY, "http.response.push"): HTTPStream._push,
    (StreamState.TRAILERS, "http.response.trailers"): HTTPStream._trailers,
}

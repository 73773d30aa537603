"""The HTTP/1.1 protocol core with bytes in and bytes out: no sockets, no event loop, no clock."""

from __future__ import annotations

from typing import Any

import h11
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import hypercorn.config
from hypercorn.config import Config
from hypercorn.protocol import ConnectionInfo
from hypercorn.protocol.connection import http11_adapter
from hypercorn.protocol.h11 import H11Connection
from hypercorn.protocol.http_stream import HTTPStream
from tests.conftest import examples


@pytest.fixture(autouse=True)
def fixed_clock(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hypercorn.config, "time", lambda: 1_700_000_000.0)


DATE = b"Tue, 14 Nov 2023 22:13:20 GMT"


def make_connection(**settings: Any) -> H11Connection:
    config = Config(**settings)
    info = ConnectionInfo(client=("127.0.0.1", 5000), server=("127.0.0.1", 8000))
    return H11Connection(config, info, now=0.0)


def read_body(stream: HTTPStream) -> bytes:
    body = b""
    while True:
        message = stream.app_receive_nowait()
        assert message is not None, "body incomplete"
        assert message["type"] == "http.request"
        body += message["body"]
        if not message["more_body"]:
            return body


def respond(
    stream: HTTPStream,
    body: bytes = b"ok",
    status: int = 200,
    headers: list[tuple[bytes, bytes]] | None = None,
) -> None:
    stream.app_send({"type": "http.response.start", "status": status, "headers": headers or []})
    stream.app_send({"type": "http.response.body", "body": body})


def parse_responses(data: bytes, methods: list[bytes] | None = None) -> list[tuple[Any, bytes]]:
    """Parse response bytes with an independent h11 client connection."""
    client = h11.Connection(h11.CLIENT)
    results = []
    for method in methods or [b"GET"]:
        client.send(h11.Request(method=method, target="/", headers=[("Host", "a")]))
        client.send(h11.EndOfMessage())
        client.receive_data(data)
        data = b""
        response = None
        body = b""
        while True:
            event = client.next_event()
            if isinstance(event, h11.Response):
                response = event
            elif isinstance(event, h11.Data):
                body += event.data
            elif isinstance(event, h11.EndOfMessage):
                break
            elif event is h11.NEED_DATA:
                raise AssertionError("incomplete response")
        results.append((response, body))
        if client.our_state is h11.DONE and client.their_state is h11.DONE:
            client.start_next_cycle()
    return results


def test_simple_get_response_has_status_line_reason_and_default_headers() -> None:
    conn = make_connection()
    conn.receive_data(b"GET /path?x=1 HTTP/1.1\r\nHost: example\r\n\r\n", now=0.0)
    [stream] = conn.pop_new_streams()
    assert stream.scope["path"] == "/path"
    assert stream.scope["query_string"] == b"x=1"
    assert stream.scope["method"] == "GET"
    assert stream.scope["client"] == ("127.0.0.1", 5000)
    assert read_body(stream) == b""
    respond(stream, b"hello")
    data = conn.data_to_send()
    assert data == (
        b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\ndate: "
        + DATE
        + b"\r\nserver: hypercorn-h11\r\n\r\nhello"
    )
    assert not conn.closed


def test_app_date_and_server_headers_replace_defaults() -> None:
    conn = make_connection()
    conn.receive_data(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", now=0.0)
    [stream] = conn.pop_new_streams()
    respond(stream, headers=[(b"Server", b"mine"), (b"date", b"yesterday")])
    head = conn.data_to_send().split(b"\r\n\r\n")[0].lower()
    assert head.count(b"server:") == 1 and b"server: mine" in head
    assert head.count(b"date:") == 1 and b"date: yesterday" in head


def test_default_headers_can_be_switched_off() -> None:
    conn = make_connection(include_date_header=False, include_server_header=False)
    conn.receive_data(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", now=0.0)
    [stream] = conn.pop_new_streams()
    respond(stream)
    assert conn.data_to_send() == b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok"


def test_streamed_response_is_chunked_with_trailers() -> None:
    conn = make_connection()
    conn.receive_data(b"GET / HTTP/1.1\r\nHost: a\r\nTE: trailers\r\n\r\n", now=0.0)
    [stream] = conn.pop_new_streams()
    stream.app_send({"type": "http.response.start", "status": 200, "trailers": True})
    stream.app_send({"type": "http.response.body", "body": b"abc", "more_body": True})
    stream.app_send({"type": "http.response.body", "body": b"de", "more_body": False})
    stream.app_send({"type": "http.response.trailers", "headers": [(b"x-sum", b"5")]})
    data = conn.data_to_send()
    assert b"transfer-encoding: chunked" in data.lower()
    assert data.endswith(b"3\r\nabc\r\n2\r\nde\r\n0\r\nx-sum: 5\r\n\r\n")
    assert not conn.closed


def test_chunked_request_body_reaches_app_in_pieces() -> None:
    conn = make_connection()
    conn.receive_data(
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n", now=0.0
    )
    [stream] = conn.pop_new_streams()
    assert stream.app_receive_nowait() == {
        "type": "http.request",
        "body": b"abc",
        "more_body": True,
    }
    assert stream.app_receive_nowait() is None
    conn.receive_data(b"2\r\nde\r\n0\r\n\r\n", now=0.0)
    assert read_body(stream) == b"de"


def test_head_response_has_no_body_but_keeps_content_length() -> None:
    conn = make_connection()
    conn.receive_data(b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\n", now=0.0)
    [stream] = conn.pop_new_streams()
    respond(stream, b"", headers=[(b"content-length", b"1234")])
    data = conn.data_to_send()
    assert data.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"content-length: 1234\r\n" in data
    assert data.endswith(b"\r\n\r\n")
    assert not conn.closed


def test_body_for_head_request_is_dropped() -> None:
    conn = make_connection()
    conn.receive_data(b"HEAD / HTTP/1.1\r\nHost: a\r\n\r\n", now=0.0)
    [stream] = conn.pop_new_streams()
    respond(stream, b"this is not sent")
    assert conn.data_to_send().endswith(b"\r\n\r\n")


def test_100_continue_sent_only_when_app_reads_body() -> None:
    conn = make_connection()
    conn.receive_data(
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n", now=0.0
    )
    [stream] = conn.pop_new_streams()
    assert conn.data_to_send() == b""
    assert stream.app_receive_nowait() is None
    assert conn.data_to_send() == b"HTTP/1.1 100 Continue\r\n\r\n"
    conn.receive_data(b"abc", now=0.0)
    assert read_body(stream) == b"abc"


def test_no_100_continue_when_app_answers_without_reading() -> None:
    conn = make_connection()
    conn.receive_data(
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nExpect: 100-continue\r\n\r\n", now=0.0
    )
    [stream] = conn.pop_new_streams()
    respond(stream, b"no", status=401)
    data = conn.data_to_send()
    assert data.startswith(b"HTTP/1.1 401 Unauthorized\r\n")
    assert b"100 Continue" not in data
    assert conn.closed  # the unread body makes the connection unusable


def test_every_scope_key_is_set_and_owned_by_its_request() -> None:
    """Scopes are copied from a template: each request's has every ASGI key set (none left
    as the template's placeholder) and its own headers, state and extensions."""
    conn = make_connection()
    conn.receive_data(b"GET /1?q HTTP/1.1\r\nHost: a\r\n\r\n", now=0.0)
    [first] = conn.pop_new_streams()
    respond(first, b"one")
    conn.receive_data(b"GET /2 HTTP/1.1\r\nHost: b\r\n\r\n", now=0.0)
    [second] = conn.pop_new_streams()
    for stream in (first, second):
        assert list(stream.scope) == [
            "type", "asgi", "http_version", "method", "scheme", "path", "raw_path",
            "query_string", "root_path", "headers", "client", "server", "state", "extensions",
        ]  # fmt: skip
        assert all(value is not None for value in stream.scope.values())
    for key in ("headers", "state", "extensions"):
        assert first.scope[key] is not second.scope[key]  # type: ignore[literal-required]
    assert (first.scope["headers"], second.scope["headers"]) == (
        [(b"host", b"a")],
        [(b"host", b"b")],
    )


def test_pipelined_requests_are_answered_in_order() -> None:
    conn = make_connection()
    conn.receive_data(
        b"GET /1 HTTP/1.1\r\nHost: a\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n", now=0.0
    )
    [first] = conn.pop_new_streams()
    assert first.scope["path"] == "/1"
    assert conn.pop_new_streams() == ()  # h11 holds the second until the first is answered
    respond(first, b"one")
    [second] = conn.pop_new_streams()
    assert second.scope["path"] == "/2"
    respond(second, b"two")
    responses = parse_responses(conn.data_to_send(), [b"GET", b"GET"])
    assert [body for _, body in responses] == [b"one", b"two"]


@settings(max_examples=examples(200), deadline=None)
@given(
    body=st.binary(max_size=300),
    chunked=st.booleans(),
    cuts=st.lists(st.integers(min_value=0, max_value=600), max_size=12),
)
def test_any_split_of_a_request_gives_the_same_request(
    body: bytes, chunked: bool, cuts: list[int]
) -> None:
    if chunked:
        encoded = (
            b"".join(
                b"%x\r\n%s\r\n" % (len(body[i : i + 7]), body[i : i + 7])
                for i in range(0, len(body), 7)
            )
            + b"0\r\n\r\n"
        )
        head = b"POST /p%20q?a=b HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
    else:
        encoded = body
        head = (
            b"POST /p%20q?a=b HTTP/1.1\r\nHost: a\r\nContent-Length: "
            + str(len(body)).encode()
            + b"\r\n\r\n"
        )
    raw = head + encoded
    points = sorted({cut % (len(raw) + 1) for cut in cuts})
    pieces = [raw[a:b] for a, b in zip([0, *points], [*points, len(raw)], strict=True) if b > a]
    conn = make_connection()
    streams: list[HTTPStream] = []
    received = b""
    for piece in pieces:
        conn.receive_data(piece, now=0.0)
        streams += conn.pop_new_streams()
        if streams:
            while (message := streams[0].app_receive_nowait()) is not None:
                received += message["body"]
    [stream] = streams
    assert stream.scope["path"] == "/p q"
    assert stream.scope["raw_path"] == b"/p%20q"
    assert received == body
    assert stream.body_complete


@settings(max_examples=examples(100), deadline=None)
@given(
    paths=st.lists(st.from_regex(r"/[a-z0-9]{0,8}", fullmatch=True), min_size=1, max_size=6),
    cuts=st.lists(st.integers(min_value=0, max_value=400), max_size=10),
)
def test_pipelining_with_any_split_answers_every_request_in_order(
    paths: list[str], cuts: list[int]
) -> None:
    raw = b"".join(b"GET %s HTTP/1.1\r\nHost: a\r\n\r\n" % p.encode() for p in paths)
    points = sorted({cut % (len(raw) + 1) for cut in cuts})
    pieces = [raw[a:b] for a, b in zip([0, *points], [*points, len(raw)], strict=True) if b > a]
    conn = make_connection()
    seen = []
    out = b""

    def answer_all() -> None:
        nonlocal out
        while streams := conn.pop_new_streams():
            for stream in streams:
                seen.append(stream.scope["path"])
                respond(stream, stream.scope["path"].encode())
        out += conn.data_to_send()

    for piece in pieces:
        conn.receive_data(piece, now=0.0)
        answer_all()
    assert seen == paths
    responses = parse_responses(out, [b"GET"] * len(paths))
    assert [body.decode() for _, body in responses] == paths


@pytest.mark.parametrize(
    ("raw", "status"),
    [
        (b"GARBAGE\r\n\r\n", 400),
        (
            b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n",
            400,
        ),
        (b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nHost: a\r\nContent-Length: x\r\n\r\n", 400),
        (b"GET / HTTP/1.1\r\nBad Header: a\r\n\r\n", 400),
        (b"CONNECT example.com:443 HTTP/1.1\r\nHost: example.com:443\r\n\r\n", 405),
        (b"GET relative HTTP/1.1\r\nHost: a\r\n\r\n", 400),
    ],
)
def test_malformed_requests_get_an_error_and_close(raw: bytes, status: int) -> None:
    conn = make_connection()
    conn.receive_data(raw, now=0.0)
    assert conn.pop_new_streams() == ()
    data = conn.data_to_send()
    assert data.startswith(b"HTTP/1.1 %d " % status)
    assert b"connection: close" in data
    assert conn.closed


@pytest.mark.parametrize("complete", [False, True])
def test_oversized_head_gets_431_whether_or_not_it_arrived_whole(complete: bool) -> None:
    conn = make_connection(h11_max_incomplete_size=1024)
    raw = b"GET / HTTP/1.1\r\nHost: a\r\nX-Big: " + b"a" * 2000
    conn.receive_data(raw + (b"\r\n\r\n" if complete else b""), now=0.0)
    assert conn.pop_new_streams() == ()
    assert conn.data_to_send().startswith(b"HTTP/1.1 431 Request Header Fields Too Large\r\n")
    assert conn.closed


def test_absolute_form_and_asterisk_targets() -> None:
    conn = make_connection()
    conn.receive_data(
        b"GET http://example.com/a/b?c HTTP/1.1\r\nHost: example.com\r\n\r\n", now=0.0
    )
    [stream] = conn.pop_new_streams()
    assert (stream.scope["path"], stream.scope["query_string"]) == ("/a/b", b"c")
    conn2 = make_connection()
    conn2.receive_data(b"OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", now=0.0)
    [stream2] = conn2.pop_new_streams()
    assert stream2.scope["path"] == "*"


def test_connection_close_after_keep_alive_max_requests() -> None:
    conn = make_connection(keep_alive_max_requests=2)
    for index in range(2):
        conn.receive_data(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", now=0.0)
        [stream] = conn.pop_new_streams()
        respond(stream)
        data = conn.data_to_send()
        assert (b"connection: close" in data) == (index == 1)
    assert conn.closed


def test_keep_alive_timeout_closes_an_idle_connection() -> None:
    conn = make_connection(keep_alive_timeout=5.0)
    conn.receive_data(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", now=10.0)
    [stream] = conn.pop_new_streams()
    assert conn.next_deadline(10.5) is None or conn.next_deadline(10.5) > 10.5
    respond(stream)
    assert conn.next_deadline(20.0) == 25.0  # the idle period starts when the response ends
    conn.handle_timer(24.9)
    assert not conn.closed
    conn.handle_timer(25.0)
    assert conn.closed
    assert conn.data_to_send().startswith(b"HTTP/1.1 200")  # nothing else was written


def test_incomplete_head_gets_408_after_request_header_timeout() -> None:
    conn = make_connection(request_header_timeout=10.0)
    conn.receive_data(b"GET / HTTP/1.1\r\nHo", now=1.0)
    assert conn.next_deadline(1.0) == 11.0
    conn.receive_data(b"st: a\r\n", now=9.0)  # trickling bytes do not extend the deadline
    assert conn.next_deadline(9.0) == 11.0
    conn.handle_timer(11.0)
    assert conn.data_to_send().startswith(b"HTTP/1.1 408 Request Timeout\r\n")
    assert conn.closed


def test_stalled_body_aborts_after_request_body_timeout() -> None:
    conn = make_connection(request_body_timeout=3.0)
    conn.receive_data(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nab", now=0.0)
    [stream] = conn.pop_new_streams()
    conn.receive_data(b"cd", now=2.0)
    assert conn.next_deadline(2.0) == 5.0
    conn.handle_timer(5.0)
    assert stream.disconnected
    assert conn.data_to_send().startswith(b"HTTP/1.1 408")
    assert conn.closed


def test_app_error_before_response_gives_500_and_keeps_connection() -> None:
    conn = make_connection()
    conn.receive_data(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", now=0.0)
    [stream] = conn.pop_new_streams()
    stream.app_failed()
    assert conn.data_to_send().startswith(b"HTTP/1.1 500 Internal Server Error\r\n")
    assert not conn.closed


def test_app_error_mid_body_closes_connection() -> None:
    conn = make_connection()
    conn.receive_data(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", now=0.0)
    [stream] = conn.pop_new_streams()
    stream.app_send({"type": "http.response.start", "status": 200})
    stream.app_send({"type": "http.response.body", "body": b"part", "more_body": True})
    stream.app_failed()
    assert conn.closed
    assert not conn.data_to_send().endswith(b"0\r\n\r\n")  # never a clean end of message


def test_app_returning_without_response_gives_500() -> None:
    conn = make_connection()
    conn.receive_data(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", now=0.0)
    [stream] = conn.pop_new_streams()
    assert stream.app_finished() is False
    assert conn.data_to_send().startswith(b"HTTP/1.1 500 ")


def test_invalid_message_order_is_an_error() -> None:
    from hypercorn.utils import UnexpectedMessageError

    conn = make_connection()
    conn.receive_data(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", now=0.0)
    [stream] = conn.pop_new_streams()
    with pytest.raises(UnexpectedMessageError):
        stream.app_send({"type": "http.response.body", "body": b"x"})


def test_disconnect_reaches_app_and_send_raises_oserror() -> None:
    conn = make_connection()
    conn.receive_data(b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nab", now=0.0)
    [stream] = conn.pop_new_streams()
    woken = []
    stream.on_wake = lambda: woken.append(True)
    conn.connection_lost()
    assert woken
    assert stream.app_receive_nowait() == {"type": "http.disconnect"}
    with pytest.raises(OSError, match="disconnected"):
        stream.app_send({"type": "http.response.start", "status": 200})


def test_eof_while_app_runs_is_a_disconnect() -> None:
    conn = make_connection()
    conn.receive_data(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", now=0.0)
    [stream] = conn.pop_new_streams()
    assert read_body(stream) == b""
    conn.receive_data(b"", now=0.0)
    assert stream.disconnected
    assert stream.app_receive_nowait() == {"type": "http.disconnect"}
    assert conn.closed


def test_pipelined_bytes_held_while_answering_are_bounded() -> None:
    conn = make_connection(h11_max_incomplete_size=1024)
    conn.receive_data(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", now=0.0)
    [stream] = conn.pop_new_streams()
    conn.receive_data(b"GET /next HTTP/1.1\r\nHost: a\r\n\r\n" * 10, now=0.0)
    assert conn.wants_read
    conn.receive_data(b"GET /next HTTP/1.1\r\nHost: a\r\n\r\n" * 40, now=0.0)
    assert not conn.wants_read
    respond(stream)
    assert conn.pop_new_streams()[0].scope["path"] == "/next"


def test_early_hints_sent_as_103_to_http11_clients_only() -> None:
    for version, expect in ((b"1.1", True), (b"1.0", False)):
        conn = make_connection()
        conn.receive_data(b"GET / HTTP/%s\r\nHost: a\r\n\r\n" % version, now=0.0)
        [stream] = conn.pop_new_streams()
        stream.app_send({"type": "http.response.early_hint", "links": [b"</s.css>; rel=preload"]})
        respond(stream)
        data = conn.data_to_send()
        assert data.startswith(b"HTTP/1.1 103 Early Hints\r\nlink: </s.css>; rel=preload") == expect


@pytest.mark.parametrize("parser", ["h11", "httptools"])
def test_an_early_hint_cannot_inject_header_lines(parser: str) -> None:
    """Links are header values like any other: CR or LF in one is refused, not written."""
    config = Config(http1_parser=parser)
    info = ConnectionInfo(client=("127.0.0.1", 5000), server=("127.0.0.1", 8000))
    conn = http11_adapter(config)(config, info, 0.0)
    conn.receive_data(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", now=0.0)
    [stream] = conn.pop_new_streams()
    link = b"</s.css>; rel=preload\r\nx-injected: 1"
    with pytest.raises(ValueError, match="Invalid header value"):
        stream.app_send({"type": "http.response.early_hint", "links": [link]})
    assert b"x-injected" not in conn.data_to_send()


def test_root_path_is_prefixed_to_path() -> None:
    conn = make_connection(root_path="/api")
    conn.receive_data(b"GET /users HTTP/1.1\r\nHost: a\r\n\r\n", now=0.0)
    [stream] = conn.pop_new_streams()
    assert stream.scope["root_path"] == "/api"
    assert stream.scope["path"] == "/api/users"


def test_raw_header_case_passed_when_configured() -> None:
    conn = make_connection(h11_pass_raw_headers=True)
    conn.receive_data(b"GET / HTTP/1.1\r\nHost: a\r\nX-Mixed-Case: v\r\n\r\n", now=0.0)
    [stream] = conn.pop_new_streams()
    assert (b"X-Mixed-Case", b"v") in list(stream.scope["headers"])


def test_backpressure_stops_reading_when_app_lags() -> None:
    conn = make_connection(max_app_queue_size=2)
    conn.receive_data(
        b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n1\r\na\r\n", now=0.0
    )
    [stream] = conn.pop_new_streams()
    assert conn.wants_read
    conn.receive_data(b"1\r\nb\r\n", now=0.0)
    assert not conn.wants_read
    stream.app_receive_nowait()
    assert conn.wants_read


def test_shutdown_closes_idle_connection_and_finishes_busy_one() -> None:
    idle = make_connection()
    idle.receive_data(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", now=0.0)
    respond(idle.pop_new_streams()[0])
    idle.begin_shutdown()  # idle between keep-alive requests
    assert idle.closed
    busy = make_connection()
    busy.receive_data(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", now=0.0)
    [stream] = busy.pop_new_streams()
    busy.begin_shutdown()
    assert not busy.closed
    respond(stream)
    assert b"connection: close" in busy.data_to_send()
    assert busy.closed


def test_rejected_request_keeps_the_connection_unless_a_body_follows() -> None:
    conn = make_connection(server_names=["example.com"])
    conn.receive_data(
        b"GET / HTTP/1.1\r\nHost: other.test\r\n\r\nGET / HTTP/1.1\r\nHost: example.com\r\n\r\n",
        now=0.0,
    )
    [stream] = conn.pop_new_streams()  # the first was answered 421 by the server itself
    assert stream.scope["headers"][0] == (b"host", b"example.com")
    assert conn.data_to_send().startswith(b"HTTP/1.1 421 Misdirected Request\r\n")
    assert not conn.closed
    too_big = make_connection(max_request_body_size=10)
    too_big.receive_data(
        b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 100\r\n\r\n" + b"x" * 50, now=0.0
    )
    assert too_big.data_to_send().startswith(b"HTTP/1.1 413 ")
    assert too_big.closed  # the rest of an unwanted body is not read


def test_shutdown_still_answers_the_first_request_of_a_new_connection() -> None:
    fresh = make_connection()
    fresh.begin_shutdown()  # accepted just before the drain began; no request yet
    assert not fresh.closed
    fresh.receive_data(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", now=0.0)
    [stream] = fresh.pop_new_streams()
    respond(stream)
    assert b"connection: close" in fresh.data_to_send()
    assert fresh.closed
    used = make_connection()
    used.receive_data(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", now=0.0)
    respond(used.pop_new_streams()[0])
    used.begin_shutdown()  # an idle keep-alive connection: closed at once
    assert used.closed


def test_server_answers_to_head_requests_have_no_body() -> None:
    conn = make_connection(server_names=["example.com"])
    conn.receive_data(
        b"HEAD / HTTP/1.1\r\nHost: other.test\r\n\r\nHEAD / HTTP/1.1\r\nHost: example.com\r\n\r\n",
        now=0.0,
    )
    data = conn.data_to_send()
    assert data.startswith(b"HTTP/1.1 421 Misdirected Request\r\n")
    assert data.endswith(b"\r\n\r\n")  # headers only
    assert not conn.closed
    assert conn.pop_new_streams()[0].method == "HEAD"

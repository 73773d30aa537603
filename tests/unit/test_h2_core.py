"""The HTTP/2 adapter with frames in and frames out, against an h2 client connection."""

from __future__ import annotations

from typing import Any

import h2.config
import h2.connection
import h2.errors
import h2.events
import h2.settings
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hypercorn.config import Config
from hypercorn.protocol import ConnectionInfo
from hypercorn.protocol.connection import HTTPConnection
from hypercorn.protocol.h2 import PREFACE, RESET_BUDGET, FrameCounter
from hypercorn.protocol.http_stream import HTTPStream
from hypercorn.protocol.ws_stream import FRAMES_PER_TURN


class Pair:
    """A server connection and an h2 client, with the bytes moved between them."""

    def __init__(self, client_settings: dict[int, int] | None = None, **settings: Any) -> None:
        self.server = HTTPConnection(
            Config(**settings), ConnectionInfo(("127.0.0.1", 5000), ("127.0.0.1", 80)), 0.0
        )
        self.client = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=True, header_encoding=None)
        )
        self.client.initiate_connection()
        if client_settings:
            self.client.update_settings(client_settings)
        self.events: list[h2.events.Event] = []
        self.exchange()

    def exchange(self, now: float = 0.0) -> list[h2.events.Event]:
        """Move bytes both ways until both sides are quiet; return the client's events."""
        new: list[h2.events.Event] = []
        for _ in range(20):
            to_server = self.client.data_to_send()
            if to_server:
                self.server.receive_data(to_server, now)
            to_client = self.server.data_to_send()
            if to_client:
                new += self.client.receive_data(to_client)
            if not to_server and not to_client:
                break
        self.events += new
        return new

    def request(
        self,
        path: bytes = b"/",
        method: bytes = b"GET",
        body: bytes = b"",
        headers: list[tuple[bytes, bytes]] | None = None,
    ) -> int:
        stream_id = self.client.get_next_available_stream_id()
        self.client.send_headers(
            stream_id,
            [
                (b":method", method),
                (b":path", path),
                (b":scheme", b"https"),
                (b":authority", b"example.com"),
                *(headers or []),
            ],
            end_stream=not body,
        )
        if body:
            self.client.send_data(stream_id, body, end_stream=True)
        self.exchange()
        return stream_id

    def streams(self) -> list[HTTPStream]:
        return list(self.server.pop_new_streams())


def respond(stream: HTTPStream, body: bytes = b"ok", status: int = 200, **start: Any) -> None:
    stream.app_send({"type": "http.response.start", "status": status, "headers": [], **start})
    stream.app_send({"type": "http.response.body", "body": body})


def of_type(events: list[h2.events.Event], kind: type) -> list[Any]:
    return [event for event in events if isinstance(event, kind)]


def test_prior_knowledge_request_and_response() -> None:
    pair = Pair()
    assert pair.server.http_version == "2"
    stream_id = pair.request(b"/path?q=1")
    [stream] = pair.streams()
    assert stream.scope["http_version"] == "2"
    assert stream.scope["path"] == "/path" and stream.scope["query_string"] == b"q=1"
    assert (b"host", b"example.com") in list(stream.scope["headers"])
    assert stream.app_receive_nowait() == {"type": "http.request", "body": b"", "more_body": False}
    respond(stream, b"hello", headers=[(b"connection", b"keep-alive")])
    events = pair.exchange()
    [response] = of_type(events, h2.events.ResponseReceived)
    headers = dict(response.headers)
    assert headers[b":status"] == b"200"
    assert headers[b"content-length"] == b"5"
    assert headers[b"server"] == b"hypercorn-h2"
    assert b"connection" not in headers  # connection-specific headers never go out on h2
    assert b"".join(e.data for e in of_type(events, h2.events.DataReceived)) == b"hello"
    assert of_type(events, h2.events.StreamEnded)[0].stream_id == stream_id


def test_preface_split_across_reads_is_still_http2() -> None:
    config = Config()
    server = HTTPConnection(config, ConnectionInfo(None, None), 0.0)
    server.receive_data(PREFACE[:5], 0.0)
    assert server.http_version == "1.1" and server.data_to_send() == b""
    server.receive_data(PREFACE[5:] + b"\x00\x00\x00\x04\x00\x00\x00\x00\x00", 0.0)
    assert server.http_version == "2"
    assert server.data_to_send()  # the server's SETTINGS


def test_h2c_upgrade_from_http11() -> None:
    client = h2.connection.H2Connection(
        h2.config.H2Configuration(client_side=True, header_encoding=None)
    )
    settings = client.initiate_upgrade_connection()
    server = HTTPConnection(Config(), ConnectionInfo(None, None), 0.0)
    server.receive_data(
        b"GET /up HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, HTTP2-Settings\r\n"
        b"Upgrade: h2c\r\nHTTP2-Settings: " + settings + b"\r\n\r\n",
        0.0,
    )
    out = server.data_to_send()
    assert out.startswith(b"HTTP/1.1 101 Switching Protocols\r\n")
    [stream] = server.pop_new_streams()
    assert stream.stream_id == 1 and stream.scope["http_version"] == "2"
    assert all(name != b"upgrade" for name, _ in stream.scope["headers"])
    server.receive_data(client.data_to_send(), 0.0)
    respond(stream, b"upgraded")
    events = client.receive_data(out.split(b"\r\n\r\n", 1)[1] + server.data_to_send())
    assert b"".join(e.data for e in of_type(events, h2.events.DataReceived)) == b"upgraded"


def test_h2c_upgrade_ignored_for_requests_with_a_body() -> None:
    server = HTTPConnection(Config(), ConnectionInfo(None, None), 0.0)
    server.receive_data(
        b"POST / HTTP/1.1\r\nHost: a\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__"
        b"\r\nConnection: Upgrade, HTTP2-Settings\r\nContent-Length: 1\r\n\r\nx",
        0.0,
    )
    assert server.http_version == "1.1"
    [stream] = server.pop_new_streams()
    assert stream.scope["http_version"] == "1.1"


def test_outbound_flow_control_blocks_and_resumes_send() -> None:
    pair = Pair(client_settings={h2.settings.SettingCodes.INITIAL_WINDOW_SIZE: 10})
    stream_id = pair.request()
    [stream] = pair.streams()
    woken = []
    stream.on_wake = lambda: woken.append(True)
    stream.app_send({"type": "http.response.start", "status": 200})
    stream.app_send({"type": "http.response.body", "body": b"x" * 25, "more_body": True})
    events = pair.exchange()
    assert sum(len(e.data) for e in of_type(events, h2.events.DataReceived)) == 10
    assert stream.send_blocked
    pair.client.increment_flow_control_window(100, stream_id)
    events = pair.exchange()
    assert sum(len(e.data) for e in of_type(events, h2.events.DataReceived)) == 15
    assert not stream.send_blocked and woken


def test_inbound_window_reopens_only_as_the_app_reads() -> None:
    pair = Pair()
    stream_id = pair.client.get_next_available_stream_id()
    pair.client.send_headers(
        stream_id,
        [(b":method", b"POST"), (b":path", b"/"), (b":scheme", b"http"), (b":authority", b"a")],
    )
    for _ in range(5):
        pair.client.send_data(stream_id, b"y" * 10000)
    pair.exchange()
    [stream] = pair.streams()
    assert pair.client.local_flow_control_window(stream_id) == 65535 - 50000
    pair.exchange()
    assert pair.client.local_flow_control_window(stream_id) == 65535 - 50000  # nothing read yet
    for _ in range(5):
        assert stream.app_receive_nowait()["body"] == b"y" * 10000
    pair.exchange()
    # reopened as the app read (h2 batches WINDOW_UPDATEs, so the last 10 kB may wait)
    assert pair.client.local_flow_control_window(stream_id) >= 65535 - 10000


def test_client_reset_is_a_disconnect_for_that_stream_only() -> None:
    pair = Pair()
    first = pair.request(b"/1")
    pair.request(b"/2")
    one, two = pair.streams()
    pair.client.reset_stream(first, h2.errors.ErrorCodes.CANCEL)
    pair.exchange()
    # at once: the reset overtakes anything still queued for the app
    assert one.app_receive_nowait() == {"type": "http.disconnect"}
    respond(two, b"still here")
    events = pair.exchange()
    assert b"".join(e.data for e in of_type(events, h2.events.DataReceived)) == b"still here"


def test_app_error_resets_only_its_stream() -> None:
    pair = Pair()
    first = pair.request(b"/1")
    pair.request(b"/2")
    one, two = pair.streams()
    one.app_send({"type": "http.response.start", "status": 200})
    one.app_send({"type": "http.response.body", "body": b"part", "more_body": True})
    one.app_failed()
    respond(two)
    events = pair.exchange()
    [reset] = of_type(events, h2.events.StreamReset)
    assert reset.stream_id == first and reset.error_code == h2.errors.ErrorCodes.INTERNAL_ERROR
    assert not pair.server.closed


def test_trailers_and_early_hints() -> None:
    pair = Pair()
    pair.request()
    [stream] = pair.streams()
    stream.app_send({"type": "http.response.early_hint", "links": [b"</a.css>; rel=preload"]})
    stream.app_send({"type": "http.response.start", "status": 200, "trailers": True})
    stream.app_send({"type": "http.response.body", "body": b"data"})
    stream.app_send({"type": "http.response.trailers", "headers": [(b"grpc-status", b"0")]})
    events = pair.exchange()
    [hint] = of_type(events, h2.events.InformationalResponseReceived)
    assert dict(hint.headers)[b":status"] == b"103"
    [trailers] = of_type(events, h2.events.TrailersReceived)
    assert trailers.headers == [(b"grpc-status", b"0")]


FORBIDDEN_ON_H2 = [
    (b"connection", b"close"),
    (b"keep-alive", b"timeout=5"),
    (b"proxy-connection", b"x"),
    (b"te", b"gzip"),
    (b"transfer-encoding", b"chunked"),
    (b"upgrade", b"x"),
]


def test_every_block_is_well_formed_whatever_the_application_sends() -> None:
    """The server leaves h2's outbound header checks off (ours run when the application
    sends): the client's h2, whose inbound checks are on, accepts every block (interim,
    response, trailers, push promise) although the application put connection-specific
    fields, upper case names and padded values in each, and gets them without."""
    pair = Pair()
    pair.request()
    [stream] = pair.streams()
    awkward = [*FORBIDDEN_ON_H2, (b"X-Padded", b"  v \t")]
    stream.app_send({"type": "http.response.push", "path": "/p", "headers": awkward})
    stream.app_send(
        {"type": "http.response.start", "status": 200, "headers": awkward, "trailers": True}
    )
    stream.app_send({"type": "http.response.body", "body": b"data"})
    stream.app_send({"type": "http.response.trailers", "headers": awkward})
    events = pair.exchange()
    [promise] = of_type(events, h2.events.PushedStreamReceived)
    [response] = of_type(events, h2.events.ResponseReceived)
    [trailers] = of_type(events, h2.events.TrailersReceived)
    for block in (promise.headers, response.headers, trailers.headers):
        names = {name for name, _ in block}
        assert not names & {name for name, _ in FORBIDDEN_ON_H2}
        assert (b"x-padded", b"v") in block
    assert not of_type(events, h2.events.StreamReset) and not pair.server.closed


@pytest.mark.parametrize("path", ["", "style.css", "/a b", "/a\r\nb"])
def test_a_push_to_an_invalid_path_is_refused(path: str) -> None:
    pair = Pair()
    pair.request()
    [stream] = pair.streams()
    with pytest.raises(ValueError, match="Invalid path"):
        stream.app_send({"type": "http.response.push", "path": path, "headers": []})


def test_server_push_when_client_allows_it() -> None:
    pair = Pair()
    pair.request()
    [stream] = pair.streams()
    assert "http.response.push" in stream.scope["extensions"]
    stream.app_send({"type": "http.response.push", "path": "/style.css", "headers": []})
    respond(stream, b"page")
    events = pair.exchange()
    [promise] = of_type(events, h2.events.PushedStreamReceived)
    assert dict(promise.headers)[b":path"] == b"/style.css"
    [pushed] = pair.streams()
    assert pushed.scope["path"] == "/style.css" and pushed.stream_id == promise.pushed_stream_id
    respond(pushed, b"css")
    events = pair.exchange()
    data = b"".join(
        e.data
        for e in of_type(events, h2.events.DataReceived)
        if e.stream_id == promise.pushed_stream_id
    )
    assert data == b"css"


def test_no_push_extension_when_client_disables_push() -> None:
    pair = Pair(client_settings={h2.settings.SettingCodes.ENABLE_PUSH: 0})
    pair.request()
    [stream] = pair.streams()
    assert "http.response.push" not in stream.scope["extensions"]


@pytest.mark.parametrize(
    ("configured", "frame", "accepted"), [(2**14, 20_000, False), (2**20, 60_000, True)]
)
def test_max_inbound_frame_size_really_applies(configured: int, frame: int, accepted: bool) -> None:
    pair = Pair(h2_max_inbound_frame_size=configured)
    stream_id = pair.client.get_next_available_stream_id()
    pair.client.send_headers(
        stream_id,
        [(b":method", b"POST"), (b":path", b"/"), (b":scheme", b"http"), (b":authority", b"a")],
    )
    pair.exchange()
    # A DATA frame written by hand, so the client library's own limit does not interfere.
    header = frame.to_bytes(3, "big") + b"\x00\x01" + stream_id.to_bytes(4, "big")
    pair.server.receive_data(header + b"z" * frame, 0.0)
    if accepted:
        [stream] = pair.streams()
        assert len(stream.app_receive_nowait()["body"]) == frame
        assert not pair.server.closed
    else:
        assert pair.server.closed
        [goaway] = of_type(
            pair.client.receive_data(pair.server.data_to_send()), h2.events.ConnectionTerminated
        )
        assert goaway.error_code == h2.errors.ErrorCodes.FRAME_SIZE_ERROR


def test_goaway_after_keep_alive_max_requests_once_streams_finish() -> None:
    pair = Pair(keep_alive_max_requests=2)
    pair.request(b"/1")
    pair.request(b"/2")
    one, two = pair.streams()
    respond(one)
    pair.exchange()
    assert not of_type(pair.events, h2.events.ConnectionTerminated)  # a stream is in flight
    respond(two)
    events = pair.exchange()
    assert b"ok" in b"".join(e.data for e in of_type(events, h2.events.DataReceived))
    [goaway] = of_type(events, h2.events.ConnectionTerminated)
    assert goaway.error_code == h2.errors.ErrorCodes.NO_ERROR and goaway.last_stream_id == 3
    assert pair.server.closed


def test_rapid_reset_flood_gets_enhance_your_calm_and_cancels_apps() -> None:
    pair = Pair()
    cancelled: list[HTTPStream] = []
    for _ in range(RESET_BUDGET + 5):
        stream_id = pair.request()
        pair.client.reset_stream(stream_id, h2.errors.ErrorCodes.CANCEL)
        pair.exchange()
        cancelled += pair.server.pop_streams_to_cancel()
        if pair.server.closed:
            break
    assert pair.server.closed
    [goaway] = of_type(pair.events, h2.events.ConnectionTerminated)
    assert goaway.error_code == h2.errors.ErrorCodes.ENHANCE_YOUR_CALM
    assert len(cancelled) > RESET_BUDGET  # the reset streams' apps are cancelled, not left


def test_idle_connection_closed_with_goaway_after_keep_alive_timeout() -> None:
    pair = Pair(keep_alive_timeout=5)
    assert pair.server.next_deadline(1.0) == 0.0 + 5  # idle since it opened
    pair.server.handle_timer(6.0)
    assert pair.server.closed
    assert of_type(
        pair.client.receive_data(pair.server.data_to_send()), h2.events.ConnectionTerminated
    )


def test_keep_alive_timeout_counts_from_the_last_stream() -> None:
    """A request answered within the read that brought it (the driver never sees a stream
    open) still ends the idle period: the connection stays open for keep_alive_timeout after
    it, not after the first time the connection was idle."""
    pair = Pair(keep_alive_timeout=5)
    assert pair.server.next_deadline(1.0) == 5.0
    for now in (4.0, 8.0):
        pair.client.send_headers(
            pair.client.get_next_available_stream_id(),
            [(b":method", b"GET"), (b":path", b"/"), (b":scheme", b"http"), (b":authority", b"a")],
            end_stream=True,
        )
        pair.server.receive_data(pair.client.data_to_send(), now)
        [stream] = pair.streams()
        respond(stream)
        stream.app_finished()
        pair.exchange(now)
        assert pair.server.next_deadline(now) == now + 5
    pair.server.handle_timer(12.0)
    assert not pair.server.closed
    pair.server.handle_timer(13.0)
    assert pair.server.closed


def test_finished_streams_are_forgotten() -> None:
    pair = Pair()
    for _ in range(50):
        pair.request()
        [stream] = pair.streams()
        stream.app_receive_nowait()
        respond(stream)
        pair.exchange()
    assert pair.server.inner.idle  # nothing kept per finished stream


def test_header_list_larger_than_configured_is_refused() -> None:
    pair = Pair(h2_max_header_list_size=2048)
    stream_id = pair.client.get_next_available_stream_id()
    pair.client.send_headers(
        stream_id,
        [
            (b":method", b"GET"),
            (b":path", b"/"),
            (b":scheme", b"http"),
            (b":authority", b"a"),
            (b"x-big", b"v" * 4000),
        ],
        end_stream=True,
    )
    pair.exchange()
    assert pair.streams() == []  # never reaches an application
    assert of_type(pair.events, (h2.events.ConnectionTerminated, h2.events.StreamReset))


def test_a_read_of_many_frames_is_processed_a_turn_at_a_time() -> None:
    """Thousands of PINGs in one read (each a few microseconds of h2's time) are answered
    FRAMES_PER_TURN at a time: the rest waits, unread input held back, for process_backlog;
    a request behind them is served in order once they are."""
    pair = Pair()
    pings = 10 * FRAMES_PER_TURN + 7
    for number in range(pings):
        pair.client.ping(number.to_bytes(8, "big"))
    stream_id = pair.client.get_next_available_stream_id()
    pair.client.send_headers(
        stream_id,
        [(b":method", b"GET"), (b":path", b"/"), (b":scheme", b"http"), (b":authority", b"a")],
        end_stream=True,
    )
    pair.server.receive_data(pair.client.data_to_send(), 1.0)
    acks = of_type(pair.client.receive_data(pair.server.data_to_send()), h2.events.PingAckReceived)
    assert len(acks) == FRAMES_PER_TURN
    assert pair.server.backlogged and not pair.server.wants_read
    turns = 1
    while pair.server.backlogged:
        assert pair.streams() == []  # the request is behind the pings
        pair.server.process_backlog(1.0)
        events = pair.client.receive_data(pair.server.data_to_send())
        acks += of_type(events, h2.events.PingAckReceived)
        turns += 1
    assert [int.from_bytes(ack.ping_data, "big") for ack in acks] == list(range(pings))
    assert turns == pings // FRAMES_PER_TURN + 1
    assert pair.server.wants_read
    [stream] = pair.streams()
    assert stream.stream_id == stream_id


def test_a_backlog_is_dropped_with_the_connection() -> None:
    pair = Pair()
    for number in range(2 * FRAMES_PER_TURN):
        pair.client.ping(number.to_bytes(8, "big"))
    pair.server.receive_data(pair.client.data_to_send(), 1.0)
    assert pair.server.backlogged
    pair.server.connection_lost()
    assert not pair.server.backlogged
    pair.server.process_backlog(1.0)  # nothing to do, and no error
    assert pair.server.closed


@settings(max_examples=300, deadline=None)
@given(
    lengths=st.lists(st.integers(0, 40), max_size=120),
    cuts=st.lists(st.integers(1, 60), min_size=1, max_size=40),
    budget=st.integers(1, 8),
)
def test_frame_counter_splits_at_frame_boundaries(
    lengths: list[int], cuts: list[int], budget: int
) -> None:
    """Frames of any length, read in pieces cut anywhere (in the preface, in a frame
    header), are handed on in order and whole, at most ``budget`` of them a turn; a turn
    ends early only where the next frame begins, after exactly ``budget`` frames."""
    stream = bytearray(PREFACE)
    starts = []
    for length in lengths:
        starts.append(len(stream))
        stream += length.to_bytes(3, "big") + bytes(6) + b"p" * length
    reads = []
    position = 0
    for cut in cuts * (len(stream) // max(sum(cuts), 1) + 1):
        if position >= len(stream):
            break
        reads.append(bytes(stream[position : position + cut]))
        position += cut
    if position < len(stream):
        reads.append(bytes(stream[position:]))
    counter = FrameCounter()
    handed = bytearray()
    backlog = b""
    for read in reads:
        data = backlog + read
        while True:
            end = counter.turn_end(data, budget)
            begin = len(handed)
            handed += data[:end]
            # frames whose header completes in this turn
            frames = [s for s in starts if begin < s + 9 <= len(handed)]
            assert len(frames) <= budget
            if end == len(data):
                backlog = b""
                break
            assert len(handed) in starts and len(frames) == budget
            data = data[end:]
    assert handed == stream

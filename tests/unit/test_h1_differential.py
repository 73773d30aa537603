"""The httptools fast path against the h11 path: the same bytes in (split anywhere, well-formed
or not) must give the same requests to the application and the same responses to the client.

Each adapter is driven by the same scripted application: it reads each request's body to the
end and answers with a response describing what it saw, streamed for some requests and with a
Content-Length for others. Responses are compared by meaning (status, headers without Date,
body, and whether the connection closed), not byte for byte: the framing headers may come in
another order.
"""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from hypercorn.config import Config
from hypercorn.protocol import ConnectionInfo
from hypercorn.protocol.h11 import H11Connection
from tests.conftest import examples

httptools = pytest.importorskip("httptools")
from hypercorn.protocol.h1common import KNOWN_METHODS  # noqa: E402
from hypercorn.protocol.h1fast import FastH11Connection  # noqa: E402

ADAPTERS = (H11Connection, FastH11Connection)


def make_config() -> Config:
    config = Config()
    config.include_date_header = False
    return config


CONFIG = make_config()


def drive(adapter: type, pieces: list[bytes]) -> tuple[list[Any], bytes, bool, bool]:
    """Feed ``pieces``; return what the application saw, the bytes sent, ``closed``, and
    ``client_done`` before the end of input."""
    conn = adapter(CONFIG, ConnectionInfo(("127.0.0.1", 1), ("127.0.0.1", 80)), 0.0)
    seen: list[Any] = []
    out = bytearray()
    active: list[Any] = []
    bodies: dict[int, bytearray] = {}

    def serve() -> None:
        # Until nothing moves: answering a request hands over the next pipelined one.
        progress = True
        while progress:
            new = conn.pop_new_streams()
            active.extend(new)
            progress = bool(new)
            for stream in list(active):
                while (message := stream.app_receive_nowait()) is not None:
                    if message["type"] != "http.request":
                        seen.append(("disconnect", stream.scope["path"]))
                        active.remove(stream)
                        progress = True
                        break
                    bodies.setdefault(id(stream), bytearray()).extend(message["body"])
                    if not message["more_body"]:
                        scope = stream.scope
                        body = bytes(bodies.pop(id(stream), b""))
                        seen.append(
                            (scope["method"], scope["raw_path"], scope["query_string"],
                             scope["http_version"], sorted(scope["headers"]), body)
                        )  # fmt: skip
                        active.remove(stream)
                        answer(stream, body)
                        progress = True
                        break
                out.extend(conn.data_to_send())

    for piece in pieces:
        if conn.closed:
            break
        conn.receive_data(piece, 0.0)
        out.extend(conn.data_to_send())
        serve()
    client_done = conn.client_done
    if not conn.closed:
        conn.receive_data(b"", 0.0)
        serve()
    out.extend(conn.data_to_send())
    return seen, bytes(out), conn.closed, client_done


def answer(stream: Any, body: bytes) -> None:
    info = b"%d:%s" % (len(body), stream.scope["method"].encode())
    if len(body) % 2:  # streamed: chunked for HTTP/1.1, close-delimited for HTTP/1.0
        stream.app_send({"type": "http.response.start", "status": 200, "headers": [(b"x", info)]})
        stream.app_send({"type": "http.response.body", "body": info, "more_body": True})
        stream.app_send({"type": "http.response.body", "body": body[:5]})
    else:
        headers = [(b"x", info), (b"content-length", b"%d" % len(info))]
        stream.app_send({"type": "http.response.start", "status": 201, "headers": headers})
        stream.app_send({"type": "http.response.body", "body": info})


def parse_responses(data: bytes, methods: list[str]) -> list[Any]:
    """Status, headers (sorted, without framing), and body of each response in ``data``."""
    responses = []
    position = 0
    index = 0
    while position < len(data):
        end = data.find(b"\r\n\r\n", position)
        assert end != -1, data[position:]
        lines = data[position:end].split(b"\r\n")
        status = int(lines[0].split(b" ")[1])
        headers = [(n.lower(), v) for n, v in (line.split(b": ", 1) for line in lines[1:])]
        position = end + 4
        fields = {name.lower(): value for name, value in headers}
        method = methods[index] if index < len(methods) else "GET"
        body = b""
        if status < 200:
            responses.append((status, sorted(headers), b""))
            continue
        index += 1
        if (method == "HEAD" and status < 400) or status in (204, 304):  # errors: the server's
            pass
        elif b"content-length" in fields:
            length = int(fields[b"content-length"])
            body, position = data[position : position + length], position + length
        elif fields.get(b"transfer-encoding") == b"chunked":
            while True:
                line_end = data.index(b"\r\n", position)
                size = int(data[position:line_end], 16)
                position = line_end + 2
                if size == 0:
                    position = data.index(b"\r\n\r\n", position - 2) + 4
                    break
                body += data[position : position + size]
                position += size + 2
        else:
            body, position = data[position:], len(data)
        framing = (b"content-length", b"transfer-encoding")
        kept = sorted((n, v) for n, v in headers if n.lower() not in framing)
        responses.append((status, kept, body))
    return responses


def compare(pieces: list[bytes], methods: list[str]) -> None:
    results = [drive(adapter, pieces) for adapter in ADAPTERS]
    (seen_h11, out_h11, closed_h11, done_h11), (seen_fast, out_fast, closed_fast, done_fast) = (
        results
    )
    assert seen_fast == seen_h11
    assert parse_responses(out_fast, methods) == parse_responses(out_h11, methods)
    assert closed_fast == closed_h11
    assert done_fast == done_h11


# ------------------------------------------------------------------ well-formed requests

METHODS = st.sampled_from(["GET", "POST", "PUT", "HEAD", "DELETE", "OPTIONS"])
TOKEN = st.text("abcdefghijklmnopqrstuvwxyz-", min_size=1, max_size=8)
VALUE = st.text("abcdefghijklmnopqrstuvwxyz0123456789 ;=,/", min_size=0, max_size=12).map(str.strip)


@st.composite
def requests(draw: Any) -> tuple[bytes, str]:
    method = draw(METHODS)
    version = draw(st.sampled_from(["1.1", "1.1", "1.0"]))
    path = "/" + draw(st.text("abc/%20?=&", max_size=10))
    headers = [("Host", "example.com")] if version == "1.1" else []
    for _ in range(draw(st.integers(0, 3))):
        headers.append(("X-" + draw(TOKEN), draw(VALUE)))
    body = draw(st.binary(max_size=40)) if method in ("POST", "PUT") else b""
    framing = draw(st.sampled_from(["length", "chunked"])) if body else "none"
    if framing == "chunked" and version == "1.0":
        framing = "length"
    if framing == "length":
        headers.append(("Content-Length", str(len(body))))
        encoded = body
    elif framing == "chunked":
        headers.append(("Transfer-Encoding", "chunked"))
        encoded = b"".join(
            b"%x\r\n%s\r\n" % (len(body[i : i + 9]), body[i : i + 9])
            for i in range(0, len(body), 9)
        )
        encoded += b"0\r\n\r\n"
    else:
        encoded = b""
    if draw(st.booleans()) and version == "1.1":
        headers.append(("Connection", draw(st.sampled_from(["close", "keep-alive"]))))
    head = f"{method} {path} HTTP/{version}\r\n" + "".join(f"{n}: {v}\r\n" for n, v in headers)
    return head.encode() + b"\r\n" + encoded, method


def split(raw: bytes, cuts: list[int]) -> list[bytes]:
    points = sorted({cut % (len(raw) + 1) for cut in cuts})
    return [raw[a:b] for a, b in zip([0, *points], [*points, len(raw)], strict=True) if b > a]


@settings(max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(requests(), min_size=1, max_size=4), st.lists(st.integers(0, 10_000), max_size=6))
def test_same_requests_and_responses(batch: list[tuple[bytes, str]], cuts: list[int]) -> None:
    raw = b"".join(request for request, _ in batch)
    compare(split(raw, cuts), [method for _, method in batch])


# ------------------------------------------------------------------ malformed input

MALFORMED = [
    b"GET / HTTP/1.1\nHost: a\n\n",  # bare LF
    b"GET / HTTP/1.1\r\nHost: a\rX: b\r\n\r\n",  # bare CR
    b"GET / HTTP/1.1\r\nHost: a\r\nX: b\r\n  folded\r\n\r\n",  # obs-fold
    b"GET / HTTP/1.1\r\nHost: a\x01b\r\n\r\n",  # control character
    b"GET / HTTP/1.1\r\nHost: a\x00b\r\n\r\n",  # NUL
    b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n",
    b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc",
    b"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3x\r\n\r\nabc",
    b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\nabc",
    b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, gzip\r\n\r\nabc",
    b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nFFFFFFFFFFFFFFFFFFFF\r\nab",
    b"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nab",
    b"GET / HTTP/1.1\r\nHo st: a\r\n\r\n",
    b"GET / HTTP/1.1\r\nHost : a\r\n\r\n",
    b"get / HTTP/1.1\r\nHost: a\r\n\r\n",
    b"FROB / HTTP/1.1\r\nHost: a\r\n\r\n",
    b"NOT HTTP AT ALL\r\n\r\n",
    b"GET /a b HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET / HTTP/1.1\r\n\r\n",  # no Host
    b"GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",  # two Hosts (RFC 9112 3.2)
    b"GET / HTTP/1.1\r\nHost: a\r\nHost: a\r\n\r\n",
    b"CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\n",
    b"GET a/b HTTP/1.1\r\nHost: a\r\n\r\n",
    b"\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\nBAD\r\n\r\n",  # an empty line is skipped
    b"GET / HTTP/1.1\r\nHost: a\r\nX: " + b"v" * 20000 + b"\r\n\r\n",  # 431
    b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /second HTTP/1.1\nHost: a\n\n",  # good then bad
]


@pytest.mark.parametrize("raw", MALFORMED)
@pytest.mark.parametrize("cut", [None, 1, 7, 20])
def test_same_answer_to_malformed_input(raw: bytes, cut: int | None) -> None:
    pieces = [raw] if cut is None else [raw[:cut], raw[cut:]]
    compare(pieces, ["GET", "GET"])
    _, out, closed, _ = drive(FastH11Connection, pieces)
    assert closed, "the connection closes after malformed input"
    statuses = re.findall(rb"HTTP/1.1 (\d{3})", out)
    assert statuses and int(statuses[-1]) in (400, 405, 431, 501), out


@settings(max_examples=examples(300), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(requests(), min_size=1, max_size=3),
    st.lists(st.tuples(st.integers(0, 10_000), st.binary(max_size=3)), min_size=1, max_size=3),
    st.lists(st.integers(0, 10_000), max_size=4),
)
@example(
    batch=[(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n", "GET")], edits=[(14, b"\n")], cuts=[]
)  # a bare LF in the request line
@example(
    batch=[(b"UT / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: hunked\r\n\r\n", "GET")],
    edits=[(0, b"")],
    cuts=[],
)  # an unknown method and an unknown coding: the method's 400 on both paths (was 400/501)
@example(
    batch=[(b"GET / HTTP/1.1\r\nHost: a\r\n\r\nGET / HTTP/1.0\r\n\r\n", "GET")],
    edits=[(0, b"")],
    cuts=[],
)  # the client's last request, pipelined: client_done on both paths
@example(
    batch=[(b"PUT /0  HTTP/1.1\r\nHost: a\r\n\r\nGET  / HTTP/1.1\r\nHost: a\r\n\r\n", "PUT")],
    edits=[(0, b"")],
    cuts=[],
)  # runs of spaces in request lines: read as one on both paths (h11 refused them)
@example(
    batch=[(b"PUT / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nab\r\n", "PUT")],
    edits=[(0, b"")],
    cuts=[],
)  # the client ends in the middle of a body, before any response: 400 on both paths
@example(
    batch=[(b"POST /0!HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: hunked\r\n\r\n", "POST")],
    edits=[(0, b"")],
    cuts=[],
)  # no version (llhttp: HTTP/0.9) and an unknown coding: 400 on both paths, not 501
def test_same_answer_to_mutated_input(
    batch: list[tuple[bytes, str]], edits: list[tuple[int, bytes]], cuts: list[int]
) -> None:
    raw = bytearray(b"".join(request for request, _ in batch))
    for position, replacement in edits:
        position %= len(raw) + 1
        raw[position : position + len(replacement)] = replacement
    compare(split(bytes(raw), cuts), [method for _, method in batch])


def test_known_methods_are_what_llhttp_parses() -> None:
    class Sink:
        pass

    accepted = set()
    for method in [*KNOWN_METHODS, b"FROB", b"get", b"PRI"]:
        parser = httptools.HttpRequestParser(Sink())
        try:
            parser.feed_data(method + b" / HTTP/1.1\r\nHost: a\r\n\r\n")
        except httptools.HttpParserUpgrade:
            accepted.add(method)  # CONNECT
        except httptools.HttpParserError:
            continue
        accepted.add(method)
    assert accepted == KNOWN_METHODS


def test_many_pipelined_requests_in_one_read_are_not_one_large_head() -> None:
    """A read holding hundreds of small pipelined requests and the start of another is not
    an oversized head (the fast path once counted the whole read against the incomplete
    head that began in it, and answered 431)."""
    request = b"GET /p HTTP/1.1\r\nHost: a\r\n\r\n"
    count = CONFIG.h11_max_incomplete_size // len(request) + 100
    pieces = [request * count + b"GET /last HTTP/1.1\r\nHo", b"st: a\r\n\r\n"]
    compare(pieces, ["GET"] * (count + 1))
    seen, out, _, _ = drive(FastH11Connection, pieces)
    assert len(seen) == count + 1 and out.count(b"HTTP/1.1 2") == count + 1
    # while a head that really is too large still is one, however it arrives
    big = b"GET / HTTP/1.1\r\nHost: a\r\nX: " + b"v" * CONFIG.h11_max_incomplete_size
    for cut in (10, len(big) // 2, len(big) - 1):
        _, out, closed, _ = drive(FastH11Connection, [request + big[:cut], big[cut:]])
        assert out.count(b"HTTP/1.1 2") == 1 and b"HTTP/1.1 431 " in out and closed


@pytest.mark.parametrize("adapter", ADAPTERS)
def test_adapters_have_no_instance_dict(adapter: type) -> None:
    # One per connection: past 30 attributes a plain object gets a dict of its own
    # (1.5 KiB for the fast adapter, allocated and freed on every connection).
    conn = adapter(CONFIG, ConnectionInfo(("127.0.0.1", 1), ("127.0.0.1", 80)), 0.0)
    assert not hasattr(conn, "__dict__")

"""The Python cost of one HTTP/1.1 request in this server, without the network: the asyncio
driver and the protocol core over a fake transport, the benchmark's hello-world app, a
keep-alive connection fed one request per loop turn. Prints microseconds per request (the
best of several runs; one loop turn, ~1 us, included). ``--profile`` prints cProfile's view.
``--core`` measures the sans-IO protocol core alone: the same request and response driven
through it by direct calls, no event loop, task or coroutine. ``--connections`` measures a
whole connection instead: made, one ``Connection: close`` request, lost (what the
``Connection: close`` benchmark pays per request). ``--h2`` measures an h2c connection
(prior knowledge) fed reads of ten HEADERS-only requests, as ``h2load -m10`` sends them.

    python bench/micro_core.py [--requests 30000] [--runs 7] [--profile]
        [--core|--connections|--h2]

Run it with the interpreter and checkout to measure (Python 3.12 starts the application
eagerly, so a request is answered inside data_received; earlier versions take a task).
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import pstats
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "apps"))
REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n\r\n"
CLOSE_REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8000\r\nConnection: close\r\n\r\n"


class FakeTransport:
    """What TCPServer uses of a transport; writes are counted, not sent."""

    def __init__(self) -> None:
        self.written = 0

    def get_extra_info(self, name: str, default: Any = None) -> Any:
        return {"peername": ("127.0.0.1", 5555), "sockname": ("127.0.0.1", 8000)}.get(name, default)

    def write(self, data: bytes) -> None:
        self.written += len(data)

    def writelines(self, chunks: list[bytes]) -> None:
        self.written += sum(map(len, chunks))

    def pause_reading(self) -> None:
        pass

    def resume_reading(self) -> None:
        pass

    def is_closing(self) -> bool:
        return False

    def close(self) -> None:
        pass

    def abort(self) -> None:
        pass

    def can_write_eof(self) -> bool:
        return False


async def measure(requests: int, runs: int, profile: bool, connections: bool = False) -> float:
    from hello import app

    from hypercorn.app_wrappers import ASGIWrapper
    from hypercorn.asyncio.tcp_server import TCPServer
    from hypercorn.asyncio.worker_context import WorkerContext
    from hypercorn.config import Config

    config = Config(keep_alive_max_requests=2**62)
    context = WorkerContext(config)
    wrapped = ASGIWrapper(app)
    server = TCPServer(wrapped, config, context)
    transport = FakeTransport()
    server.connection_made(transport)  # type: ignore[arg-type]

    async def one_connection() -> None:
        fresh = TCPServer(wrapped, config, context)
        fresh.connection_made(transport)  # type: ignore[arg-type]
        fresh.data_received(CLOSE_REQUEST)
        await asyncio.sleep(0)
        fresh.connection_lost(None)

    async def one_request() -> None:
        server.data_received(REQUEST)
        await asyncio.sleep(0)  # lets a request that took a task finish

    one = one_connection if connections else one_request
    return await best_time(one, 2000, requests, 1, runs, profile, transport)


async def best_time(
    one: Callable[[], Awaitable[None]],
    warm_up: int,
    calls: int,
    per_call: int,
    runs: int,
    profile: bool,
    transport: FakeTransport,
) -> float:
    """Microseconds per request of the best of ``runs`` runs of ``calls`` awaits of ``one``,
    each answering ``per_call`` requests (with ``profile``, one run and cProfile's view),
    after ``warm_up`` awaits."""
    written = transport.written
    for _ in range(warm_up):
        await one()
    warm_up_bytes = (transport.written - written) / warm_up
    profiler = cProfile.Profile() if profile else None
    best = float("inf")
    for _ in range(1 if profile else runs):
        if profiler is not None:
            profiler.enable()
        written = transport.written
        start = time.perf_counter()
        for _ in range(calls):
            await one()
        best = min(best, time.perf_counter() - start)
        # every request answered, as in the warm-up: a connection closed part-way would
        # make the run fast and wrong (session 12: an h2 connection closed after 5 s)
        answered = (transport.written - written) / calls
        assert answered > 0.95 * warm_up_bytes, (answered, warm_up_bytes)
        if profiler is not None:
            profiler.disable()
            pstats.Stats(profiler).sort_stats("tottime").print_stats(30)
    return best / (calls * per_call) * 1e6


def h2_reads(batches: int, per_batch: int = 10) -> list[bytes]:
    """What an h2 client sends for ``batches`` reads of ``per_batch`` GET requests, each read
    also returning the connection window the previous batch's responses used. Frames are
    built directly: an h2 client that never sees the responses keeps every stream open, and
    slows down with their number."""
    import hpack
    from hello import BODY
    from hyperframe.frame import HeadersFrame, SettingsFrame, WindowUpdateFrame

    from hypercorn.protocol.h2 import PREFACE

    encoder = hpack.Encoder()
    headers = [
        (":method", "GET"),
        (":scheme", "http"),
        (":authority", "127.0.0.1:8000"),
        (":path", "/"),
    ]
    reads = []
    stream_id = 1
    for batch in range(batches):
        frames = [] if batch else [PREFACE + SettingsFrame(0).serialize()]
        for _ in range(per_batch):
            frame = HeadersFrame(stream_id, encoder.encode(headers))
            frame.flags.add("END_HEADERS")
            frame.flags.add("END_STREAM")
            frames.append(frame.serialize())
            stream_id += 2
        if batch:
            frames.append(WindowUpdateFrame(0, per_batch * len(BODY)).serialize())
        reads.append(b"".join(frames))
    return reads


async def measure_h2(requests: int, runs: int, profile: bool) -> float:
    from hello import app

    from hypercorn.app_wrappers import ASGIWrapper
    from hypercorn.asyncio.tcp_server import TCPServer
    from hypercorn.asyncio.worker_context import WorkerContext
    from hypercorn.config import Config

    batches = requests // 10
    warm_up = 200
    reads = h2_reads(warm_up + batches * (1 if profile else runs))
    config = Config(keep_alive_max_requests=2**62)
    wrapped = ASGIWrapper(app)
    server = TCPServer(wrapped, config, WorkerContext(config))
    transport = FakeTransport()
    server.connection_made(transport)  # type: ignore[arg-type]
    feed = iter(reads)

    async def one_read() -> None:
        server.data_received(next(feed))
        for _ in range(3):  # the streams' tasks, then the gathered write
            await asyncio.sleep(0)

    return await best_time(one_read, warm_up, batches, 10, runs, profile, transport)


def measure_core(requests: int, runs: int) -> float:
    from hello import BODY, HEADERS

    from hypercorn.config import Config
    from hypercorn.protocol import ConnectionInfo
    from hypercorn.protocol.connection import HTTPConnection

    config = Config(keep_alive_max_requests=2**62)
    info = ConnectionInfo(("127.0.0.1", 50000), ("127.0.0.1", 8000))
    core = HTTPConnection(config, info, 0.0).inner
    start_message = {"type": "http.response.start", "status": 200, "headers": HEADERS}
    body_message = {"type": "http.response.body", "body": BODY}

    def request() -> int:
        core.receive_data(REQUEST, 1.0)
        (stream,) = core.pop_new_streams()
        stream.app_send(start_message)
        stream.app_send(body_message)
        stream.app_finished()
        return len(core.data_to_send())

    for _ in range(2000):  # warm-up
        request()
    best = float("inf")
    for _ in range(runs):
        written = 0
        start = time.perf_counter()
        for _ in range(requests):
            written += request()
        best = min(best, time.perf_counter() - start)
        assert written // requests > len(BODY)  # every request answered
    return best / requests * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=30000)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--profile", action="store_true")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--core", action="store_true")
    mode.add_argument("--connections", action="store_true")
    mode.add_argument("--h2", action="store_true")
    options = parser.parse_args()
    if options.core:
        per_request = measure_core(options.requests, options.runs)
        print(f"{per_request:.2f} us per request, core alone (Python {sys.version.split()[0]})")
        return
    try:
        import uvloop
    except ImportError:
        runner = asyncio.run
    else:
        runner = uvloop.run
    if options.h2:
        per_request = runner(measure_h2(options.requests, options.runs, options.profile))
        print(f"{per_request:.2f} us per h2c request (Python {sys.version.split()[0]})")
        return
    per_request = runner(
        measure(options.requests, options.runs, options.profile, options.connections)
    )
    unit = "connection (one Connection: close request)" if options.connections else "request"
    print(f"{per_request:.2f} us per {unit} (Python {sys.version.split()[0]})")


if __name__ == "__main__":
    main()

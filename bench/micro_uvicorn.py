"""The reference for bench/micro_core.py: uvicorn's httptools protocol serving the same
hello-world app over the same kind of fake transport, one keep-alive request per loop turn
(uvicorn starts a task per request, so each turn finishes one). Prints microseconds per
request, the best of several runs; ``--connections``: a whole connection per turn (made, one
``Connection: close`` request, lost), as ``micro_core.py --connections``. Run it with the
uvicorn benchmark virtualenv:

    bench/.venvs/uvicorn-3.12/bin/python bench/micro_uvicorn.py [--connections]
        [--requests 30000] [--runs 7]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "apps"))
sys.path.insert(0, str(HERE))
REQUEST = b"GET / HTTP/1.1\r\nHost: 127.0.0.1:8000\r\n\r\n"


async def measure(connections: bool, requests: int, runs: int) -> float:
    from hello import app
    from micro_core import CLOSE_REQUEST, FakeTransport
    from uvicorn.config import Config
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
    from uvicorn.server import ServerState

    config = Config(app, http="httptools", access_log=False, log_level="warning")
    config.load()
    state = ServerState()
    protocol = HttpToolsProtocol(config, state, app_state={})
    transport: Any = FakeTransport()
    transport.set_protocol = lambda protocol: None
    protocol.connection_made(transport)

    async def one_connection() -> None:
        fresh = HttpToolsProtocol(config, state, app_state={})
        fresh.connection_made(transport)
        fresh.data_received(CLOSE_REQUEST)
        await asyncio.sleep(0)  # the request's task runs
        fresh.connection_lost(None)

    async def one_request() -> None:
        protocol.data_received(REQUEST)
        await asyncio.sleep(0)  # the request's task runs

    one = one_connection if connections else one_request
    for _ in range(2000):  # warm-up
        await one()
    best = float("inf")
    for _ in range(runs):
        written = transport.written
        start = time.perf_counter()
        for _ in range(requests):
            await one()
        best = min(best, time.perf_counter() - start)
        # every request answered
        assert (transport.written - written) // requests > len(b"Hello, world!")
    return best / requests * 1e6


def main() -> None:
    import uvloop

    parser = argparse.ArgumentParser()
    parser.add_argument("--connections", action="store_true")
    parser.add_argument("--requests", type=int, default=30000)
    parser.add_argument("--runs", type=int, default=7)
    options = parser.parse_args()
    unit = "connection (one Connection: close request)" if options.connections else "request"
    per = uvloop.run(measure(options.connections, options.requests, options.runs))
    print(f"uvicorn: {per:.2f} us per {unit} (Python {sys.version.split()[0]})")


if __name__ == "__main__":
    main()

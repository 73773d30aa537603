"""Profile this server under load: serve a benchmark app in this process under cProfile
(uvloop, pinned to CPU 0), run wrk or h2load pinned to CPU 1, print the top functions.

    python bench/profile_server.py [--scenario keep-alive|close|h2c|wsgi] [--duration 5]
"""

from __future__ import annotations

import argparse
import asyncio
import cProfile
import os
import pstats
import socket
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "apps"))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scenario", default="keep-alive")
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--sort", default="tottime")
    parser.add_argument("--limit", type=int, default=40)
    args = parser.parse_args()

    import uvloop

    from hypercorn.asyncio import serve
    from hypercorn.config import Config

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # (h2load opens no new connection after the GOAWAY sent at keep_alive_max_requests)
    config = Config(bind=[f"127.0.0.1:{port}"], keep_alive_max_requests=100_000_000)
    if args.scenario == "wsgi":
        from hello_wsgi import app
    else:
        from hello import app
    os.sched_setaffinity(0, {0})
    url = f"http://127.0.0.1:{port}/"
    if args.scenario == "h2c":
        load = ["h2load", "-c32", "-m10", f"-D{args.duration}", url]
    else:
        extra = ["-H", "Connection: close"] if args.scenario == "close" else []
        load = ["wrk", "-t1", "-c64", f"-d{args.duration}s", *extra, url]

    async def run() -> None:
        stop = asyncio.Event()

        async def drive() -> None:
            await asyncio.sleep(0.5)
            proc = await asyncio.create_subprocess_exec(
                "taskset", "-c", "1", *load, stdout=subprocess.PIPE
            )
            out, _ = await proc.communicate()
            print(out.decode())
            stop.set()

        task = asyncio.ensure_future(drive())
        profiler.enable()
        await serve(
            app,
            config,
            shutdown_trigger=stop.wait,
            mode="wsgi" if args.scenario == "wsgi" else "asgi",
        )
        profiler.disable()
        await task

    profiler = cProfile.Profile()
    uvloop.run(run())
    stats = pstats.Stats(profiler)
    stats.sort_stats(args.sort).print_stats(args.limit)


if __name__ == "__main__":
    main()

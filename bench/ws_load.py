"""WebSocket echo load: N connections each sending a message and awaiting its echo, in a
loop, for D seconds; prints messages per second. Usage: ws_load.py PORT [CONNS] [SECONDS]"""

from __future__ import annotations

import asyncio
import sys
import time

import websockets


async def worker(port: int, stop: float, counts: list[int]) -> None:
    async with websockets.connect(f"ws://127.0.0.1:{port}/ws", compression=None) as ws:
        while time.monotonic() < stop:
            await ws.send(b"x" * 64)
            await ws.recv()
            counts[0] += 1


async def main(port: int, connections: int, seconds: float) -> None:
    counts = [0]
    start = time.monotonic()
    await asyncio.gather(*(worker(port, start + seconds, counts) for _ in range(connections)))
    print(f"Messages/sec: {counts[0] / (time.monotonic() - start):.1f}")


if __name__ == "__main__":
    port = int(sys.argv[1])
    connections = int(sys.argv[2]) if len(sys.argv) > 2 else 16
    seconds = float(sys.argv[3]) if len(sys.argv) > 3 else 5
    asyncio.run(main(port, connections, seconds))

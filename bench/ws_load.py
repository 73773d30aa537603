"""WebSocket echo load: N connections each sending a 64-byte binary message and awaiting its
echo, in a loop, for D seconds; prints messages per second.

    ws_load.py PORT [CONNS] [SECONDS]

The client does as little as possible so that the server is what is measured: the handshake
is written by hand, every message is the same pre-masked frame, and an echo is recognised by
its length (a 2-byte header and the 64 bytes). An earlier version used the `websockets`
client, which saturated its core at the same rate for every server.
"""

from __future__ import annotations

import asyncio
import sys
import time

PAYLOAD = b"x" * 64
MASK = b"\x12\x34\x56\x78"
# FIN + binary opcode; mask bit + length 64; the key; the payload XORed with it
FRAME = (
    bytes([0x82, 0x80 | len(PAYLOAD)])
    + MASK
    + bytes(byte ^ MASK[i % 4] for i, byte in enumerate(PAYLOAD))
)
ECHO_SIZE = 2 + len(PAYLOAD)  # the server's frame is not masked
HANDSHAKE = (
    b"GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
    b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n"
)


class Echoer(asyncio.Protocol):
    def __init__(self, stop: float, counts: list[int], done: asyncio.Future[None]) -> None:
        self.stop = stop
        self.counts = counts
        self.done = done
        self.buffer = b""
        self.open = False
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        transport.write(HANDSHAKE)  # type: ignore[attr-defined]

    def data_received(self, data: bytes) -> None:
        assert self.transport is not None
        self.buffer += data
        if not self.open:
            head, found, rest = self.buffer.partition(b"\r\n\r\n")
            if not found:
                return
            if not head.startswith(b"HTTP/1.1 101"):
                self._finish(RuntimeError(head.split(b"\r\n")[0].decode()))
                return
            self.open, self.buffer = True, rest
            self.transport.write(FRAME)
            return
        while len(self.buffer) >= ECHO_SIZE:
            self.buffer = self.buffer[ECHO_SIZE:]
            self.counts[0] += 1
            if time.monotonic() >= self.stop:
                self._finish(None)
                return
            self.transport.write(FRAME)

    def connection_lost(self, exc: Exception | None) -> None:
        self._finish(exc or ConnectionError("closed by the server"))

    def _finish(self, error: BaseException | None) -> None:
        if not self.done.done():
            if error is None:
                self.done.set_result(None)
            else:
                self.done.set_exception(error)
        if self.transport is not None:
            self.transport.close()


async def main(port: int, connections: int, seconds: float) -> None:
    loop = asyncio.get_running_loop()
    counts = [0]
    start = time.monotonic()
    waiters = []
    for _ in range(connections):
        done: asyncio.Future[None] = loop.create_future()
        await loop.create_connection(
            lambda done=done: Echoer(start + seconds, counts, done),  # type: ignore[misc]
            "127.0.0.1",
            port,
        )
        waiters.append(done)
    await asyncio.gather(*waiters)
    print(f"Messages/sec: {counts[0] / (time.monotonic() - start):.1f}")


if __name__ == "__main__":
    port = int(sys.argv[1])
    connections = int(sys.argv[2]) if len(sys.argv) > 2 else 16
    seconds = float(sys.argv[3]) if len(sys.argv) > 3 else 5
    try:
        import uvloop
    except ImportError:
        asyncio.run(main(port, connections, seconds))
    else:
        uvloop.run(main(port, connections, seconds))

"""Soak test: mixed HTTP/1.1, HTTP/2 (h2c) and WebSocket traffic against a real server for a
while, with clients that disconnect at random points; the server's RSS and open file
descriptors must stay flat after warm-up and its log must show no error.

    python tests/soak/soak.py [--duration 600] [--clients 24] [--worker-class uvloop]

Run by ``make soak`` (not part of ``make test``). Exit status 0 when every check holds.

Warm-up is the first fifth of the run. Give it five minutes or more: the server's RSS climbs
~15 MiB in the first minute (as much with glibc's default allocator settings as with
``hypercorn.malloc``'s) and is flat after it (600 s on 2026-11-22: 94.0 MiB after warm-up,
96.8 peak), while a 180 s run samples "after warm-up" before the climb has ended.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import random
import re
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
import websockets

HERE = Path(__file__).resolve().parent
APP = """
async def app(scope, receive, send):
    if scope["type"] == "websocket":
        await receive()
        await send({"type": "websocket.accept"})
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            await send({"type": "websocket.send", "text": message.get("text"),
                        "bytes": message.get("bytes")})
    if scope["type"] != "http":
        return
    body = bytearray()
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    if scope["path"] == "/stream":
        await send({"type": "http.response.start", "status": 200})
        for _ in range(50):
            await send({"type": "http.response.body", "body": b"s" * 4096, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        return
    await send({"type": "http.response.start", "status": 200})
    await send({"type": "http.response.body", "body": bytes(body) or b"hello"})
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def sample(pid: int) -> tuple[float, int]:
    """(RSS in MiB, open file descriptors) of ``pid``."""
    rss = 0.0
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1]) / 1024
    return rss, len(os.listdir(f"/proc/{pid}/fd"))


class Counters:
    def __init__(self) -> None:
        self.done: dict[str, int] = {}
        self.failed: dict[str, int] = {}

    def ok(self, kind: str) -> None:
        self.done[kind] = self.done.get(kind, 0) + 1

    def fail(self, kind: str, error: BaseException) -> None:
        key = f"{kind}: {type(error).__name__}"
        self.failed[key] = self.failed.get(key, 0) + 1


async def http_client(url: str, http2: bool, stop: float, counters: Counters) -> None:
    kind = "h2" if http2 else "h1"
    async with httpx.AsyncClient(http1=not http2, http2=http2, timeout=10) as client:
        while time.monotonic() < stop:
            try:
                choice = random.random()
                if choice < 0.5:
                    response = await client.get(url + "/")
                    assert response.content == b"hello"
                elif choice < 0.8:
                    payload = os.urandom(random.randint(1, 200_000))
                    response = await client.post(url + "/echo", content=payload)
                    assert response.content == payload
                else:
                    response = await client.get(url + "/stream")
                    assert len(response.content) == 50 * 4096
                counters.ok(kind)
            except Exception as error:
                counters.fail(kind, error)
                await asyncio.sleep(0.1)


async def websocket_client(port: int, stop: float, counters: Counters) -> None:
    while time.monotonic() < stop:
        try:
            async with websockets.connect(f"ws://127.0.0.1:{port}/ws") as ws:
                for _ in range(random.randint(1, 20)):
                    message = os.urandom(random.randint(1, 20_000))
                    await ws.send(message)
                    assert await ws.recv() == message
            counters.ok("ws")
        except Exception as error:
            counters.fail("ws", error)
            await asyncio.sleep(0.1)


async def rude_client(port: int, stop: float, counters: Counters) -> None:
    """Connects, sends part of something, and vanishes (FIN or RST) at a random point."""
    requests = [
        b"POST /echo HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\n" + b"x" * 5000,
        b"GET /stream HTTP/1.1\r\nHost: a\r\n\r\n",
        b"GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        b"Sec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n",
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00",
    ]
    while time.monotonic() < stop:
        try:
            reader, writer = await asyncio.open_connection("127.0.0.1", port)
            data = random.choice(requests)
            writer.write(data[: random.randint(1, len(data))])
            await writer.drain()
            if random.random() < 0.5:
                await asyncio.wait_for(reader.read(random.randint(1, 65536)), 2)
            sock = writer.get_extra_info("socket")
            if random.random() < 0.5 and sock is not None:  # RST instead of FIN
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            writer.close()
            counters.ok("rude")
        except Exception as error:
            counters.fail("rude", error)
        await asyncio.sleep(random.random() * 0.05)


async def run(args: argparse.Namespace, port: int, pid: int) -> tuple[Counters, list[Any]]:
    counters = Counters()
    stop = time.monotonic() + args.duration
    url = f"http://127.0.0.1:{port}"
    clients = []
    for index in range(args.clients):
        kind = index % 4
        if kind == 0:
            clients.append(http_client(url, False, stop, counters))
        elif kind == 1:
            clients.append(http_client(url, True, stop, counters))
        elif kind == 2:
            clients.append(websocket_client(port, stop, counters))
        else:
            clients.append(rude_client(port, stop, counters))
    samples: list[Any] = []

    async def sampler() -> None:
        started = time.monotonic()
        while time.monotonic() < stop:
            await asyncio.sleep(args.interval)
            rss, fds = sample(pid)
            samples.append((time.monotonic() - started, rss, fds, sum(counters.done.values())))
            print(
                f"t={samples[-1][0]:6.0f}s rss={rss:7.1f} MiB fds={fds:4d} "
                f"done={samples[-1][3]} failed={sum(counters.failed.values())}",
                flush=True,
            )

    await asyncio.gather(sampler(), *clients)
    return counters, samples


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--duration", type=float, default=600)
    parser.add_argument("--clients", type=int, default=24)
    parser.add_argument("--interval", type=float, default=10)
    parser.add_argument("--worker-class", default="uvloop")
    args = parser.parse_args()
    args.interval = min(args.interval, args.duration / 6)

    work = Path(os.environ.get("SOAK_DIR", "/tmp/hypercorn-soak"))
    work.mkdir(parents=True, exist_ok=True)
    (work / "soakapp.py").write_text(APP)
    log_path = work / "server.log"
    port = free_port()
    with log_path.open("w") as log:
        server = subprocess.Popen(
            [sys.executable, "-m", "hypercorn", "-w", "0", "-k", args.worker_class,
             "-b", f"127.0.0.1:{port}", "--app-dir", str(work), "soakapp:app"],
            stderr=log,
        )  # fmt: skip
    try:
        deadline = time.monotonic() + 30
        while "Running on" not in log_path.read_text():
            assert server.poll() is None and time.monotonic() < deadline, log_path.read_text()
            time.sleep(0.1)
        counters, samples = asyncio.run(run(args, port, server.pid))
        time.sleep(2)  # let the rude clients' connections time out or close
        rss_end, fds_end = sample(server.pid)
    finally:
        server.terminate()
        server.wait(30)

    warm = samples[max(0, len(samples) // 5 - 1)]  # the end of the first fifth: warmed up
    peak_after = max(rss for _, rss, _, _ in samples[len(samples) // 5 :])
    errors = [
        line
        for line in log_path.read_text().splitlines()
        if re.search(r"\b(ERROR|CRITICAL)\b|Traceback|Internal error", line)
    ]
    print(f"\nrequests done: {counters.done}")
    print(f"client-side errors (rude clients time out by design): {counters.failed or 'none'}")
    print(f"RSS after warm-up {warm[1]:.1f} MiB, peak after {peak_after:.1f}, end {rss_end:.1f}")
    print(f"open fds after warm-up {warm[2]}, end (idle) {fds_end}")
    checks = {
        "RSS flat (peak after warm-up within 10% + 2 MiB)": peak_after <= warm[1] * 1.10 + 2,
        "open fds back to the warm-up level when idle": fds_end <= warm[2] + 2,
        "no error in the server log": not errors,
        "well-behaved clients never failed": not any(
            key.split(":")[0] in ("h1", "h2", "ws") for key in counters.failed
        ),
    }
    for line in errors[:20]:
        print("log:", line)
    for name, held in checks.items():
        print(("PASS  " if held else "FAIL  ") + name)
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())

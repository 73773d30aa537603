"""Libraries a worker loads only when something needs them. Each costs 1-2 MiB of RSS per
worker (the memory benchmark's 1000-idle-connections figure is mostly this baseline), so a
plain HTTP/1.1 server must not import them; the first request that does need one loads it."""

from __future__ import annotations

import subprocess
import sys
import textwrap

SCRIPT = textwrap.dedent(
    """
    import asyncio, base64, os, socket, sys

    from hypercorn.asyncio import serve
    from hypercorn.config import Config

    LAZY = ("wsproto", "structlog", "h2", "aioquic", "multiprocessing", "prometheus_client")

    async def app(scope, receive, send):
        if scope["type"] == "websocket":
            await receive()
            await send({"type": "websocket.accept"})
            await send({"type": "websocket.close"})
        elif scope["type"] == "http":
            await send({"type": "http.response.start", "status": 200})
            await send({"type": "http.response.body", "body": b"ok"})

    def exchange(port, data):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
            sock.sendall(data)
            return sock.recv(65536)

    async def main():
        sock = socket.socket()
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        sock.close()
        stop = asyncio.Event()
        server = asyncio.ensure_future(
            serve(app, Config(bind=[f"127.0.0.1:{port}"]), shutdown_trigger=stop.wait)
        )
        await asyncio.sleep(0.5)
        loop = asyncio.get_running_loop()
        answer = await loop.run_in_executor(
            None, exchange, port, b"GET / HTTP/1.1\\r\\nHost: a\\r\\n\\r\\n"
        )
        assert answer.startswith(b"HTTP/1.1 200 "), answer
        print("after http:", sorted(m for m in LAZY if m in sys.modules))
        key = base64.b64encode(os.urandom(16))
        upgrade = (
            b"GET /ws HTTP/1.1\\r\\nHost: a\\r\\nUpgrade: websocket\\r\\nConnection: Upgrade\\r\\n"
            b"Sec-WebSocket-Key: " + key + b"\\r\\nSec-WebSocket-Version: 13\\r\\n\\r\\n"
        )
        answer = await loop.run_in_executor(None, exchange, port, upgrade)
        assert answer.startswith(b"HTTP/1.1 101 "), answer
        print("after websocket:", sorted(m for m in LAZY if m in sys.modules))
        stop.set()
        await server

    asyncio.run(main())
    """
)


def test_http11_server_imports_only_what_it_uses() -> None:
    result = subprocess.run(
        [sys.executable, "-c", SCRIPT], capture_output=True, text=True, timeout=30
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert "after http: []" in lines
    assert "after websocket: ['wsproto']" in lines

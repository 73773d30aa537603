"""The ``hypercorn`` command as a subprocess: serving, SIGTERM drain, and exit codes."""

from __future__ import annotations

import os
import queue
import re
import signal
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest

APP = textwrap.dedent("""
    import anyio, os

    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    if os.environ.get("FAIL_STARTUP"):
                        await send({"type": "lifespan.startup.failed", "message": "no db"})
                        return
                    await send({"type": "lifespan.startup.complete"})
                else:
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["path"] == "/slow":
            await anyio.sleep(1.0)
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body", "body": f"pid {os.getpid()}".encode()})
""")


class Server:
    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.process = process
        self.lines: queue.Queue[str] = queue.Queue()
        self.output: list[str] = []
        self._reader = threading.Thread(target=self._pump, daemon=True)
        self._reader.start()

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
        self.process.wait()
        self._reader.join(5)
        assert self.process.stderr is not None
        self.process.stderr.close()

    def _pump(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.output.append(line)
            self.lines.put(line)

    def wait_for_urls(self, count: int = 1, timeout: float = 20) -> list[str]:
        urls: list[str] = []
        deadline = time.monotonic() + timeout
        while len(urls) < count:
            try:
                line = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                raise TimeoutError("".join(self.output)) from None
            match = re.search(r"Running on (\S+)", line)
            if match:
                urls.append(match.group(1))
        return urls

    def wait(self, timeout: float = 20) -> int:
        return self.process.wait(timeout)


Launch = Callable[..., Server]


@pytest.fixture
def start(tmp_path: Path) -> Iterator[Launch]:
    (tmp_path / "demo.py").write_text(APP)
    servers: list[Server] = []

    def launch(*args: str, env: dict[str, str] | None = None) -> Server:
        process = subprocess.Popen(
            [sys.executable, "-m", "hypercorn", *args],
            cwd=tmp_path,
            text=True,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env={**os.environ, **(env or {})},
        )
        servers.append(Server(process))
        return servers[-1]

    yield launch
    for server in servers:
        server.close()


@pytest.mark.parametrize("worker_class", ["asyncio", "uvloop", "trio"])
@pytest.mark.parametrize("workers", ["0", "2"])
def test_sigterm_drains_in_flight_request_then_exits_0(
    start: Launch, workers: str, worker_class: str
) -> None:
    server = start(
        "-b",
        "127.0.0.1:0",
        "-w",
        workers,
        "-k",
        worker_class,
        "--graceful-timeout",
        "5",
        "demo:app",
    )
    url = server.wait_for_urls(int(workers) or 1)[0]
    pids = {httpx.get(url).text for _ in range(4)}
    assert all(text.startswith("pid ") for text in pids)
    result: dict[str, httpx.Response] = {}
    thread = threading.Thread(
        target=lambda: result.setdefault("slow", httpx.get(url + "/slow", timeout=10))
    )
    thread.start()
    time.sleep(0.3)  # let the slow request reach the app before the signal
    began = time.monotonic()
    server.process.send_signal(signal.SIGTERM)
    assert server.wait() == 0, "".join(server.output)
    thread.join(5)
    assert result["slow"].status_code == 200
    assert time.monotonic() - began < 5


@pytest.mark.parametrize("worker_class", ["asyncio", "trio"])
@pytest.mark.parametrize("workers", ["0", "2"])
def test_lifespan_startup_failure_exits_3(start: Launch, workers: str, worker_class: str) -> None:
    server = start(
        "-b",
        "127.0.0.1:0",
        "-w",
        workers,
        "-k",
        worker_class,
        "demo:app",
        env={"FAIL_STARTUP": "1"},
    )
    assert server.wait() == 3
    assert "no db" in "".join(server.output)


def test_import_error_in_app_exits_3(start: Launch, tmp_path: Path) -> None:
    (tmp_path / "bad.py").write_text("raise RuntimeError('cannot import me')\n")
    server = start("-w", "0", "bad:app")
    assert server.wait() == 3
    assert "cannot import me" in "".join(server.output)


def test_address_in_use_exits_1(start: Launch) -> None:
    import socket

    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        server = start("-b", f"127.0.0.1:{port}", "-w", "0", "demo:app")
        assert server.wait() == 1
        assert f"cannot bind 127.0.0.1:{port}" in "".join(server.output)


def test_app_from_environment_and_toml(start: Launch, tmp_path: Path) -> None:
    (tmp_path / "h.toml").write_text('bind = "127.0.0.1:0"\nworkers = 0\n')
    server = start("-c", "h.toml", env={"HYPERCORN_APP": "demo:app"})
    url = server.wait_for_urls()[0]
    assert httpx.get(url).status_code == 200
    server.process.send_signal(signal.SIGINT)
    assert server.wait() == 0

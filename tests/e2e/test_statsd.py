"""statsd/DogStatsD metrics, received by a real UDP socket."""

from __future__ import annotations

import socket
from collections.abc import Callable

import httpx

from hypercorn.config import Config
from hypercorn.statsd import StatsdLogger
from tests.conftest import RunningServer, hello_app

Serve = Callable[..., RunningServer]


def test_requests_and_errors_are_sent_to_statsd(serve: Serve) -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as receiver:
        receiver.bind(("127.0.0.1", 0))
        receiver.settimeout(5)
        host = f"127.0.0.1:{receiver.getsockname()[1]}"
        server = serve(
            hello_app, statsd_host=host, statsd_prefix="app", dogstatsd_tags="env:test,team:web"
        )
        assert isinstance(server.config.log, StatsdLogger)
        assert httpx.get(server.url).status_code == 200
        lines = set()
        while len(lines) < 3:
            lines.add(receiver.recv(1024).decode())
    assert "app.hypercorn.requests:1|c|#env:test,team:web" in lines
    assert "app.hypercorn.request.status.200:1|c|#env:test,team:web" in lines
    [timer] = [line for line in lines if line.startswith("app.hypercorn.request.duration:")]
    assert timer.endswith("|ms|#env:test,team:web")


def test_plain_logger_without_statsd_host() -> None:
    assert type(Config().log).__name__ == "Logger"

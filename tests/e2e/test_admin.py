"""The admin listener: liveness, readiness around start-up and shutdown, metrics (also across
worker processes), the healthcheck command, and probes kept out of the access log."""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio
import httpx
import pytest

from tests.conftest import RunningServer, hello_app

Serve = Callable[..., RunningServer]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def metric_total(text: str, name: str, **labels: str) -> float:
    total = 0.0
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        if all(f'{key}="{value}"' in line for key, value in labels.items()):
            total += float(line.rsplit(" ", 1)[1])
    return total


def test_livez_readyz_metrics_and_no_access_log(serve: Serve, tmp_path: Path) -> None:
    admin = f"127.0.0.1:{free_port()}"
    access = tmp_path / "access.log"
    server = serve(hello_app, admin_bind=admin, accesslog=str(access))
    base = f"http://{admin}"
    assert httpx.get(base + "/livez").status_code == 200
    assert httpx.get(base + "/readyz").status_code == 200
    before = metric_total(
        httpx.get(base + "/metrics").text, "hypercorn_requests_total", status="200", protocol="1.1"
    )
    for _ in range(3):
        httpx.get(server.url)
    with httpx.Client(http1=False, http2=True) as client:
        client.get(server.url)
    text = httpx.get(base + "/metrics").text
    assert (
        metric_total(text, "hypercorn_requests_total", status="200", protocol="1.1") == before + 3
    )
    assert metric_total(text, "hypercorn_requests_total", status="200", protocol="2") >= 1
    assert "hypercorn_request_duration_seconds_bucket" in text
    assert "hypercorn_requests_in_flight" in text
    assert httpx.get(base + "/nothing").status_code == 404
    server.stop()
    lines = access.read_text().splitlines()
    assert len(lines) == 4 and not any("/readyz" in line or "/metrics" in line for line in lines)


def test_not_ready_until_lifespan_startup_completes(backend: str) -> None:
    release = threading.Event()

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            await receive()
            await anyio.to_thread.run_sync(release.wait, 10)
            await send({"type": "lifespan.startup.complete"})
            await receive()
            await send({"type": "lifespan.shutdown.complete"})
        else:
            await hello_app(scope, receive, send)

    admin = f"127.0.0.1:{free_port()}"
    server = RunningServer(app, backend, admin_bind=admin)
    server._thread.start()
    try:
        for _ in range(100):
            try:
                live = httpx.get(f"http://{admin}/livez")
                break
            except httpx.ConnectError:
                time.sleep(0.05)
        assert live.status_code == 200  # alive while starting
        assert httpx.get(f"http://{admin}/readyz").status_code == 503
        release.set()
        assert server._started.wait(10)
        assert httpx.get(f"http://{admin}/readyz").status_code == 200
    finally:
        release.set()
        server.stop()


def test_shutdown_delay_flips_readyz_while_requests_still_succeed(serve: Serve) -> None:
    admin = f"127.0.0.1:{free_port()}"
    server = serve(hello_app, admin_bind=admin, shutdown_delay=1.0)
    assert httpx.get(f"http://{admin}/readyz").status_code == 200
    began = time.monotonic()
    server.request_stop()
    deadline = time.monotonic() + 0.8
    while httpx.get(f"http://{admin}/readyz").status_code != 503:
        assert time.monotonic() < deadline
        time.sleep(0.02)
    assert httpx.get(server.url).text == "Hello, world!"  # still serving during the delay
    server.stop()
    assert time.monotonic() - began >= 1.0


DEMO = textwrap.dedent("""
    import os

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body", "body": str(os.getpid()).encode()})
""")


def start_cli(tmp_path: Path, *args: str) -> tuple[subprocess.Popen[str], list[str]]:
    (tmp_path / "demo.py").write_text(DEMO)
    process = subprocess.Popen(
        [sys.executable, "-m", "hypercorn", *args, "demo:app"],
        cwd=tmp_path,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stderr is not None
    urls: list[str] = []
    workers = int(args[args.index("-w") + 1]) if "-w" in args else 1
    for line in process.stderr:
        match = re.search(r"Running on (\S+)", line)
        if match:
            urls.append(match.group(1))
            if len(urls) == max(workers, 1):
                break
    return process, urls


def stop_cli(process: subprocess.Popen[str]) -> int:
    process.send_signal(signal.SIGTERM)
    code = process.wait(20)
    assert process.stderr is not None
    process.stderr.close()
    return code


def test_metrics_count_requests_served_by_two_workers(tmp_path: Path) -> None:
    admin = f"127.0.0.1:{free_port()}"
    process, urls = start_cli(
        tmp_path, "-b", f"127.0.0.1:{free_port()}", "-w", "2", "--admin-bind", admin
    )
    try:
        pids: set[str] = set()
        sent = 0
        while len(pids) < 2 and sent < 400:  # until both workers have served some
            with httpx.Client() as client:  # a new connection each time
                pids.add(client.get(urls[0]).text)
            sent += 1
        assert len(pids) == 2
        totals = set()
        for _ in range(6):  # whichever worker answers /metrics counts both
            text = httpx.get(f"http://{admin}/metrics").text
            totals.add(metric_total(text, "hypercorn_requests_total", status="200"))
        assert totals == {float(sent)}
    finally:
        assert stop_cli(process) == 0


def test_healthcheck_command(tmp_path: Path) -> None:
    admin = f"127.0.0.1:{free_port()}"
    env = {**os.environ, "HYPERCORN_ADMIN_BIND": admin}
    check = [sys.executable, "-m", "hypercorn", "--healthcheck"]
    assert subprocess.run(check, env=env, capture_output=True, timeout=20).returncode == 1
    process, _ = start_cli(
        tmp_path, "-b", f"127.0.0.1:{free_port()}", "-w", "0", "--admin-bind", admin
    )
    try:
        result = subprocess.run(check, env=env, capture_output=True, text=True, timeout=20)
        assert result.returncode == 0, result.stdout + result.stderr
    finally:
        assert stop_cli(process) == 0
    no_admin = {k: v for k, v in os.environ.items() if k != "HYPERCORN_ADMIN_BIND"}
    result = subprocess.run(check, env=no_admin, capture_output=True, text=True, timeout=20)
    assert result.returncode == 1 and "needs admin_bind" in result.stderr


@pytest.mark.parametrize("path", ["/livez", "/readyz"])
def test_probe_helper_reports_status(serve: Serve, path: str) -> None:
    from hypercorn.admin import probe

    admin = f"127.0.0.1:{free_port()}"
    serve(hello_app, admin_bind=admin)
    assert probe(admin, path) == 200
    assert probe(f"127.0.0.1:{free_port()}", path) == 0


def test_shutdown_delay_through_the_cli_with_two_workers(tmp_path: Path) -> None:
    admin = f"127.0.0.1:{free_port()}"
    process, urls = start_cli(
        tmp_path,
        "-b",
        f"127.0.0.1:{free_port()}",
        "-w",
        "2",
        "--admin-bind",
        admin,
        "--shutdown-delay",
        "1.5",
    )
    try:
        assert httpx.get(f"http://{admin}/readyz").status_code == 200
        began = time.monotonic()
        process.send_signal(signal.SIGTERM)
        while httpx.get(f"http://{admin}/readyz").status_code != 503:
            assert time.monotonic() - began < 1.0
            time.sleep(0.02)
        for _ in range(5):  # still served while not ready
            assert httpx.get(urls[0]).status_code == 200
        assert process.wait(20) == 0
        assert time.monotonic() - began >= 1.5
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        assert process.stderr is not None
        process.stderr.close()

"""The supervisor as users drive it: signals to the real ``hypercorn`` command."""

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
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

APP = textwrap.dedent("""
    import os

    async def app(scope, receive, send):
        if scope["type"] == "lifespan":
            message = await receive()
            if os.environ.get("CRASH_AFTER_START"):
                os._exit(7)  # a worker that dies right after it starts, every time
            await send({"type": "lifespan.startup.complete"})
            await receive()
            await send({"type": "lifespan.shutdown.complete"})
            return
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"connection", b"close")]})
        await send({"type": "http.response.body", "body": str(os.getpid()).encode()})
""")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Cli:
    def __init__(self, tmp_path: Path, *args: str, env: dict[str, str] | None = None) -> None:
        (tmp_path / "demo.py").write_text(APP)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/"
        self.process = subprocess.Popen(
            [sys.executable, "-m", "hypercorn", "-b", f"127.0.0.1:{self.port}", *args, "demo:app"],
            cwd=tmp_path,
            stderr=subprocess.PIPE,
            text=True,
            env={**os.environ, **(env or {})},
        )
        self.lines: list[str] = []
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self) -> None:
        assert self.process.stderr is not None
        for line in self.process.stderr:
            self.lines.append(line)

    def count(self, pattern: str) -> int:
        return sum(1 for line in list(self.lines) if re.search(pattern, line))

    def wait_for(self, pattern: str, count: int = 1, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while self.count(pattern) < count:
            assert time.monotonic() < deadline, "".join(self.lines)
            assert self.process.poll() is None, "".join(self.lines)
            time.sleep(0.05)

    def pid(self) -> str:
        return httpx.get(self.url, timeout=10).text

    def close(self) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        code = self.process.wait(30)
        self.reader.join(5)
        assert self.process.stderr is not None
        self.process.stderr.close()
        return code


@pytest.fixture
def cli(tmp_path: Path) -> Iterator[object]:
    started: list[Cli] = []

    def start(*args: str, env: dict[str, str] | None = None) -> Cli:
        started.append(Cli(tmp_path, *args, env=env))
        return started[-1]

    yield start
    for server in started:
        if server.process.poll() is None:
            server.process.kill()
        server.close()


class Load:
    """A steady loop of requests (a new connection each) counting failures."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.ok = 0
        self.failed: list[str] = []
        self.pids: set[str] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.pids.add(httpx.get(self.url, timeout=10).text)
                self.ok += 1
            except httpx.HTTPError as error:
                self.failed.append(repr(error))
            time.sleep(0.005)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(15)


def worker_pids(server: Cli) -> set[str]:
    pids: set[str] = set()
    for _ in range(200):
        pids.add(server.pid())
        if len(pids) >= 2:
            break
    return pids


def test_killed_worker_is_replaced_while_requests_succeed(cli: object) -> None:
    server = cli("-w", "2")  # type: ignore[operator]
    server.wait_for("Running on", 2)
    load = Load(server.url)
    time.sleep(0.3)
    victim = int(server.pid())
    os.kill(victim, signal.SIGKILL)
    server.wait_for("Running on", 3)  # the replacement is up
    time.sleep(0.3)
    load.stop()
    assert str(victim) not in worker_pids(server)
    # Requests to the killed worker's in-flight connections may fail; new ones must not.
    assert load.ok > 0 and len(load.failed) <= 2, load.failed
    assert server.close() == 0


def test_sighup_rolling_restart_refuses_nothing(cli: object) -> None:
    server = cli("-w", "2", "--graceful-timeout", "5")  # type: ignore[operator]
    server.wait_for("Running on", 2)
    before = worker_pids(server)
    load = Load(server.url)
    time.sleep(0.3)
    server.process.send_signal(signal.SIGHUP)
    server.wait_for("Running on", 4, timeout=60)  # two replacements became ready
    time.sleep(0.5)
    load.stop()
    assert load.failed == [] and load.ok > 20
    after = worker_pids(server)
    assert before.isdisjoint(after) and len(after) == 2
    assert server.close() == 0


def test_ttin_and_ttou_change_the_worker_count(cli: object) -> None:
    server = cli("-w", "1")  # type: ignore[operator]
    server.wait_for("Running on", 1)
    server.process.send_signal(signal.SIGTTIN)
    server.wait_for("Workers: 2")
    server.wait_for("Running on", 2)
    assert len(worker_pids(server)) == 2
    server.process.send_signal(signal.SIGTTOU)
    server.wait_for("Workers: 1")
    time.sleep(1.0)  # the oldest worker drains and exits
    assert len({server.pid() for _ in range(20)}) == 1
    assert server.close() == 0


def test_max_requests_recycles_workers_without_failures(cli: object) -> None:
    server = cli("-w", "1", "--max-requests", "10", "--max-requests-jitter", "5")  # type: ignore[operator]
    server.wait_for("Running on", 1)
    pids = [server.pid() for _ in range(40)]
    assert len(set(pids)) >= 2  # recycled at least once
    assert server.count("recycled itself") >= 1
    assert server.close() == 0


def test_crash_loop_stops_with_exit_code_1(cli: object) -> None:
    server = cli("-w", "1", env={"CRASH_AFTER_START": "1"})  # type: ignore[operator]
    code = server.process.wait(60)
    assert code == 1
    assert server.count("crash loop") == 1


@pytest.mark.parametrize("watcher", ["watchfiles", "polling"])
def test_reload_picks_up_an_edited_module(tmp_path: Path, watcher: str) -> None:
    if watcher == "watchfiles":
        pytest.importorskip("watchfiles")
    env = {**os.environ}
    env.pop("WATCHFILES_FORCE_POLLING", None)
    if watcher == "polling":
        env["WATCHFILES_FORCE_POLLING"] = "1"
    source = tmp_path / "live.py"
    template = textwrap.dedent("""
        async def app(scope, receive, send):
            if scope["type"] != "http":
                return
            await send({{"type": "http.response.start", "status": 200}})
            await send({{"type": "http.response.body", "body": b"{version}"}})
    """)
    source.write_text(template.format(version="v1"))
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hypercorn",
            "-b",
            f"127.0.0.1:{port}",
            "-w",
            "0",
            "--reload",
            "live:app",
        ],
        cwd=tmp_path,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        url = f"http://127.0.0.1:{port}/"
        deadline = time.monotonic() + 30
        text = ""
        while text != "v1":
            assert time.monotonic() < deadline
            try:
                text = httpx.get(url).text
            except httpx.HTTPError:
                time.sleep(0.1)
        source.write_text(template.format(version="v2"))
        later = time.time() + 2
        os.utime(source, (later, later))
        deadline = time.monotonic() + 30
        while text != "v2":
            assert time.monotonic() < deadline, text
            try:
                text = httpx.get(url).text
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
    finally:
        process.send_signal(signal.SIGTERM)
        assert process.wait(30) == 0


def test_daemon_detaches_writes_pid_file_and_stops_on_sigterm(tmp_path: Path) -> None:
    (tmp_path / "demo.py").write_text(APP)
    port = free_port()
    pid_file = tmp_path / "hypercorn.pid"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "hypercorn",
            "-D",
            "-p",
            str(pid_file),
            "-w",
            "0",
            "-b",
            f"127.0.0.1:{port}",
            "--error-logfile",
            str(tmp_path / "error.log"),
            "demo:app",
        ],
        cwd=tmp_path,
        timeout=20,
        capture_output=True,
    )
    assert result.returncode == 0  # returned at once, the server lives on
    deadline = time.monotonic() + 20
    while True:
        try:
            text = httpx.get(f"http://127.0.0.1:{port}/").text
            break
        except httpx.HTTPError:
            assert time.monotonic() < deadline
            time.sleep(0.1)
    daemon_pid = int(pid_file.read_text())
    assert text == str(daemon_pid)  # workers=0: the daemon itself serves
    os.kill(daemon_pid, signal.SIGTERM)
    deadline = time.monotonic() + 20
    while pid_file.exists():
        assert time.monotonic() < deadline
        time.sleep(0.1)
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"http://127.0.0.1:{port}/")


SLOW_APP = textwrap.dedent("""
    import anyio, os

    async def app(scope, receive, send):
        if scope["type"] != "http":
            return
        await anyio.sleep(30)  # a request that would hold the drain for a long time
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body", "body": b"late"})
""")


def test_second_signal_forces_exit(cli: object, tmp_path: Path) -> None:
    (tmp_path / "slow.py").write_text(SLOW_APP)
    port = free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "hypercorn",
            "-b",
            f"127.0.0.1:{port}",
            "-w",
            "1",
            "--graceful-timeout",
            "60",
            "slow:app",
        ],
        cwd=tmp_path,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while True:  # wait until it listens
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                assert time.monotonic() < deadline
                time.sleep(0.1)

        def request_cut_short() -> None:
            with pytest.raises(httpx.HTTPError):  # the forced exit ends it unanswered
                httpx.get(f"http://127.0.0.1:{port}/", timeout=30)

        thread = threading.Thread(target=request_cut_short, daemon=True)
        thread.start()
        time.sleep(0.5)
        process.send_signal(signal.SIGTERM)  # a drain that would take up to 60 s ...
        time.sleep(0.5)
        began = time.monotonic()
        process.send_signal(signal.SIGTERM)  # ... cut short by a second signal
        assert process.wait(10) == 1
        assert time.monotonic() - began < 5
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()


def test_workers_do_not_outlive_a_killed_supervisor(cli: object) -> None:
    server = cli("-w", "2")  # type: ignore[operator]
    server.wait_for("Running on", 2)
    workers = {int(pid) for pid in worker_pids(server)}
    assert len(workers) == 2
    server.process.kill()  # SIGKILL: the supervisor cannot tell anyone
    server.process.wait(10)
    deadline = time.monotonic() + 10
    for pid in workers:
        while True:
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            assert time.monotonic() < deadline, f"worker {pid} is an orphan"
            time.sleep(0.1)

"""Side-by-side benchmarks: this server against uvicorn[standard] (httptools + uvloop),
Granian and (for keep-alive) a bare uvloop protocol, in one run. Scenarios: HTTP/1.1
keep-alive and Connection: close hello world (wrk -c64), 1 MiB download and 1 MiB upload echo
(wrk -c16), WSGI hello world, WebSocket echo (bench/ws_load.py, 16 connections), and HTTP/2
as h2c and over TLS (h2load -c32 -m10; uvicorn has no HTTP/2). ``--long-run N``: RSS along N
requests.

    python bench/run.py [--duration 5] [--rounds 3] [--scenarios keep-alive,h2c,...] [--pure]

Each server runs one worker pinned to CPU 0 (`taskset`), the load runs pinned to CPU 1, on
loopback; rounds are interleaved (A B C D, A B C D, ...) so drift hits every server alike;
the table shows medians and each server's ratio to this one. Reference servers are installed
in their own virtualenvs under bench/.venvs (never Hypercorn itself). This server is measured
as its compiled build, as the container image ships it (``--pure``: the pure-Python build; see
setup.py); the table's header says which. Needs wrk, h2load, taskset and a C compiler.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
VENVS = HERE / ".venvs"
# What each server's virtualenv gets: this server from this checkout (with the fast extra:
# uvloop and httptools, as in the container image), the references from PyPI.
REFERENCES = {
    "hypercorn": ["-e", f"{ROOT}[fast]"],
    "hypercorn-compiled": [f"{ROOT}[fast]"],  # (its dependencies; the wheel is our_python's)
    "uvicorn": ["uvicorn[standard]"],
    "granian": ["granian"],
}
PYTHON = sys.executable  # every server runs on this interpreter (--python)
PURE = False  # --pure: this server's pure-Python build instead of the compiled one
_ours: Path | None = None


def our_python() -> Path:
    """This checkout's server. By default the compiled build (setup.py, as the container
    image ships it): a wheel built from the checkout on every run and installed in
    bench/.venvs/hypercorn-compiled-X.Y. With ``--pure``, the editable pure-Python install."""
    global _ours
    if _ours is not None:
        return _ours
    pure = venv_python("hypercorn")
    if PURE:
        _ours = pure
        return pure
    built = compiled_wheel(ROOT, VENVS / "dist")
    compiled = venv_python("hypercorn-compiled")
    install = [str(compiled), "-m", "pip", "install", "-q", "--force-reinstall", "--no-deps"]
    subprocess.run([*install, str(built)], check=True)
    _ours = compiled
    return compiled


def compiled_wheel(source: Path, dist: Path) -> Path:
    """The compiled wheel (HYPERCORN_COMPILE=1) of the source tree ``source``, built into
    ``dist`` (emptied first) by the pure-Python virtualenv."""
    pure = venv_python("hypercorn")
    # The build needs mypy (mypyc) and every import of the package, to type-check it.
    build = ["mypy>=1.10", "setuptools>=77", "wheel", "-e", f"{ROOT}[fast,trio,reload]"]
    subprocess.run([str(pure), "-m", "pip", "install", "-q", *build], check=True)
    shutil.rmtree(dist, ignore_errors=True)
    shutil.rmtree(source / "build", ignore_errors=True)  # (a stale build/lib.* ships old modules)
    wheel = [str(pure), "-m", "pip", "wheel", "-q", "--no-build-isolation", "--no-deps"]
    env = dict(os.environ, HYPERCORN_COMPILE="1")
    subprocess.run([*wheel, "-w", str(dist), str(source)], check=True, env=env)
    (built,) = dist.glob("hypercorn-*.whl")
    return built


def python_version() -> str:
    """``X.Y`` of the chosen interpreter; exits with a clear message when it cannot run."""
    try:
        probe = subprocess.run(
            [PYTHON, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
            capture_output=True,
            text=True,
        )
    except OSError as error:
        sys.exit(f"bench: --python {PYTHON}: cannot run it ({error})")
    if probe.returncode != 0:  # e.g. a pyenv shim with no version selected
        problem = probe.stderr.strip().splitlines()[:1] or [f"exit status {probe.returncode}"]
        sys.exit(f"bench: --python {PYTHON}: cannot run it ({problem[0]}); give its full path")
    return probe.stdout.strip()


def venv_python(name: str) -> Path:
    """A virtualenv with the server ``name`` on the chosen interpreter (created once)."""
    version = python_version()
    path = VENVS / f"{name}-{version}"
    python = path / "bin" / "python"
    if not python.exists():
        subprocess.run([PYTHON, "-m", "venv", str(path)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *REFERENCES[name]], check=True)
    return python


def cpu_model() -> str:
    """The CPU's name as the kernel reports it (a VM's host can change between runs)."""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "CPU model unknown"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def hypercorn_command(python: Path, port: int, wsgi: bool = False) -> list[str]:
    """This server as the benchmark runs it, on the interpreter ``python``."""
    module = "wsgi:hello_wsgi:app" if wsgi else "hello:app"
    listen = ["-w", "0", "-k", "uvloop", "-b", f"127.0.0.1:{port}"]
    return [str(python), "-m", "hypercorn", *listen, "--app-dir", str(HERE / "apps"), module]


def commands(port: int, wsgi: bool = False) -> dict[str, list[str]]:
    ours = our_python()
    module = "hello_wsgi:app" if wsgi else "hello:app"
    apps = str(HERE / "apps")
    return {
        "hypercorn": hypercorn_command(ours, port, wsgi),
        "uvicorn": [
            str(venv_python("uvicorn")),
            "-m",
            "uvicorn",
            "--app-dir",
            apps,
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--loop",
            "uvloop",
            "--http",
            "httptools",
            "--ws",
            "websockets",
            "--no-access-log",
            "--log-level",
            "warning",
            *(["--interface", "wsgi"] if wsgi else []),
            module,
        ],
        "granian": [
            str(venv_python("granian").parent / "granian"),
            "--interface",
            "wsgi" if wsgi else "asgi",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--workers",
            "1",
            "--working-dir",
            apps,
            module,
        ],
        "bare uvloop": [str(ours), str(HERE / "apps" / "bare_uvloop.py"), str(port)],
    }


def wrk(path: str, connections: int, *extra: str) -> Callable[[int, int], list[str]]:
    def command(port: int, duration: int) -> list[str]:
        return [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{duration}s",
            *extra,
            f"http://127.0.0.1:{port}{path}",
        ]

    return command


def h2load(scheme: str) -> Callable[[int, int], list[str]]:
    def command(port: int, duration: int) -> list[str]:
        return ["h2load", "-c32", "-m10", "-t1", f"-D{duration}", f"{scheme}://127.0.0.1:{port}/"]

    return command


CERTS = ROOT / "certs"


def certificates() -> tuple[str, str]:
    """The development certificate and key (``make certs``), made if missing."""
    cert, key = CERTS / "server.pem", CERTS / "server-key.pem"
    if not cert.exists() or not key.exists():
        subprocess.run([sys.executable, str(CERTS / "make_certs.py")], check=True)
    return str(cert), str(key)


def ws_load(port: int, duration: int) -> list[str]:
    return [sys.executable, str(HERE / "ws_load.py"), str(port), "16", str(duration)]


RATE = {
    "wrk": r"Requests/sec:\s+([\d.]+)",
    "h2load": r"finished in [\d.]+\w+, ([\d.]+) req/s",
    "ws": r"Messages/sec:\s+([\d.]+)",
}
# name: (load command, rate pattern, servers, WSGI app?)
SCENARIOS: dict[str, tuple[Callable[[int, int], list[str]], str, list[str], bool]] = {
    "keep-alive": (
        wrk("/", 64),
        RATE["wrk"],
        ["hypercorn", "uvicorn", "granian", "bare uvloop"],
        False,
    ),
    "connection-close": (
        wrk("/", 64, "-H", "Connection: close"),
        RATE["wrk"],
        ["hypercorn", "uvicorn", "granian"],
        False,
    ),
    "download-1mib": (wrk("/1mib", 16), RATE["wrk"], ["hypercorn", "uvicorn", "granian"], False),
    "upload-1mib": (
        wrk("/echo", 16, "-s", str(HERE / "apps" / "post1mib.lua")),
        RATE["wrk"],
        ["hypercorn", "uvicorn", "granian"],
        False,
    ),
    "wsgi": (wrk("/", 64), RATE["wrk"], ["hypercorn", "uvicorn", "granian"], True),
    "websocket": (ws_load, RATE["ws"], ["hypercorn", "uvicorn", "granian"], False),
    # uvicorn has no HTTP/2; Granian speaks h2c only with --http 2
    "h2c": (h2load("http"), RATE["h2load"], ["hypercorn", "granian"], False),
    # HTTP/2 over TLS (ALPN h2) with the development certificate (certs/make_certs.py)
    "h2-tls": (h2load("https"), RATE["h2load"], ["hypercorn", "granian"], False),
}


def wait_listening(port: int, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                return
        except OSError:
            if time.monotonic() > deadline:
                raise TimeoutError(f"nothing listening on {port}") from None
            time.sleep(0.1)


@contextlib.contextmanager
def running(
    command: list[str], port: int, env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """The server ``command`` pinned to CPU 0, listening on ``port``; stopped on exit."""
    server = subprocess.Popen(
        ["taskset", "-c", "0", *command],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env,
    )
    try:
        wait_listening(port)
        yield server
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()


def measure(scenario: str, name: str, duration: int) -> float:
    load, pattern, _, wsgi = SCENARIOS[scenario]
    port = free_port()
    command = commands(port, wsgi)[name]
    if scenario in ("h2c", "h2-tls") and name == "granian":
        command = [*command[:1], "--http", "2", *command[1:]]
        if scenario == "h2-tls":
            cert, key = certificates()
            command = [*command[:1], "--ssl-certificate", cert, "--ssl-keyfile", key, *command[1:]]
    if scenario in ("h2c", "h2-tls") and name == "hypercorn":
        # h2load opens no new connection after a GOAWAY: with the default of 1000 requests
        # per connection, 32 connections would stop after 32,000 requests, and the rate
        # reported would be 32,000 / duration whatever the server's speed.
        extra = ["--keep-alive-max-requests", "100000000"]
        if scenario == "h2-tls":
            cert, key = certificates()
            extra += ["--certfile", cert, "--keyfile", key]
        command = [*command[:-1], *extra, command[-1]]
    with running(command, port):
        subprocess.run(["taskset", "-c", "1", *load(port, 1)], capture_output=True)  # warm-up
        result = subprocess.run(
            ["taskset", "-c", "1", *load(port, duration)], capture_output=True, text=True
        )
        match = re.search(pattern, result.stdout)
        errors = re.search(
            r"Non-2xx or 3xx responses: (\d+)|Socket errors: (.*)|"
            r"(\d+) failed",
            result.stdout,
        )
        if errors and errors.group(0) != "0 failed":
            print(f"  {scenario} {name}: {errors.group(0)}", file=sys.stderr)
        return float(match.group(1)) if match else 0.0


def idle_rss(name: str, connections: int = 1000) -> float:
    """The server's RSS (MiB) holding ``connections`` idle keep-alive connections, each of
    which has made one request."""
    port = free_port()
    with running(commands(port)[name], port) as server, contextlib.ExitStack() as stack:
        sockets = []
        for _ in range(connections):
            sock = stack.enter_context(socket.create_connection(("127.0.0.1", port)))
            sock.sendall(b"GET / HTTP/1.1\r\nHost: a\r\n\r\n")
            sockets.append(sock)
        for sock in sockets:
            sock.settimeout(5)
            sock.recv(65536)
        time.sleep(1)
        return rss_mib(server.pid)


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


def long_run(total: int, warm_up: int = 100_000) -> tuple[list[tuple[int, float]], int]:
    """Serve ``total`` keep-alive requests (wrk, 64 connections, in 5 s slices) after
    ``warm_up`` requests; return (requests so far, RSS MiB) after each slice, and the number
    of failed requests. Connections are recycled every ``keep_alive_max_requests`` (1000),
    so this also churns connections."""
    port = free_port()
    samples: list[tuple[int, float]] = []
    failed = done = 0
    with running(commands(port)["hypercorn"], port) as server:
        while done < warm_up + total:
            result = subprocess.run(
                ["taskset", "-c", "1", *wrk("/", 64)(port, 5)], capture_output=True, text=True
            )
            match = re.search(r"(\d+) requests in", result.stdout)
            done += int(match.group(1)) if match else 0
            errors = re.search(r"Non-2xx or 3xx responses: (\d+)", result.stdout)
            failed += int(errors.group(1)) if errors else 0
            if done >= warm_up:
                samples.append((done - warm_up, rss_mib(server.pid)))
    return samples, failed


def print_long_run(total: int) -> None:
    samples, failed = long_run(total)
    base = samples[0][1]
    peak = max(rss for _, rss in samples)
    low = min(rss for _, rss in samples)
    print(f"\n| {total:,} keep-alive requests after a 100,000-request warm-up | RSS MiB |")
    print("|---|---:|")
    shown = samples[:: max(1, len(samples) // 8)]
    if shown[-1] is not samples[-1]:
        shown.append(samples[-1])
    for done, rss in shown:
        print(f"| after {done:,} | {rss:.1f} |")
    print(
        f"\nRSS after warm-up {base:.1f} MiB, lowest {low:.1f}, highest {peak:.1f} "
        f"({(peak / base - 1) * 100:+.1f}%), at the end {samples[-1][1]:.1f} "
        f"({(samples[-1][1] / base - 1) * 100:+.1f}%); {samples[-1][0]:,} requests, "
        f"{failed} non-2xx."
    )


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--scenarios",
        default=",".join(SCENARIOS),
        help="comma-separated, from: " + ", ".join(SCENARIOS),
    )
    parser.add_argument(
        "--no-memory",
        dest="memory",
        action="store_false",
        help="skip the idle-connections RSS measurement",
    )
    parser.add_argument(
        "--long-run",
        type=int,
        default=0,
        metavar="N",
        help="also serve N requests (e.g. 1000000) and report RSS along them",
    )
    parser.add_argument(
        "--python",
        default=sys.executable,
        help="the interpreter every server runs on (default: this one)",
    )
    parser.add_argument(
        "--pure",
        action="store_true",
        help="measure this server's pure-Python build (default: the compiled build)",
    )
    options = parser.parse_args()
    global PYTHON, PURE
    PYTHON = options.python
    PURE = options.pure
    for tool in ("wrk", "taskset", "h2load"):
        if shutil.which(tool) is None:
            print(f"bench: {tool} is not installed", file=sys.stderr)
            return 1
    python_version()  # (fails early, with the reason, if the interpreter cannot run)
    version = subprocess.run([PYTHON, "--version"], capture_output=True, text=True).stdout
    ours = subprocess.run(
        [str(our_python()), "-m", "hypercorn", "--version"], capture_output=True, text=True
    ).stdout
    print(
        f"\n{options.rounds} interleaved rounds of {options.duration}s per server, one worker "
        f"on CPU 0, the load generator on CPU 1 ({time.strftime('%Y-%m-%d')}, "
        f"{os.cpu_count()} CPUs ({cpu_model()}), {version.strip()}, {ours.strip()}). Rates are "
        "requests/s "
        f"(messages/s for websocket); the ratio is hypercorn's rate over the server's.\n"
    )
    print(
        "| scenario | "
        + " | ".join(["hypercorn", "uvicorn", "granian", "bare uvloop"])
        + " | vs best reference |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for scenario in options.scenarios.split(","):
        servers = SCENARIOS[scenario][2]
        results: dict[str, list[float]] = {name: [] for name in servers}
        for round_number in range(options.rounds):
            for name in servers:
                results[name].append(measure(scenario, name, options.duration))
                print(
                    f"{scenario} round {round_number + 1}: {name}: {results[name][-1]:.0f}",
                    file=sys.stderr,
                )
        medians = {name: statistics.median(values) for name, values in results.items()}
        ours = medians["hypercorn"]
        best = max((medians[n] for n in ("uvicorn", "granian") if n in medians), default=0)
        cells = []
        for name in ["hypercorn", "uvicorn", "granian", "bare uvloop"]:
            if name not in medians:
                cells.append("n/a")
            elif name == "hypercorn":
                cells.append(f"{ours:.0f}")
            else:
                ratio = ours / medians[name] if medians[name] else float("nan")
                cells.append(f"{medians[name]:.0f} ({ratio:.2f}x)")
        verdict = f"{ours / best:.2f}x" if best else "n/a"
        print(f"| {scenario} | " + " | ".join(cells) + f" | {verdict} |", flush=True)
    if options.memory:
        print("\n| memory: RSS with 1000 idle keep-alive connections | MiB | hypercorn / server |")
        print("|---|---:|---:|")
        rss = {
            name: statistics.median(idle_rss(name) for _ in range(options.rounds))
            for name in ("hypercorn", "uvicorn", "granian")
        }
        for name, value in rss.items():
            print(f"| {name} | {value:.1f} | {rss['hypercorn'] / value:.2f} |")
    if options.long_run:
        print_long_run(options.long_run)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Side-by-side HTTP/1.1 keep-alive benchmark: this server against uvicorn[standard]
(httptools + uvloop), Granian (ASGI interface) and a bare uvloop protocol, in one run.

    python bench/run.py [--duration 5] [--rounds 3] [--connections 64]

Each server runs one worker pinned to CPU 0 (`taskset`), wrk runs pinned to CPU 1, on
loopback; rounds are interleaved (A B C D, A B C D, ...) so drift hits every server alike;
the table shows medians and each server's ratio to this one. Reference servers are installed
in their own virtualenvs under bench/.venvs (never Hypercorn itself). Needs wrk and taskset.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
VENVS = HERE / ".venvs"
REFERENCES = {"uvicorn": ["uvicorn[standard]"], "granian": ["granian"]}


def venv_python(name: str) -> Path:
    """A virtualenv with the reference server ``name`` (created once)."""
    path = VENVS / name
    python = path / "bin" / "python"
    if not python.exists():
        subprocess.run([sys.executable, "-m", "venv", str(path)], check=True)
        subprocess.run([str(python), "-m", "pip", "install", "-q", *REFERENCES[name]],
                       check=True)
    return python


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def commands(port: int) -> dict[str, list[str]]:
    ours = ROOT / ".venv" / "bin" / "python"
    return {
        "hypercorn": [str(ours), "-m", "hypercorn", "-w", "0", "-k", "uvloop",
                      "-b", f"127.0.0.1:{port}", "--app-dir", str(HERE / "apps"), "hello:app"],
        "uvicorn": [str(venv_python("uvicorn")), "-m", "uvicorn", "--app-dir",
                    str(HERE / "apps"), "--host", "127.0.0.1", "--port", str(port),
                    "--loop", "uvloop", "--http", "httptools", "--no-access-log",
                    "--log-level", "warning", "hello:app"],
        "granian": [str(venv_python("granian").parent / "granian"), "--interface", "asgi",
                    "--host", "127.0.0.1", "--port", str(port), "--workers", "1",
                    "--working-dir", str(HERE / "apps"), "hello:app"],
        "bare uvloop": [str(ours), str(HERE / "apps" / "bare_uvloop.py"), str(port)],
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


def measure(name: str, duration: int, connections: int) -> float:
    port = free_port()
    command = ["taskset", "-c", "0", *commands(port)[name]]
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait_listening(port)
        subprocess.run(["taskset", "-c", "1", "wrk", "-t1", f"-c{connections}", "-d1s",
                        f"http://127.0.0.1:{port}/"], capture_output=True, check=True)  # warm-up
        result = subprocess.run(
            ["taskset", "-c", "1", "wrk", "-t1", f"-c{connections}", f"-d{duration}s",
             f"http://127.0.0.1:{port}/"], capture_output=True, text=True, check=True)
        match = re.search(r"Requests/sec:\s+([\d.]+)", result.stdout)
        errors = re.search(r"Non-2xx or 3xx responses: (\d+)|Socket errors: (.*)", result.stdout)
        if errors:
            print(f"  {name}: {errors.group(0)}", file=sys.stderr)
        return float(match.group(1)) if match else 0.0
    finally:
        server.terminate()
        try:
            server.wait(10)
        except subprocess.TimeoutExpired:
            server.kill()


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--connections", type=int, default=64)
    options = parser.parse_args()
    for tool in ("wrk", "taskset"):
        if shutil.which(tool) is None:
            print(f"bench: {tool} is not installed", file=sys.stderr)
            return 1
    names = list(commands(0))
    results: dict[str, list[float]] = {name: [] for name in names}
    for round_number in range(options.rounds):
        for name in names:
            results[name].append(measure(name, options.duration, options.connections))
            print(f"round {round_number + 1}: {name}: {results[name][-1]:.0f} req/s",
                  file=sys.stderr)
    medians = {name: statistics.median(values) for name, values in results.items()}
    ours = medians["hypercorn"]
    print(f"\nHTTP/1.1 keep-alive hello world, wrk -t1 -c{options.connections} "
          f"-d{options.duration}s, {options.rounds} interleaved rounds, one worker on CPU 0, "
          f"wrk on CPU 1 ({time.strftime('%Y-%m-%d')}, {os.cpu_count()} CPUs)\n")
    print("| server | median req/s | hypercorn / server |")
    print("|---|---:|---:|")
    for name in names:
        ratio = ours / medians[name] if medians[name] else float("nan")
        print(f"| {name} | {medians[name]:.0f} | {ratio:.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""This server's compiled build at two or more git revisions, timed side by side: has a change
made it faster? Each revision is built once (cached by commit and Python version in
bench/.venvs/ab/; ``.``, the working tree with its uncommitted changes, is rebuilt on every
run), then the builds take turns, round after round, in a rotating order, so that the
machine's drift falls on all of them alike. Reported per build: the median and best of its
rounds and its speed relative to the first build, both as the ratio of medians and as the
median of the per-round ratios.

    python bench/ab.py [--python python3.12] [--rounds 10] [--mode micro|wrk|instructions]
        [--micro-args="--h2"] REV [REV ...]

Modes: ``micro`` (default) runs ``micro_core.py`` on one CPU (microseconds per request, no
network: the least noisy timing); ``wrk`` serves the hello-world app on CPU 0 under
``wrk -t1 -c64`` on CPU 1 (requests/s, keep-alive); ``instructions`` counts machine
instructions per request with ``instructions.py`` (one round suffices: it does not drift).

Name one revision twice (``ab.py HEAD HEAD``) to see this machine's noise: on the 2-CPU
development VM a 4-round A/A run's per-round ratios spread from 0.83 to 1.14, so a difference
of a few percent needs many rounds, and fewer instructions do not always mean less time (see
bench/README.md, session 15).
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
from io import BytesIO
from pathlib import Path

import run
from run import (
    HERE,
    RATE,
    ROOT,
    VENVS,
    compiled_wheel,
    free_port,
    hypercorn_command,
    running,
    venv_python,
)

BUILDS = VENVS / "ab"


def commit_of(rev: str) -> str:
    result = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--verify", f"{rev}^{{commit}}"],
        capture_output=True,
        text=True,
    )
    if result.returncode != 0:
        sys.exit(f"ab: {rev!r} is not a revision of this repository")
    return result.stdout.strip()


def build(rev: str) -> Path:
    """A directory to put on PYTHONPATH that holds revision ``rev``'s compiled build."""
    version = run.python_version()  # (a build is for one interpreter)
    if rev == ".":
        target, source, scratch = BUILDS / f"worktree-{version}", ROOT, None
        shutil.rmtree(target, ignore_errors=True)
    else:
        commit = commit_of(rev)
        target = BUILDS / f"{commit[:12]}-{version}"
        if (target / "hypercorn").is_dir():
            return target
        scratch = tempfile.TemporaryDirectory(prefix="hypercorn-ab-")
        source = Path(scratch.name)
        archive = subprocess.run(
            ["git", "-C", str(ROOT), "archive", commit], capture_output=True, check=True
        ).stdout
        with tarfile.open(fileobj=BytesIO(archive)) as tar:
            tar.extractall(source, filter="data")
    try:
        print(f"ab: building {rev}", file=sys.stderr)
        wheel = compiled_wheel(source, BUILDS / "dist")
        python = venv_python("hypercorn-compiled")
        partial = target.with_name(target.name + ".partial")
        shutil.rmtree(partial, ignore_errors=True)
        install = [str(python), "-m", "pip", "install", "-q", "--no-deps", "--target"]
        subprocess.run([*install, str(partial), str(wheel)], check=True)
        partial.rename(target)  # (only a complete build is ever reused)
    finally:
        if scratch is not None:
            scratch.cleanup()
    return target


def environment(path: Path) -> dict[str, str]:
    return dict(os.environ, PYTHONPATH=str(path))


def check_build(path: Path) -> None:
    """The build on ``path`` is the one imported, and it is compiled."""
    probe = (
        "import hypercorn.protocol.h1fast as m, sys; "
        "print(m.__file__); sys.exit(not m.__file__.endswith('.so'))"
    )
    python = str(venv_python("hypercorn-compiled"))
    result = subprocess.run(
        [python, "-c", probe], env=environment(path), capture_output=True, text=True
    )
    if result.returncode != 0 or not result.stdout.startswith(str(path)):
        sys.exit(f"ab: the build in {path} is not what imports: {result.stdout}{result.stderr}")


def micro(path: Path, extra: list[str]) -> float:
    python = str(venv_python("hypercorn-compiled"))
    command = ["taskset", "-c", "1", python, str(HERE / "micro_core.py"), "--runs", "3", *extra]
    out = subprocess.run(
        command, env=environment(path), capture_output=True, text=True, check=True
    ).stdout
    return float(out.split()[0])


def instructions(path: Path, extra: list[str]) -> float:
    python = str(venv_python("hypercorn-compiled"))
    command = [python, str(HERE / "instructions.py"), *extra]
    out = subprocess.run(
        command, env=environment(path), capture_output=True, text=True, check=True
    ).stdout
    return float(out.split()[0].replace(",", ""))


def wrk(path: Path, duration: int) -> float:
    """The keep-alive scenario of ``make bench`` against the build in ``path``."""
    port = free_port()
    command = hypercorn_command(venv_python("hypercorn-compiled"), port)
    load = run.wrk("/", 64)
    with running(command, port, environment(path)):
        subprocess.run(["taskset", "-c", "1", *load(port, 1)], capture_output=True)  # warm-up
        out = subprocess.run(
            ["taskset", "-c", "1", *load(port, duration)], capture_output=True, text=True
        ).stdout
    match = re.search(RATE["wrk"], out)
    if match is None or float(match.group(1)) == 0:
        sys.exit(f"ab: wrk measured nothing against the build in {path}:\n{out}")
    return float(match.group(1))


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("revisions", nargs="+", metavar="REV")
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--mode", choices=("micro", "wrk", "instructions"), default="micro")
    parser.add_argument("--micro-args", default="", help="for micro_core.py, e.g. '--h2'")
    parser.add_argument("--duration", type=int, default=5, help="seconds of wrk per round")
    parser.add_argument("--python", default=sys.executable)
    options = parser.parse_args()
    run.PYTHON = options.python
    needed = {"micro": ["taskset"], "wrk": ["taskset", "wrk"], "instructions": ["valgrind"]}
    for tool in needed[options.mode]:
        if shutil.which(tool) is None:
            print(f"ab: {tool} is not installed", file=sys.stderr)
            return 1
    run.python_version()  # (fails early, with the reason, if the interpreter cannot run)
    if len(options.revisions) < 2:
        parser.error("name at least two revisions (the same one twice for an A/A run)")
    paths = {rev: build(rev) for rev in dict.fromkeys(options.revisions)}
    for path in paths.values():
        check_build(path)
    extra = options.micro_args.split()
    lower_is_better = options.mode != "wrk"
    names = [f"{i + 1}:{rev}" for i, rev in enumerate(options.revisions)]
    results: dict[str, list[float]] = {name: [] for name in names}
    rounds = 1 if options.mode == "instructions" else options.rounds
    for number in range(rounds):
        turn = number % len(names)
        for name in names[turn:] + names[:turn]:
            path = paths[name.split(":", 1)[1]]
            if options.mode == "micro":
                value = micro(path, extra)
            elif options.mode == "wrk":
                value = wrk(path, options.duration)
            else:
                value = instructions(path, extra)
            results[name].append(value)
        print(
            f"round {number + 1}: " + ", ".join(f"{n} {v[-1]:,.2f}" for n, v in results.items()),
            file=sys.stderr,
        )
    unit = {"micro": "us/request", "wrk": "requests/s", "instructions": "instructions/request"}
    first = results[names[0]]
    print(
        f"\n{rounds} rounds, {options.mode} ({unit[options.mode]}); "
        f"speed above 1: faster than {names[0]}\n"
    )
    print("| build | median | best | speed (medians) | speed (per round: median, range) |")
    print("|---|---:|---:|---:|---|")
    for name, values in results.items():
        best = min(values) if lower_is_better else max(values)
        pairs = [(a / b if lower_is_better else b / a) for a, b in zip(first, values, strict=True)]
        median = statistics.median(values)
        speed = (
            statistics.median(first) / median
            if lower_is_better
            else median / statistics.median(first)
        )
        spread = f"{statistics.median(pairs):.3f} ({min(pairs):.2f}-{max(pairs):.2f})"
        print(f"| {name} | {median:,.2f} | {best:,.2f} | {speed:.3f} | {spread} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())

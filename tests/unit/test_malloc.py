"""The allocator thresholds the command line fixes (hypercorn.malloc)."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from hypercorn.malloc import MMAP_THRESHOLD, TRIM_THRESHOLD, is_glibc, tune_allocator


class Recorder:
    def __init__(self, result: int = 1) -> None:
        self.calls: list[tuple[int, int]] = []
        self.result = result

    def __call__(self, param: int, value: int) -> int:
        self.calls.append((param, value))
        return self.result


def test_sets_both_thresholds() -> None:
    mallopt = Recorder()
    assert tune_allocator({}, mallopt)
    assert mallopt.calls == [(-3, MMAP_THRESHOLD), (-1, TRIM_THRESHOLD)]


@pytest.mark.parametrize(
    "environ",
    [
        {"MALLOC_TRIM_THRESHOLD_": "131072"},
        {"MALLOC_MMAP_THRESHOLD_": "65536"},
        {"MALLOC_TOP_PAD_": "0"},
        {"GLIBC_TUNABLES": "glibc.malloc.trim_threshold=131072"},
    ],
)
def test_an_operators_setting_wins(environ: dict[str, str]) -> None:
    mallopt = Recorder()
    assert not tune_allocator(environ, mallopt)
    assert mallopt.calls == []


def test_unrelated_tunables_do_not_disable_it() -> None:
    mallopt = Recorder()
    assert tune_allocator({"GLIBC_TUNABLES": "glibc.pthread.rseq=0"}, mallopt)


def test_a_refused_setting_is_reported() -> None:
    assert not tune_allocator({}, Recorder(result=0))


# Three megabyte buffers made and freed per "request", as a 1 MiB response makes them. Under
# glibc's moving thresholds the heap grows for them and is trimmed again every time, so every
# request page-faults through all three; with the fixed thresholds they are reused.
_CHURN = textwrap.dedent(
    """
    import resource, sys
    from hypercorn.malloc import tune_allocator
    if sys.argv[1] == "tuned":
        assert tune_allocator()
    first = b"x" * (1 << 20)
    del first
    def request():
        a = b"a" * (1 << 20); b = b"b" * (1 << 20); c = b"c" * (1 << 20)
        del a, b, c
    request()
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    for _ in range(20):
        request()
    print(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    """
)


def _faults(mode: str) -> int:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    env.pop("GLIBC_TUNABLES", None)
    out = subprocess.run(
        [sys.executable, "-c", _CHURN, mode], env=env, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    return int(out.stdout)


@pytest.mark.skipif(not is_glibc(), reason="glibc's allocator")
def test_megabyte_buffers_are_reused_not_refaulted() -> None:
    default, tuned = _faults("default"), _faults("tuned")
    pages = 20 * 3 * (1 << 20) // os.sysconf("SC_PAGE_SIZE")
    assert default > pages // 2, f"glibc's default no longer churns ({default} faults)"
    assert tuned < pages // 20, f"{tuned} page faults in 20 requests with fixed thresholds"


def test_the_command_line_tunes_before_loading_the_application(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from hypercorn import run
    from hypercorn.config import Config

    order: list[str] = []
    monkeypatch.setattr(run, "tune_allocator", lambda: order.append("tuned") or True)

    def load(config: Config) -> tuple[None, int]:
        order.append("loaded")
        return None, 3

    monkeypatch.setattr(run, "_load", load)
    config = Config(app="nowhere:app")
    assert run._serve(config, None, lambda sleep: sleep) == 3  # (never serves: no trigger)
    assert order == ["tuned", "loaded"]

"""The compiled build (setup.py, ``HYPERCORN_COMPILE=1``) is what it says it is.

``make test`` runs the suite on the pure-Python package; ``make test-compiled`` runs it again
on a wheel built with mypyc, with ``HYPERCORN_EXPECT_COMPILED=1``. Each run checks that it
tests the build it means to (a stale extension module beside the sources would make the pure
run test compiled code, a failed compilation would make the compiled run test Python).
"""

from __future__ import annotations

import ast
import importlib
import os
import subprocess
import sys
from importlib.machinery import EXTENSION_SUFFIXES
from pathlib import Path

from hypercorn.__about__ import compiled

ROOT = Path(__file__).resolve().parents[2]
EXPECT_COMPILED = os.environ.get("HYPERCORN_EXPECT_COMPILED") == "1"


def compiled_paths() -> list[str]:
    """setup.py's ``COMPILED`` list (read, not imported: importing it would run setup())."""
    tree = ast.parse((ROOT / "setup.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and getattr(node.targets[0], "id", None) == "COMPILED":
            paths = ast.literal_eval(node.value)
            assert isinstance(paths, list) and paths
            return paths
    raise AssertionError("setup.py has no COMPILED list")


def module_name(path: str) -> str:
    return path.removesuffix(".py").replace("/", ".")


def test_every_listed_module_is_built_as_this_run_expects() -> None:
    for path in compiled_paths():
        module = importlib.import_module(module_name(path))
        is_extension = (module.__file__ or "").endswith(tuple(EXTENSION_SUFFIXES))
        assert is_extension is EXPECT_COMPILED, module.__file__
    assert compiled() is EXPECT_COMPILED


def test_version_says_which_build() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "hypercorn", "--version"], capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    build = "(compiled)" if EXPECT_COMPILED else "(pure Python)"
    assert result.stdout.strip().endswith(build), result.stdout


def test_compiled_modules_have_no_coroutines() -> None:
    """mypyc's coroutines pass a cancellation on to what they await with the three-argument
    ``throw()``, deprecated since Python 3.12: a cancelled request would raise
    DeprecationWarning (an error under ``-W error``) instead of CancelledError. So the
    compiled modules are the synchronous ones (the protocol core, the asyncio driver's
    callbacks); the coroutines that run applications stay interpreted."""
    for path in compiled_paths():
        tree = ast.parse((ROOT / "src" / path).read_text())
        coroutines = [
            node.name for node in ast.walk(tree) if isinstance(node, ast.AsyncFunctionDef)
        ]
        assert coroutines == [], f"{path}: {coroutines}"

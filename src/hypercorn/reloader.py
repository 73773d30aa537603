"""``--reload``: restart workers when the application's source files change.

The supervisor watches the source tree (``app_dir``, else the working directory) for ``.py``
files (and TOML/JSON/YAML next to them), skipping virtualenvs, ``site-packages``, caches,
``node_modules`` and dotfiles. With `watchfiles <https://watchfiles.helpmanual.io>`_ installed
(the ``reload`` extra) it is told about changes by the OS (inotify and friends); without it,
or when ``WATCHFILES_FORCE_POLLING`` is set (bind mounts from some hosts never deliver
inotify events), the tree is polled for modification times once a second. Workers are then
replaced one at a time like SIGHUP, so the new code is imported fresh. Development only.
"""

from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Any, Protocol

WATCHED_SUFFIXES = {".py", ".toml", ".json", ".yaml", ".yml"}
SKIPPED_DIRECTORIES = {
    "__pycache__",
    "node_modules",
    "site-packages",
    "venv",
    "env",
    ".venv",
    "build",
    "dist",
}
POLL_INTERVAL = 1.0


def is_watched(path: Path, root: Path) -> bool:
    """The same rule :func:`source_files` applies while walking, for one path."""
    if path.suffix not in WATCHED_SUFFIXES:
        return False
    try:
        parts = path.relative_to(root).parts
    except ValueError:
        return False
    directory = root
    for part in parts[:-1]:
        directory = directory / part
        if (
            part.startswith(".")
            or part in SKIPPED_DIRECTORIES
            or (directory / "pyvenv.cfg").exists()
        ):
            return False
    return not parts[-1].startswith(".")


def source_files(root: Path) -> dict[Path, float]:
    """Map every watched file under ``root`` to its modification time."""
    found: dict[Path, float] = {}
    for directory, subdirectories, files in os.walk(root):
        subdirectories[:] = [
            name
            for name in subdirectories
            if not name.startswith(".")
            and name not in SKIPPED_DIRECTORIES
            and not (Path(directory) / name / "pyvenv.cfg").exists()
        ]
        for name in files:
            path = Path(directory) / name
            if name.startswith(".") or path.suffix not in WATCHED_SUFFIXES:
                continue
            try:
                found[path] = path.stat().st_mtime
            except OSError:
                continue
    return found


class ChangeDetector(Protocol):
    def changed(self) -> bool:
        """True once after the watched tree changed."""

    def close(self) -> None: ...


def make_reloader(root: Path) -> ChangeDetector:
    """watchfiles when it is installed and polling is not forced; polling otherwise."""
    if not os.environ.get("WATCHFILES_FORCE_POLLING"):
        try:
            import watchfiles  # noqa: F401
        except ImportError:
            pass
        else:
            return WatchfilesReloader(root)
    return Reloader(root)


class WatchfilesReloader:
    """Change notifications from watchfiles, collected by a background thread."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._changed = threading.Event()
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="hypercorn-reload", daemon=True)
        self._thread.start()
        self._ready.wait(5)

    def _watch(self) -> None:
        import watchfiles

        def watch_filter(change: Any, path: str) -> bool:
            return is_watched(Path(path), self.root)

        self._ready.set()
        for _ in watchfiles.watch(
            self.root, watch_filter=watch_filter, stop_event=self._stop, debounce=200
        ):
            self._changed.set()

    def changed(self) -> bool:
        if self._changed.is_set():
            self._changed.clear()
            return True
        return False

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)


class Reloader:
    """Tells the supervisor when the watched tree changed (polled, at most once a second)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.files = source_files(root)
        self.next_check = time.monotonic() + POLL_INTERVAL

    def changed(self) -> bool:
        now = time.monotonic()
        if now < self.next_check:
            return False
        self.next_check = now + POLL_INTERVAL
        current = source_files(self.root)
        if current != self.files:
            self.files = current
            return True
        return False

    def close(self) -> None:
        pass

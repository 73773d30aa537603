"""``--reload``: restart workers when the application's source files change.

The supervisor polls the source tree (``app_dir``, else the working directory) once a second
for ``.py`` files (and TOML/JSON/YAML next to them) whose modification time changed, skipping
virtualenvs, ``site-packages``, caches, ``node_modules`` and dotfiles, so edits in a bind mount
are seen in containers too (where inotify often is not). Workers are then replaced one at a
time like SIGHUP, so the new code is imported fresh. Development only.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

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

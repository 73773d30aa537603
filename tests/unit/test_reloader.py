"""What the reloader watches, and what it leaves alone."""

from __future__ import annotations

import os
import time
from pathlib import Path

from hypercorn.reloader import Reloader, source_files


def test_watches_sources_and_skips_environments_caches_and_dotfiles(tmp_path: Path) -> None:
    for relative in [
        "app.py",
        "pkg/mod.py",
        "pkg/settings.toml",
        "pkg/readme.txt",
        ".venv/lib/x.py",
        "venv/bin/y.py",
        "node_modules/z.py",
        "pkg/__pycache__/mod.cpython-311.py",
        ".git/hook.py",
        ".hidden.py",
        "otherenv/pyvenv.cfg",
        "otherenv/lib/w.py",
    ]:
        path = tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text("x = 1\n")
    found = {path.relative_to(tmp_path).as_posix() for path in source_files(tmp_path)}
    assert found == {"app.py", "pkg/mod.py", "pkg/settings.toml"}


def test_reloader_reports_a_change_once(tmp_path: Path) -> None:
    module = tmp_path / "app.py"
    module.write_text("x = 1\n")
    reloader = Reloader(tmp_path)
    reloader.next_check = 0
    assert not reloader.changed()
    later = time.time() + 5
    os.utime(module, (later, later))
    reloader.next_check = 0
    assert reloader.changed()
    reloader.next_check = 0
    assert not reloader.changed()
    (tmp_path / "new.py").write_text("")
    reloader.next_check = 0
    assert reloader.changed()

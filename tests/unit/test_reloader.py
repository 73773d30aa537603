"""What the reloader watches, and what it leaves alone."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from hypercorn.reloader import (
    ChangeDetector,
    Reloader,
    WatchfilesReloader,
    is_watched,
    make_reloader,
    source_files,
)


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


def test_is_watched_matches_the_walk(tmp_path: Path) -> None:
    (tmp_path / "otherenv").mkdir()
    (tmp_path / "otherenv" / "pyvenv.cfg").write_text("")
    assert is_watched(tmp_path / "pkg" / "mod.py", tmp_path)
    assert is_watched(tmp_path / "settings.toml", tmp_path)
    for relative in [
        "readme.txt",
        ".hidden.py",
        "node_modules/z.py",
        ".git/hook.py",
        "pkg/__pycache__/m.py",
        "otherenv/lib/w.py",
    ]:
        assert not is_watched(tmp_path / relative, tmp_path), relative
    assert not is_watched(Path("/elsewhere/app.py"), tmp_path)


def wait_changed(reloader: ChangeDetector, timeout: float = 5.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if reloader.changed():
            return True
        time.sleep(0.05)
    return False


def test_watchfiles_reloader_reports_source_changes_only(tmp_path: Path) -> None:
    pytest.importorskip("watchfiles")
    module = tmp_path / "app.py"
    module.write_text("x = 1\n")
    (tmp_path / "node_modules").mkdir()
    reloader = make_reloader(tmp_path)
    assert isinstance(reloader, WatchfilesReloader)
    try:
        (tmp_path / "node_modules" / "dep.py").write_text("y = 1\n")
        (tmp_path / "notes.txt").write_text("nothing to reload\n")
        assert not wait_changed(reloader, timeout=1.0)
        module.write_text("x = 2\n")
        assert wait_changed(reloader)
        assert not reloader.changed()  # reported once
    finally:
        reloader.close()


def test_polling_is_used_when_forced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("WATCHFILES_FORCE_POLLING", "1")
    assert isinstance(make_reloader(tmp_path), Reloader)

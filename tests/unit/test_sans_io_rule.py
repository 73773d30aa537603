"""The protocol core stays free of I/O: no event loop, socket, TLS or clock imports."""

from __future__ import annotations

import ast
from pathlib import Path

import hypercorn.protocol

FORBIDDEN = {"asyncio", "trio", "socket", "ssl", "time", "selectors", "threading", "anyio"}


def test_protocol_package_imports_no_io_modules() -> None:
    package = Path(hypercorn.protocol.__file__).parent
    offenders = []
    for path in package.rglob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            offenders += [
                f"{path.name}: {name}" for name in names if name.split(".")[0] in FORBIDDEN
            ]
    assert offenders == []

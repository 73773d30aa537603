"""The optional compiled build: ``HYPERCORN_COMPILE=1`` compiles the HTTP/1.1 hot path with
mypyc (the compiler that ships with mypy) into C extensions; without it (the default) the
package is pure Python. The sources are the same either way: mypyc compiles the type-checked
modules as they are, and the test suite runs against both builds (``make test-compiled``).
How to build it (the build environment needs mypy and every import of the package): README,
"The compiled build". Everything else (metadata, dependencies) is in pyproject.toml.
"""

from __future__ import annotations

import os

from setuptools import setup

# The synchronous modules every HTTP/1.1 request passes through (bench/README.md, session 8).
# A compiled class cannot have interpreted subclasses: their subclasses are listed too.
# No coroutines here (tests/unit/test_compiled.py says why and checks it).
COMPILED = [
    "hypercorn/_headers.py",
    "hypercorn/protocol/events.py",
    "hypercorn/protocol/h1common.py",
    "hypercorn/protocol/h1fast.py",
    "hypercorn/protocol/h11.py",
    "hypercorn/protocol/http_stream.py",
    "hypercorn/protocol/connection.py",
    "hypercorn/protocol/hpack_encoder.py",
    "hypercorn/protocol/hpack_decoder.py",
    "hypercorn/protocol/core_settings.py",
    "hypercorn/protocol/connection_info.py",
    "hypercorn/protocol/h2.py",
    "hypercorn/asyncio/tcp_server.py",
]


def ext_modules() -> list[object]:
    if os.environ.get("HYPERCORN_COMPILE", "0") in ("", "0"):
        return []
    from mypyc.build import mypycify

    here = os.path.dirname(os.path.abspath(__file__))
    return list(
        mypycify(
            [os.path.join("src", path) for path in COMPILED],
            opt_level="3",
            group_name="hypercorn",
            target_dir=os.path.join(here, "build", "mypyc"),
        )
    )


setup(ext_modules=ext_modules())

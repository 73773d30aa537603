"""hypercorn.utils and hypercorn.events, including the seeds' examples."""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from hypercorn.app_wrappers import ASGIWrapper, WSGIWrapper
from hypercorn.config import Config
from hypercorn.events import Closed, Event, RawData, Updated
from hypercorn.utils import (
    LifespanFailureError,
    LifespanTimeoutError,
    NoAppError,
    ShutdownError,
    build_and_validate_headers,
    check_for_updates,
    check_multiprocess_shutdown_event,
    files_to_watch,
    filter_pseudo_headers,
    is_asgi,
    load_application,
    parse_socket_addr,
    raise_shutdown,
    repr_socket_addr,
    suppress_body,
    valid_server_name,
    wrap_app,
    write_pid_file,
)


async def asgi_app(scope: Any, receive: Any, send: Any) -> None:
    pass


def wsgi_app(environ: Any, start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"Hello from WSGI"]


class ASGIClass:
    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        pass


def test_is_asgi_and_wrap_app_as_in_the_seeds() -> None:
    assert is_asgi(asgi_app) and is_asgi(ASGIClass())
    assert not is_asgi(wsgi_app)
    assert isinstance(wrap_app(asgi_app, 16 * 1024 * 1024), ASGIWrapper)
    wrapped = wrap_app(wsgi_app, 16 * 1024 * 1024)
    assert isinstance(wrapped, WSGIWrapper) and wrapped.max_body_size == 16 * 1024 * 1024
    assert isinstance(wrap_app(asgi_app, 1, mode="wsgi"), WSGIWrapper)
    assert wrap_app(wrapped, 1) is wrapped
    with pytest.raises(ValueError, match="mode"):
        wrap_app(asgi_app, 1, mode="rsgi")


def test_load_application_forms(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "mymod.py").write_text(
        "async def app(scope, receive, send):\n    pass\n"
        "def create_app(name='x'):\n    return app\n"
        "class ns:\n    inner = app\n"
        "def wsgi(environ, start_response):\n    return []\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    assert isinstance(load_application("mymod", 1), ASGIWrapper)
    assert isinstance(load_application("mymod:app", 1), ASGIWrapper)
    assert isinstance(load_application("mymod:create_app()", 1), ASGIWrapper)
    assert isinstance(load_application("mymod:create_app('y')", 1), ASGIWrapper)
    assert isinstance(load_application("mymod:ns.inner", 1), ASGIWrapper)
    assert isinstance(load_application("mymod:wsgi", 1), WSGIWrapper)
    assert isinstance(load_application("wsgi:mymod:app", 1), WSGIWrapper)
    assert isinstance(load_application(str(tmp_path / "mymod.py") + ":app", 1), ASGIWrapper)


def test_load_application_errors_say_what_was_not_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "broken.py").write_text("import not_a_real_dependency_xyz\napp = 1\n")
    (tmp_path / "fine.py").write_text("value = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(NoAppError, match="module 'nope_module' not found"):
        load_application("nope_module:app", 1)
    with pytest.raises(NoAppError, match="'fine' has no attribute 'app'"):
        load_application("fine:app", 1)
    with pytest.raises(NoAppError, match="is int, not an ASGI or WSGI application"):
        load_application("fine:value", 1)
    with pytest.raises(NoAppError, match=r"file .*missing\.py not found"):
        load_application(str(tmp_path / "missing.py"), 1)
    # A missing dependency *inside* the app is the app's error, not "module not found".
    with pytest.raises(ModuleNotFoundError, match="not_a_real_dependency_xyz"):
        load_application("broken:app", 1)


def test_files_to_watch_and_check_for_updates(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = tmp_path / "watched_module_xyz.py"
    module.write_text("x = 1\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    import watched_module_xyz  # noqa: F401

    files = files_to_watch()
    assert module in files
    assert not check_for_updates(files)
    later = time.time() + 10
    os.utime(module, (later, later))
    assert check_for_updates(files)
    del sys.modules["watched_module_xyz"]


def test_write_pid_file(tmp_path: Path) -> None:
    path = tmp_path / "pid"
    write_pid_file(str(path))
    assert path.read_text() == str(os.getpid())


def test_socket_addresses_as_in_the_seeds() -> None:
    assert parse_socket_addr(socket.AF_INET, ("192.168.1.100", 8000)) == ("192.168.1.100", 8000)
    assert parse_socket_addr(socket.AF_INET6, ("::1", 8000, 0, 0)) == ("::1", 8000)
    # uvloop gives no peer name for a client that reset before connection_made (found by the
    # soak run: the connection callback raised).
    assert parse_socket_addr(socket.AF_INET, None) is None
    assert parse_socket_addr(socket.AF_UNIX, "/tmp/s") is None
    assert repr_socket_addr(socket.AF_INET, ("192.168.1.100", 8000)) == "192.168.1.100:8000"
    assert repr_socket_addr(socket.AF_INET6, ("::1", 8000, 0, 0)) == "[::1]:8000"
    assert repr_socket_addr(socket.AF_UNIX, "/tmp/s") == "unix:/tmp/s"


def test_headers_as_in_the_seeds() -> None:
    headers = build_and_validate_headers({"content-type": "text/html", "server": "hypercorn"})
    assert headers == [(b"content-type", b"text/html"), (b"server", b"hypercorn")]
    assert build_and_validate_headers([(b"X-A", b"1")]) == [(b"x-a", b"1")]
    for bad in ([(b":status", b"200")], [(b"bad header", b"v")], [(b"x", b"a\r\nb")]):
        with pytest.raises(ValueError, match=r"not allowed|Invalid header"):
            build_and_validate_headers(bad)
    with pytest.raises(TypeError):
        build_and_validate_headers([(1, b"v")])  # type: ignore[list-item]


def test_validated_header_cache_gives_the_same_answers() -> None:
    """Pairs seen before come from a cache: the answers (and the errors) must not change,
    whatever the shape of the pair, and the cache stays bounded."""
    from hypercorn import _headers

    good = [(b"X-A", b" 1 "), ("x-b", "2"), [b"x-c", b"3"]]
    expected = [(b"x-a", b"1"), (b"x-b", b"2"), (b"x-c", b"3")]
    for _ in range(3):  # first validated, then cached (lists are never cached)
        assert build_and_validate_headers(good) == expected  # type: ignore[arg-type]
    assert ("x-b", "2") in _headers._VALIDATED and (b"X-A", b" 1 ") in _headers._VALIDATED
    for _ in range(2):  # a bad pair is never cached, so it fails every time
        with pytest.raises(ValueError, match="Invalid header value"):
            build_and_validate_headers([(b"x", b"a\nb")])
        with pytest.raises(TypeError):
            build_and_validate_headers([(b"x", [1])])  # type: ignore[list-item]
    assert (b"x", b"a\nb") not in _headers._VALIDATED
    long_value = b"v" * (_headers._CACHED_PAIR_SIZE + 1)
    assert build_and_validate_headers([(b"x-long", long_value)]) == [(b"x-long", long_value)]
    assert (b"x-long", long_value) not in _headers._VALIDATED
    for number in range(_headers._CACHED_PAIRS * 2):
        build_and_validate_headers([(b"content-length", str(number).encode())])
    assert len(_headers._VALIDATED) <= _headers._CACHED_PAIRS
    http2_headers = [
        (b":method", b"GET"),
        (b":path", b"/test"),
        (b"user-agent", b"test-client"),
        (b":authority", b"example.com"),
    ]
    assert filter_pseudo_headers(http2_headers) == [(b"user-agent", b"test-client")]


@pytest.mark.parametrize(
    ("method", "status", "suppress"),
    [
        ("HEAD", 200, True),
        ("GET", 204, True),
        ("GET", 304, True),
        ("GET", 200, False),
        ("POST", 201, False),
        ("GET", 103, True),
    ],
)
def test_suppress_body(method: str, status: int, suppress: bool) -> None:
    assert suppress_body(method, status) is suppress


def test_valid_server_name_as_in_the_seeds() -> None:
    config = Config()
    config.server_names = ["example.com", "*.example.com", "api.service.local"]

    class MockRequest:
        def __init__(self, host: str) -> None:
            self.headers = {"host": host}

    results = {
        host: valid_server_name(config, MockRequest(host))
        for host in [
            "example.com",
            "api.example.com",
            "invalid.com",
            "api.service.local",
            "EXAMPLE.com:8080",
        ]
    }
    assert results == {
        "example.com": True,
        "api.example.com": True,
        "invalid.com": False,
        "api.service.local": True,
        "EXAMPLE.com:8080": True,
    }
    assert valid_server_name(config, [(b"host", b"example.com")])
    assert valid_server_name(Config(), MockRequest("anything"))  # no names: everything served


def test_raise_shutdown_and_multiprocess_event() -> None:
    async def trigger() -> None:
        return None

    with pytest.raises(ShutdownError):
        asyncio.run(raise_shutdown(trigger))
    event = multiprocessing.get_context("spawn").Event()
    event.set()
    asyncio.run(asyncio.wait_for(check_multiprocess_shutdown_event(event, asyncio.sleep), 2))


def test_lifespan_errors_carry_stage() -> None:
    assert LifespanTimeoutError("startup").stage == "startup"
    error = LifespanFailureError("shutdown", "db gone")
    assert (error.stage, error.message) == ("shutdown", "db gone")
    assert "db gone" in str(error)


def test_events_as_in_the_seeds() -> None:
    data = RawData(b"GET / HTTP/1.1\r\n\r\n")
    assert data.address is None and isinstance(data, Event)
    assert RawData(b"x", ("127.0.0.1", 5)).address == ("127.0.0.1", 5)
    assert Updated(idle=True).idle and isinstance(Closed(), Event)
    assert all(issubclass(kind, Event) for kind in (RawData, Closed, Updated))


def test_public_api_names_exist() -> None:
    import hypercorn
    import hypercorn.config
    import hypercorn.typing

    assert hypercorn.Config is hypercorn.config.Config
    assert isinstance(hypercorn.__version__, str)
    for name in ["Sockets", "SocketTypeError", "time"]:
        assert hasattr(hypercorn.config, name)
    for name in [
        "HTTPScope",
        "WebsocketScope",
        "LifespanScope",
        "ASGIFramework",
        "WSGIFramework",
        "Framework",
        "ASGIReceiveEvent",
        "ASGISendEvent",
    ]:
        assert hasattr(hypercorn.typing, name)

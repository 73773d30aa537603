"""WSGI (PEP 3333) end to end, and a real Flask application."""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import RunningServer

Serve = Callable[..., RunningServer]


def wsgi_app(environ: dict[str, Any], start_response: Any) -> Any:
    path = environ["PATH_INFO"]
    if path == "/echo":
        length = int(environ.get("CONTENT_LENGTH") or 0)
        body = environ["wsgi.input"].read(length) if length else environ["wsgi.input"].read()
        start_response("200 OK", [("Content-Type", "application/octet-stream")])
        return [body]
    if path == "/lines":
        lines = list(environ["wsgi.input"])
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [str(len(lines)).encode()]
    if path == "/write":
        write = start_response("200 OK", [("Content-Type", "text/plain")])
        write(b"written ")
        return [b"and returned"]
    if path == "/empty":
        start_response("204 No Content", [])
        return []
    if path == "/generator":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return (f"{i},".encode() for i in range(5))
    if path == "/exc-info":
        try:
            raise ValueError("before headers")
        except ValueError:
            import sys

            start_response("200 OK", [])
            start_response("503 Service Unavailable", [("Retry-After", "1")], sys.exc_info())
            return [b"replaced"]
    if path == "/crash":
        raise RuntimeError("wsgi boom")
    if path == "/file":
        import io

        start_response("200 OK", [])
        return environ["wsgi.file_wrapper"](io.BytesIO(b"x" * 200_000), 8192)
    if path == "/environ":
        start_response("200 OK", [("Content-Type", "text/plain")])
        keys = [
            "REQUEST_METHOD",
            "SCRIPT_NAME",
            "PATH_INFO",
            "QUERY_STRING",
            "SERVER_PROTOCOL",
            "wsgi.url_scheme",
            "HTTP_X_CUSTOM",
            "REMOTE_ADDR",
        ]
        return ["|".join(str(environ.get(key)) for key in keys).encode()]
    start_response("404 Not Found", [])
    return [b""]


class ClosingIterable:
    closed = threading.Event()

    def __init__(self, environ: Any, start_response: Any) -> None:
        start_response("200 OK", [])

    def __iter__(self) -> Iterator[bytes]:
        yield b"a"
        yield b"b"

    def close(self) -> None:
        ClosingIterable.closed.set()


@pytest.fixture
def server(serve: Serve) -> RunningServer:
    return serve(wsgi_app, wsgi_max_body_size=1024 * 1024)


_WSGI_VAR: contextvars.ContextVar[str] = contextvars.ContextVar("wsgi_var", default="none")


def _context_wsgi_app(environ: dict[str, Any], start_response: Any) -> Any:
    seen = _WSGI_VAR.get()
    _WSGI_VAR.set(environ["PATH_INFO"])
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [seen.encode()]


def test_wsgi_requests_do_not_share_context_variables(serve: Serve) -> None:
    """The worker threads are reused: a context variable one WSGI request sets must not be
    seen by the next one running on the same thread."""
    server = serve(_context_wsgi_app, mode="wsgi")
    with httpx.Client() as client:
        seen = [client.get(f"{server.url}/{i}").text for i in range(8)]
    assert seen == ["none"] * 8


def test_wsgi_echo_and_streamed_input(server: RunningServer) -> None:
    assert httpx.post(server.url + "/echo", content=b"payload").content == b"payload"
    chunks = iter([b"line1\nli", b"ne2\n", b"line3"])
    assert httpx.post(server.url + "/lines", content=chunks).text == "3"


def test_wsgi_write_callable_generator_and_empty(server: RunningServer) -> None:
    assert httpx.get(server.url + "/write").text == "written and returned"
    assert httpx.get(server.url + "/generator").text == "0,1,2,3,4,"
    response = httpx.get(server.url + "/empty")
    assert response.status_code == 204 and response.content == b""


def test_wsgi_exc_info_replaces_unsent_response(server: RunningServer) -> None:
    response = httpx.get(server.url + "/exc-info")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"


def test_wsgi_crash_gives_500_and_server_continues(server: RunningServer) -> None:
    assert httpx.get(server.url + "/crash").status_code == 500
    assert httpx.get(server.url + "/generator").status_code == 200


def test_wsgi_file_wrapper(server: RunningServer) -> None:
    assert httpx.get(server.url + "/file").content == b"x" * 200_000


def test_wsgi_environ(server: RunningServer) -> None:
    text = httpx.get(server.url + "/environ?a=1", headers={"X-Custom": "yes"}).text
    assert text == "GET||/environ|a=1|HTTP/1.1|http|yes|127.0.0.1"


def test_wsgi_body_limit_gives_413(server: RunningServer) -> None:
    assert httpx.post(server.url + "/echo", content=b"x" * (1024 * 1024 + 1)).status_code == 413
    streamed = iter([b"x" * 600_000, b"x" * 600_000])
    assert httpx.post(server.url + "/echo", content=streamed).status_code == 413


def test_wsgi_iterable_close_is_called(serve: Serve) -> None:
    ClosingIterable.closed.clear()
    server = serve(ClosingIterable)
    assert httpx.get(server.url).text == "ab"
    assert ClosingIterable.closed.wait(5)


def test_mode_wsgi_forces_wrapping(serve: Serve) -> None:
    class Ambiguous:
        def __call__(self, environ: Any, start_response: Any) -> list[bytes]:
            start_response("200 OK", [])
            return [b"wsgi"]

    server = serve(Ambiguous(), mode="wsgi")
    assert httpx.get(server.url).text == "wsgi"


def test_flask_app(serve: Serve) -> None:
    flask = pytest.importorskip("flask")
    app = flask.Flask("demo")

    @app.route("/hello/<name>")
    def hello(name: str) -> str:
        return f"hello {name}"

    @app.post("/json")
    def json_echo() -> Any:
        return {"got": flask.request.get_json()}

    server = serve(app)
    assert httpx.get(server.url + "/hello/world").text == "hello world"
    assert httpx.post(server.url + "/json", json={"a": 1}).json() == {"got": {"a": 1}}
    assert httpx.get(server.url + "/missing").status_code == 404

"""The public middleware classes, served for real on every backend."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import pytest

from hypercorn.middleware import (
    AsyncioWSGIMiddleware,
    DispatcherMiddleware,
    HTTPToHTTPSRedirectMiddleware,
    ProxyFixMiddleware,
    TrioWSGIMiddleware,
)
from hypercorn.middleware.dispatcher import AsyncioDispatcherMiddleware, TrioDispatcherMiddleware
from hypercorn.utils import LifespanFailureError
from tests.conftest import RunningServer

Serve = Callable[..., RunningServer]


def named_app(name: str, events: list[str] | None = None, fail: bool = False) -> Any:
    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if events is not None:
                    events.append(f"{name}:{message['type']}")
                stage = message["type"].split(".")[1]
                if fail and stage == "startup":
                    await send({"type": "lifespan.startup.failed", "message": f"{name} broke"})
                    return
                await send({"type": f"lifespan.{stage}.complete"})
                if stage == "shutdown":
                    return
        body = f"{name} root_path={scope['root_path']} path={scope['path']}"
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body", "body": body.encode()})

    return app


def wsgi_hello(environ: Any, start_response: Any) -> list[bytes]:
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [f"wsgi script={environ['SCRIPT_NAME']} path={environ['PATH_INFO']}".encode()]


@pytest.fixture
def dispatcher(backend: str) -> type[Any]:
    return TrioDispatcherMiddleware if backend == "trio" else AsyncioDispatcherMiddleware


@pytest.fixture
def wsgi_middleware(backend: str) -> type[Any]:
    return TrioWSGIMiddleware if backend == "trio" else AsyncioWSGIMiddleware


def test_dispatcher_routes_by_prefix_and_fans_out_lifespan(
    serve: Serve, dispatcher: type[Any], wsgi_middleware: type[Any]
) -> None:
    events: list[str] = []
    app = dispatcher(
        {
            "/api": named_app("api", events),
            "/api/v2": named_app("v2", events),
            "/legacy": wsgi_middleware(wsgi_hello),
            "/": named_app("root", events),
        }
    )
    server = serve(app)
    assert sorted(events) == [
        "api:lifespan.startup",
        "root:lifespan.startup",
        "v2:lifespan.startup",
    ]
    get = lambda path: httpx.get(server.url + path).text  # noqa: E731
    assert get("/api/users") == "api root_path=/api path=/api/users"
    assert get("/api/v2/x") == "v2 root_path=/api/v2 path=/api/v2/x"
    assert get("/apix") == "root root_path= path=/apix"  # whole segments only
    assert get("/legacy/page") == "wsgi script=/legacy path=/page"
    server.stop()
    assert sorted(event for event in events if "shutdown" in event) == [
        "api:lifespan.shutdown",
        "root:lifespan.shutdown",
        "v2:lifespan.shutdown",
    ]


def test_dispatcher_404_and_startup_failure(backend: str, dispatcher: type[Any]) -> None:
    server = RunningServer(dispatcher({"/a": named_app("a")}), backend).start()
    try:
        assert httpx.get(server.url + "/b").status_code == 404
    finally:
        server.stop()
    failing = dispatcher({"/a": named_app("a"), "/b": named_app("b", fail=True)})
    with pytest.raises(LifespanFailureError, match="b broke"):
        RunningServer(failing, backend).start()


def test_dispatcher_default_is_asyncio() -> None:
    assert DispatcherMiddleware is AsyncioDispatcherMiddleware


def test_https_redirect(serve: Serve) -> None:
    server = serve(HTTPToHTTPSRedirectMiddleware(named_app("secure"), host="example.com"))
    response = httpx.get(server.url + "/path?q=1")
    assert response.status_code == 301
    assert response.headers["location"] == "https://example.com/path?q=1"
    assert httpx.post(server.url + "/form").status_code == 308


def test_proxy_fix_legacy_and_modern(serve: Serve) -> None:
    async def show(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        host = dict(scope["headers"]).get(b"host", b"").decode()
        body = f"{scope['client'][0]}|{scope['scheme']}|{host}"
        await send({"type": "http.response.start", "status": 200})
        await send({"type": "http.response.body", "body": body.encode()})

    legacy = serve(ProxyFixMiddleware(show, mode="legacy", trusted_hops=1))
    headers = {
        "X-Forwarded-For": "6.6.6.6, 1.2.3.4",
        "X-Forwarded-Proto": "https",
        "X-Forwarded-Host": "example.com",
    }
    assert httpx.get(legacy.url, headers=headers).text == "1.2.3.4|https|example.com"
    two_hops = serve(ProxyFixMiddleware(show, mode="legacy", trusted_hops=2))
    assert httpx.get(two_hops.url, headers=headers).text.startswith("6.6.6.6|")
    modern = serve(ProxyFixMiddleware(show, mode="modern"))
    forwarded = {"Forwarded": 'for=6.6.6.6, for="[2001:db8::1]:4711";proto=https;host=ex.org'}
    assert httpx.get(modern.url, headers=forwarded).text == "2001:db8::1|https|ex.org"
    # fewer entries than trusted hops: nothing is trusted
    assert httpx.get(two_hops.url, headers={"X-Forwarded-For": "9.9.9.9"}).text.startswith(
        "127.0.0.1|http|"
    )

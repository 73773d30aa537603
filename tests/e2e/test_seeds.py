"""The examples of the API usage seed, run for real."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import textwrap
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import pytest

from hypercorn.app_wrappers import ASGIWrapper, WSGIWrapper
from hypercorn.asyncio import serve
from hypercorn.config import Config


async def app(scope: Any, receive: Any, send: Any) -> None:
    """The seeds' simple ASGI application."""
    if scope["type"] != "http":
        return
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [[b"content-type", b"text/plain"]],
        }
    )
    await send({"type": "http.response.body", "body": b"Hello World"})


def wsgi_app(environ: Any, start_response: Any) -> list[bytes]:
    status = "200 OK"
    headers = [("Content-type", "text/plain")]
    start_response(status, headers)
    return [b"Hello World"]


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


async def _get_when_up(url: str) -> httpx.Response:
    async with httpx.AsyncClient() as client:
        for _ in range(200):
            try:
                return await client.get(url)
            except httpx.ConnectError:
                await asyncio.sleep(0.02)
    raise TimeoutError(url)


def test_serve_with_shutdown_trigger_as_in_the_seed() -> None:
    """``serve(app, config, shutdown_trigger=shutdown_event.wait)`` then set the event."""
    port = free_port()

    async def main() -> str:
        config = Config()
        config.bind = [f"127.0.0.1:{port}"]
        shutdown_event = asyncio.Event()
        task = asyncio.create_task(serve(app, config, shutdown_trigger=shutdown_event.wait))
        response = await _get_when_up(f"http://127.0.0.1:{port}/")
        shutdown_event.set()
        await asyncio.wait_for(task, 10)
        return response.text

    assert asyncio.run(main()) == "Hello World"


def test_serve_wsgi_app_and_forced_mode() -> None:
    port = free_port()

    async def main() -> list[str]:
        texts = []
        for application, mode in ((wsgi_app, None), (wsgi_app, "wsgi"), (app, "asgi")):
            config = Config()
            config.bind = [f"127.0.0.1:{port}"]
            shutdown_event = asyncio.Event()
            task = asyncio.create_task(
                serve(
                    application,
                    config,
                    mode=mode,  # type: ignore[arg-type]
                    shutdown_trigger=shutdown_event.wait,
                )
            )
            texts.append((await _get_when_up(f"http://127.0.0.1:{port}/")).text)
            shutdown_event.set()
            await asyncio.wait_for(task, 10)
        return texts

    assert asyncio.run(main()) == ["Hello World"] * 3


def test_serve_without_trigger_stops_on_sigterm(tmp_path: Path) -> None:
    """Without a shutdown_trigger, serve() shuts down gracefully on SIGTERM."""
    port = free_port()
    script = tmp_path / "main.py"
    script.write_text(
        textwrap.dedent(f"""
        import asyncio
        from hypercorn.asyncio import serve
        from hypercorn.config import Config

        async def app(scope, receive, send):
            if scope["type"] != "http":
                return
            await send({{"type": "http.response.start", "status": 200}})
            await send({{"type": "http.response.body", "body": b"Hello World"}})

        config = Config()
        config.bind = ["127.0.0.1:{port}"]
        asyncio.run(serve(app, config))
        print("clean exit")
    """)
    )
    process = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert asyncio.run(_get_when_up(f"http://127.0.0.1:{port}/")).text == "Hello World"
        os.kill(process.pid, signal.SIGTERM)
        out, err = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    assert "clean exit" in out


def test_serve_with_never_completing_trigger_is_cancellable() -> None:
    port = free_port()

    async def main() -> None:
        config = Config()
        config.bind = [f"127.0.0.1:{port}"]
        task = asyncio.create_task(serve(app, config, shutdown_trigger=lambda: asyncio.Future()))
        await _get_when_up(f"http://127.0.0.1:{port}/")
        task.cancel()
        try:
            await asyncio.wait_for(task, 10)
        except asyncio.CancelledError:
            pass

    asyncio.run(main())


def test_wrapper_examples() -> None:
    """ASGIWrapper/WSGIWrapper awaited with the (scope, receive, send, sync_spawn, call_soon)
    convention."""
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {
        "type": "http",
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/",
        "raw_path": b"/",
        "query_string": b"",
        "root_path": "",
        "headers": [],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 80),
    }

    async def main() -> None:
        loop = asyncio.get_running_loop()

        async def sync_spawn(func: Any, *args: Any) -> Any:
            return await loop.run_in_executor(None, func, *args)

        def call_soon(func: Any, *args: Any) -> Any:
            return asyncio.run_coroutine_threadsafe(func(*args), loop).result()

        await ASGIWrapper(app)(scope, receive, send, sync_spawn, call_soon)  # type: ignore[arg-type]
        await WSGIWrapper(wsgi_app, 16 * 1024 * 1024)(
            scope,
            receive,
            send,  # type: ignore[arg-type]
            sync_spawn,
            call_soon,
        )

    asyncio.run(main())
    bodies = [message.get("body") for message in sent if message["type"] == "http.response.body"]
    assert bodies == [b"Hello World", b"Hello World"]


def test_trio_serve_in_a_nursery_then_cancelled_as_in_the_seed() -> None:
    """The seed's trio example: the server runs in a nursery beside other work; cancelling the
    nursery shuts it down. ``nursery.start`` returns the bound URLs (task_status)."""
    import trio

    from hypercorn.trio import serve as trio_serve

    async def main() -> tuple[list[str], str]:
        config = Config()
        config.bind = ["127.0.0.1:0"]
        async with trio.open_nursery() as nursery:
            urls = await nursery.start(trio_serve, app, config)
            async with httpx.AsyncClient() as client:  # the "other work"
                text = (await client.get(urls[0] + "/")).text
            nursery.cancel_scope.cancel()
        return urls, text

    urls, text = trio.run(main)
    assert text == "Hello World"
    with pytest.raises(httpx.ConnectError):
        httpx.get(urls[0])


def test_trio_serve_with_shutdown_trigger_and_wsgi_mode() -> None:
    import trio

    from hypercorn.trio import serve as trio_serve

    async def main() -> str:
        config = Config()
        config.bind = ["127.0.0.1:0"]
        shutdown = trio.Event()
        async with trio.open_nursery() as nursery:
            urls = await nursery.start(
                partial(trio_serve, wsgi_app, config, shutdown_trigger=shutdown.wait, mode="wsgi")
            )
            async with httpx.AsyncClient() as client:
                text = (await client.get(urls[0])).text
            shutdown.set()
        return text

    assert trio.run(main) == "Hello World"


@pytest.mark.parametrize(
    "runner",
    [
        "import trio\ntrio.run(serve, app, config)",
        "import asyncio, uvloop\nuvloop.install()\nasyncio.run(serve(app, config))",
    ],
    ids=["trio.run(serve, app, config)", "uvloop.install() + asyncio.run"],
)
def test_seed_runners_serve_and_stop_on_sigterm(tmp_path: Path, runner: str) -> None:
    """The API usage page's one-liners for trio and uvloop, stopped by SIGTERM."""
    port = free_port()
    backend = "trio" if "trio" in runner else "asyncio"
    script = tmp_path / "main.py"
    script.write_text(
        textwrap.dedent(f"""
        import warnings
        warnings.simplefilter("ignore", DeprecationWarning)
        from hypercorn.{backend} import serve
        from hypercorn.config import Config

        async def app(scope, receive, send):
            if scope["type"] != "http":
                return
            await send({{"type": "http.response.start", "status": 200}})
            await send({{"type": "http.response.body", "body": b"Hello World"}})

        config = Config()
        config.bind = ["127.0.0.1:{port}"]
        """)
        + runner
        + '\nprint("clean exit")\n'
    )
    process = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert asyncio.run(_get_when_up(f"http://127.0.0.1:{port}/")).text == "Hello World"
        os.kill(process.pid, signal.SIGTERM)
        out, err = process.communicate(timeout=10)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err
    assert "clean exit" in out

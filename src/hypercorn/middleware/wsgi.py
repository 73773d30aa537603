"""ASGI applications that run a WSGI application: for mounting WSGI apps beside ASGI ones."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from functools import partial
from typing import Any

from ..app_wrappers import WSGIWrapper
from ..typing import ASGIReceiveCallable, ASGISendCallable, Scope, WSGIFramework

MAX_BODY_SIZE = 2**24


class _WSGIMiddleware:
    def __init__(self, wsgi_app: WSGIFramework, max_body_size: int = MAX_BODY_SIZE) -> None:
        self.wsgi_app = wsgi_app
        self.max_body_size = max_body_size
        self._wrapper = WSGIWrapper(wsgi_app, max_body_size)


class AsyncioWSGIMiddleware(_WSGIMiddleware):
    """Run a WSGI application as an ASGI one on asyncio (threads from the loop's executor)."""

    async def __call__(
        self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        loop = asyncio.get_running_loop()

        async def sync_spawn(func: Callable[..., Any], *args: Any) -> Any:
            return await loop.run_in_executor(None, partial(func, *args))

        def call_soon(func: Callable[..., Any], *args: Any) -> Any:
            return asyncio.run_coroutine_threadsafe(func(*args), loop).result()

        await self._wrapper(scope, receive, send, sync_spawn, call_soon)


class TrioWSGIMiddleware(_WSGIMiddleware):
    """Run a WSGI application as an ASGI one on trio (threads from trio.to_thread)."""

    async def __call__(
        self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        import trio

        async def sync_spawn(func: Callable[..., Any], *args: Any) -> Any:
            return await trio.to_thread.run_sync(partial(func, *args))

        await self._wrapper(scope, receive, send, sync_spawn, trio.from_thread.run)

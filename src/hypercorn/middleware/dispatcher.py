"""Route requests to applications by path prefix, and fan lifespan out to all of them.

A request for ``/api/users`` with ``/api`` mounted reaches that app with ``root_path``
extended by ``/api`` and ``path`` unchanged (the ASGI convention: ``path`` includes
``root_path``, as Starlette's ``Mount`` does). The longest matching prefix wins; a prefix matches
whole path segments only (``/api`` matches ``/api`` and ``/api/x``, not ``/apix``). Unmatched
requests get 404 (HTTP) or a 403 denial (WebSocket).

Lifespan: every mounted app gets its own lifespan call; start-up completes when all of them
have completed and fails if any fails; an app that does not support lifespan is skipped.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from functools import partial
from typing import Any

from ..typing import ASGIFramework, ASGIReceiveCallable, ASGISendCallable, Scope


class _Mounted:
    """One mounted app's lifespan: its own queue of messages, and what it answered."""

    def __init__(self, app: ASGIFramework, inbox: Any, answers: Any) -> None:
        self.app = app
        self.inbox = inbox
        self.answers = answers
        self.supported = True
        self.received_startup = False


class _DispatcherMiddleware:
    def __init__(self, mounts: Mapping[str, ASGIFramework]) -> None:
        self.mounts = dict(mounts)
        self._ordered = sorted(self.mounts.items(), key=lambda item: len(item[0]), reverse=True)

    async def __call__(
        self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(scope, receive, send)
            return
        path = scope["path"]
        root_path = scope.get("root_path", "")
        relative = path[len(root_path) :] if root_path and path.startswith(root_path) else path
        for prefix, app in self._ordered:
            bare = prefix.rstrip("/")
            if not bare or relative == bare or relative.startswith(bare + "/"):
                await app({**scope, "root_path": root_path + bare}, receive, send)  # type: ignore[arg-type]
                return
        if scope["type"] == "http":
            await send(
                {
                    "type": "http.response.start",
                    "status": 404,
                    "headers": [(b"content-type", b"text/plain"), (b"content-length", b"9")],
                }
            )
            await send({"type": "http.response.body", "body": b"Not Found"})
        else:
            await send({"type": "websocket.close", "code": 1000})

    # ------------------------------------------------------------------ backend primitives
    def _channel(self) -> Any:
        """A queue with ``async put(item)`` and ``async get()``."""
        raise NotImplementedError

    async def _run_beside(
        self, main: Callable[[], Awaitable[None]], background: list[Callable[[], Awaitable[None]]]
    ) -> None:
        """Run ``main`` while ``background`` tasks run; cancel them when ``main`` returns."""
        raise NotImplementedError

    # ------------------------------------------------------------------ lifespan fan-out
    async def _lifespan(
        self, scope: Scope, receive: ASGIReceiveCallable, send: ASGISendCallable
    ) -> None:
        mounted = [_Mounted(app, self._channel(), self._channel()) for app in self.mounts.values()]

        async def run_app(entry: _Mounted) -> None:
            async def app_receive() -> Any:
                message = await entry.inbox.get()
                if message["type"] == "lifespan.startup":
                    entry.received_startup = True
                return message

            try:
                await entry.app({**scope}, app_receive, entry.answers.put)  # type: ignore[arg-type]
            except Exception as error:
                # The server's rule: raising before receiving start-up means "no lifespan
                # support"; raising after it is a start-up failure.
                kind = "lifespan.startup.failed" if entry.received_startup else "unsupported"
                message = repr(error)
            else:
                kind, message = "finished", ""  # returned: nothing more to wait for
            entry.supported = False
            await entry.answers.put({"type": kind, "message": message})

        async def coordinate() -> None:
            while True:
                message = await receive()
                stage = message["type"].split(".")[1]  # startup or shutdown
                failures = []
                for entry in mounted:
                    if not entry.supported:
                        continue
                    await entry.inbox.put(message)
                    answer = await entry.answers.get()
                    if answer["type"].endswith(".failed"):
                        failures.append(answer.get("message", ""))
                outcome = "failed" if failures else "complete"
                reply: dict[str, Any] = {"type": f"lifespan.{stage}.{outcome}"}
                if failures:
                    reply["message"] = "; ".join(failures)
                await send(reply)  # type: ignore[arg-type]
                if stage == "shutdown" or failures:
                    return

        await self._run_beside(coordinate, [partial(run_app, entry) for entry in mounted])


class AsyncioDispatcherMiddleware(_DispatcherMiddleware):
    """Dispatch by path prefix on asyncio."""

    def _channel(self) -> Any:
        import asyncio

        return asyncio.Queue()

    async def _run_beside(
        self, main: Callable[[], Awaitable[None]], background: list[Callable[[], Awaitable[None]]]
    ) -> None:
        import asyncio

        tasks = [asyncio.ensure_future(task()) for task in background]
        try:
            await main()
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)


class TrioDispatcherMiddleware(_DispatcherMiddleware):
    """Dispatch by path prefix on trio."""

    def _channel(self) -> Any:
        import trio

        class _Channel:
            def __init__(self) -> None:
                self.sender, self.receiver = trio.open_memory_channel[Any](16)

            async def put(self, item: Any) -> None:
                await self.sender.send(item)

            async def get(self) -> Any:
                return await self.receiver.receive()

        return _Channel()

    async def _run_beside(
        self, main: Callable[[], Awaitable[None]], background: list[Callable[[], Awaitable[None]]]
    ) -> None:
        import trio

        async with trio.open_nursery() as nursery:
            for task in background:
                nursery.start_soon(task)
            await main()
            nursery.cancel_scope.cancel()


DispatcherMiddleware = AsyncioDispatcherMiddleware

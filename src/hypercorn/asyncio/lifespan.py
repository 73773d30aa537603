"""ASGI lifespan on asyncio: the waiting around the shared
:class:`~hypercorn.protocol.lifespan.LifespanState`."""

from __future__ import annotations

import asyncio
from functools import partial
from typing import TYPE_CHECKING, Any, cast

from ..protocol.lifespan import LIFESPAN_SCOPE_ASGI, LifespanState
from ..utils import LifespanTimeoutError

if TYPE_CHECKING:
    from ..config import Config
    from ..typing import AppWrapper, ASGIReceiveCallable, ASGISendCallable, LifespanScope


class Lifespan:
    def __init__(self, app: AppWrapper, config: Config, state: dict[str, Any]) -> None:
        self.app = app
        self.config = config
        self.state = state
        self.protocol = LifespanState()
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._changed = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = self._loop.create_task(self._run())

    async def _run(self) -> None:
        scope = cast(
            "LifespanScope", {"type": "lifespan", "asgi": LIFESPAN_SCOPE_ASGI, "state": self.state}
        )
        try:
            await self.app(
                scope,
                cast("ASGIReceiveCallable", self._receive),
                cast("ASGISendCallable", self._send),
                partial(self._loop.run_in_executor, None),
                self._call_soon,
            )
        except asyncio.CancelledError:
            raise
        except BaseException as error:
            message = self.protocol.app_raised(error)
            if self.protocol.supported:
                await self.config.log.exception(message)
            else:
                await self.config.log.info(message)
        finally:
            self.protocol.startup_done = self.protocol.shutdown_done = True
            self._changed.set()

    def _call_soon(self, func: Any, *args: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(func(*args), self._loop).result()

    async def _receive(self) -> dict[str, Any]:
        message = await self._queue.get()
        self.protocol.app_received(message)
        return message

    async def _send(self, message: dict[str, Any]) -> None:
        self.protocol.app_send(message)
        self._changed.set()

    async def _wait_until(self, done: Any, seconds: float, stage: str) -> None:
        async def wait() -> None:
            while not done():
                self._changed.clear()
                await self._changed.wait()

        try:
            await asyncio.wait_for(wait(), seconds)
        except asyncio.TimeoutError:
            raise LifespanTimeoutError(stage) from None

    async def wait_for_startup(self) -> None:
        """Send ``lifespan.startup`` and wait; raises LifespanTimeout/FailureError."""
        await self._queue.put({"type": "lifespan.startup"})
        await self._wait_until(
            lambda: self.protocol.startup_done, self.config.startup_timeout, "startup"
        )
        self.protocol.check()

    async def wait_for_shutdown(self) -> None:
        """Send ``lifespan.shutdown`` and wait for the application to finish it."""
        if not self.protocol.supported or self._task is None or self._task.done():
            return
        await self._queue.put({"type": "lifespan.shutdown"})
        try:
            await self._wait_until(
                lambda: self.protocol.shutdown_done, self.config.shutdown_timeout, "shutdown"
            )
        finally:
            await self.aclose()
        self.protocol.check()

    async def aclose(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

"""ASGI lifespan on asyncio.

An application that raises before it has received ``lifespan.startup`` does not support the
protocol (the ASGI spec: carry on without it; logged once at info level). One that raises after
receiving it has failed its start-up, exactly like one that sends ``lifespan.startup.failed``:
the server stops with exit code 3.
"""

from __future__ import annotations

import asyncio
from functools import partial
from typing import TYPE_CHECKING, Any, cast

from ..utils import LifespanFailureError, LifespanTimeoutError

if TYPE_CHECKING:
    from ..config import Config
    from ..typing import AppWrapper, ASGIReceiveCallable, ASGISendCallable, LifespanScope


class Lifespan:
    def __init__(self, app: AppWrapper, config: Config, state: dict[str, Any]) -> None:
        self.app = app
        self.config = config
        self.state = state
        self.supported = True
        self._loop = asyncio.get_running_loop()
        self._queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self._startup = asyncio.Event()
        self._shutdown = asyncio.Event()
        self._received_startup = False
        self._failure: BaseException | None = None
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = self._loop.create_task(self._run())

    async def _run(self) -> None:
        scope: LifespanScope = {
            "type": "lifespan",
            "asgi": {"spec_version": "2.0", "version": "3.0"},
            "state": self.state,
        }
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
            if not self._received_startup:
                self.supported = False
                await self.config.log.info(
                    "ASGI application does not support lifespan (it raised %r); continuing "
                    "without it",
                    error,
                )
            elif not self._startup.is_set():
                self._failure = LifespanFailureError("startup", repr(error))
                await self.config.log.exception("Lifespan start-up failed")
            else:
                await self.config.log.exception("Error in the lifespan task")
        finally:
            self._startup.set()
            self._shutdown.set()

    def _call_soon(self, func: Any, *args: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(func(*args), self._loop).result()

    async def _receive(self) -> dict[str, Any]:
        message = await self._queue.get()
        if message["type"] == "lifespan.startup":
            self._received_startup = True
        return message

    async def _send(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "lifespan.startup.complete":
            self._startup.set()
        elif kind == "lifespan.startup.failed":
            self._failure = LifespanFailureError("startup", message.get("message", ""))
            self._startup.set()
        elif kind == "lifespan.shutdown.complete":
            self._shutdown.set()
        elif kind == "lifespan.shutdown.failed":
            self._failure = LifespanFailureError("shutdown", message.get("message", ""))
            self._shutdown.set()

    async def wait_for_startup(self) -> None:
        """Send ``lifespan.startup`` and wait; raises LifespanTimeout/FailureError."""
        await self._queue.put({"type": "lifespan.startup"})
        try:
            await asyncio.wait_for(self._startup.wait(), self.config.startup_timeout)
        except asyncio.TimeoutError:
            raise LifespanTimeoutError("startup") from None
        if self._failure is not None:
            raise self._failure

    async def wait_for_shutdown(self) -> None:
        """Send ``lifespan.shutdown`` and wait for the application to finish it."""
        if not self.supported or self._task is None or self._task.done():
            return
        await self._queue.put({"type": "lifespan.shutdown"})
        try:
            await asyncio.wait_for(self._shutdown.wait(), self.config.shutdown_timeout)
        except asyncio.TimeoutError:
            raise LifespanTimeoutError("shutdown") from None
        finally:
            await self.aclose()
        if self._failure is not None:
            raise self._failure

    async def aclose(self) -> None:
        if self._task is not None and not self._task.done():
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

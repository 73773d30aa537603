"""ASGI lifespan on trio: the waiting around :class:`~hypercorn.protocol.lifespan.LifespanState`."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING, Any, cast

import trio

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
        self.finished = False
        self._send_channel, self._receive_channel = trio.open_memory_channel[dict[str, Any]](2)
        self._changed = trio.Event()

    async def handle_lifespan(self) -> None:
        """Run the application's lifespan call; start this in a nursery."""
        scope = cast(
            "LifespanScope", {"type": "lifespan", "asgi": LIFESPAN_SCOPE_ASGI, "state": self.state}
        )
        try:
            await self.app(
                scope,
                cast("ASGIReceiveCallable", self._receive),
                cast("ASGISendCallable", self._send),
                partial(trio.to_thread.run_sync),
                trio.from_thread.run,
            )
        except trio.Cancelled:
            raise
        except BaseException as error:
            message = self.protocol.app_raised(error)
            if self.protocol.supported:
                await self.config.log.exception(message)
            else:
                await self.config.log.info(message)
        finally:
            self.finished = True
            self.protocol.startup_done = self.protocol.shutdown_done = True
            self._changed.set()

    async def _receive(self) -> dict[str, Any]:
        message = await self._receive_channel.receive()
        self.protocol.app_received(message)
        return message

    async def _send(self, message: dict[str, Any]) -> None:
        self.protocol.app_send(message)
        self._changed.set()

    async def _wait_until(self, done: Callable[[], bool], seconds: float, stage: str) -> None:
        with trio.move_on_after(seconds) as scope:
            while not done():
                self._changed = trio.Event()
                await self._changed.wait()
        if scope.cancelled_caught:
            raise LifespanTimeoutError(stage)

    async def wait_for_startup(self) -> None:
        """Send ``lifespan.startup`` and wait; raises LifespanTimeout/FailureError."""
        await self._send_channel.send({"type": "lifespan.startup"})
        await self._wait_until(
            lambda: self.protocol.startup_done, self.config.startup_timeout, "startup"
        )
        self.protocol.check()

    async def wait_for_shutdown(self) -> None:
        """Send ``lifespan.shutdown`` and wait for the application to finish it."""
        if not self.protocol.supported or self.finished:
            return
        await self._send_channel.send({"type": "lifespan.shutdown"})
        await self._wait_until(
            lambda: self.protocol.shutdown_done, self.config.shutdown_timeout, "shutdown"
        )
        self.protocol.check()

"""Running the application for each stream, shared by the TCP and UDP (QUIC) drivers."""

from __future__ import annotations

import contextvars
from collections.abc import Callable, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

import trio

from ..transport import (
    UNTRUSTED_FORWARDED_WARNING,
    access_response,
    app_ended,
    app_starting,
    untrusted_warning_due,
)

if TYPE_CHECKING:
    from ..config import Config
    from ..protocol.ws_stream import AnyStream
    from ..typing import AppWrapper
    from .worker_context import WorkerContext


class AppRunner:
    """The application side of a driver: one task per stream in the driver's ``_apps``
    nursery, bridging the ASGI ``receive`` and ``send`` to the stream."""

    app: AppWrapper
    config: Config
    context: WorkerContext
    _apps: trio.Nursery | None
    _app_scopes: dict[AnyStream, trio.CancelScope]
    # What every application call starts from (a copy of it), not the context it happens to
    # be started in: that is often the previous request's send(), whose context variables
    # must not leak into the next request.
    _app_context: contextvars.Context

    async def _flush(self) -> None:
        raise NotImplementedError

    def _count_connection(self) -> None:
        raise NotImplementedError

    def _start_apps(self, new: Sequence[AnyStream], to_cancel: Sequence[AnyStream]) -> None:
        for stream in new:
            assert self._apps is not None
            if not self.context.admit():
                stream.reject(503, [(b"retry-after", b"1")])  # over max_concurrent_requests
                continue
            # The scope exists before the task runs, so a cancellation can never miss it.
            self._app_scopes[stream] = trio.CancelScope()
            self._app_context.copy().run(self._apps.start_soon, self._run_app, stream)
        for stream in to_cancel:
            scope = self._app_scopes.get(stream)
            if scope is not None:
                scope.cancel()

    async def _run_app(self, stream: AnyStream) -> None:
        try:
            with self._app_scopes[stream]:
                await self._call_app(stream)
        finally:
            del self._app_scopes[stream]
            self.context.in_flight -= 1

    async def _call_app(self, stream: AnyStream) -> None:
        # Separate waiters: an app may wait in receive() (for a disconnect) in one task while
        # another task is held in send() by flow control.
        waiters: dict[str, trio.Event] = {}

        def wake() -> None:
            for waiter in waiters.values():
                waiter.set()

        stream.on_wake = wake

        async def receive() -> Any:
            while True:
                message = stream.app_receive_nowait()
                if message is None:
                    # Armed before _flush() yields, so a wake-up during the flush is not lost.
                    waiters["receive"] = trio.Event()
                await self._flush()
                if message is not None:
                    return message
                await waiters["receive"].wait()

        async def send(message: Any) -> None:
            stream.app_send(message)
            if stream.send_blocked:
                waiters["send"] = trio.Event()
            await self._flush()
            while stream.send_blocked and not stream.disconnected:
                waiters["send"] = trio.Event()
                await waiters["send"].wait()

        log = self.config.log
        context = self.context
        if app_starting(stream, context):
            self._count_connection()
        if untrusted_warning_due(stream, context):
            await log.warning(UNTRUSTED_FORWARDED_WARNING, stream.peer or "a unix socket")
        try:
            await self.app(stream.scope, receive, send, self._sync_spawn, self._call_soon)
        except trio.Cancelled:
            stream.app_failed()
            raise
        except Exception:
            if not stream.disconnected:
                await log.exception("Error in ASGI Framework")
            stream.app_failed()
            await self._flush()
        else:
            if not stream.app_finished():
                await log.error("ASGI callable returned without completing the response")
                await self._flush()
        finally:
            stream.on_wake = None
            elapsed = trio.current_time() - stream.start_time
            if app_ended(stream, context, log, elapsed):
                await log.access(stream.scope, access_response(stream), elapsed)

    async def _sync_spawn(self, func: Callable[..., Any], *args: Any) -> Any:
        return await trio.to_thread.run_sync(partial(func, *args), limiter=self.context.limiter)

    def _call_soon(self, func: Callable[..., Any], *args: Any) -> Any:
        return trio.from_thread.run(func, *args)

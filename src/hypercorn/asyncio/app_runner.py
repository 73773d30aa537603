"""Running the application for each stream, shared by the TCP and UDP (QUIC) drivers."""

from __future__ import annotations

import asyncio
import contextvars
import sys
from collections.abc import Callable, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

from ..app_wrappers import ASGIWrapper
from ..transport import (
    UNTRUSTED_FORWARDED_WARNING,
    access_response,
    app_ended,
    app_starting,
    untrusted_warning_due,
)
from .worker_context import EAGER, REFUSED

if TYPE_CHECKING:
    from ..config import Config
    from ..logging import Logger
    from ..protocol.ws_stream import AnyStream
    from ..typing import AppWrapper
    from .worker_context import WorkerContext


class AppRunner:
    """The application side of a driver: one task per stream, bridging the ASGI ``receive``
    and ``send`` to the stream, with back-pressure from the stream and the transport."""

    app: AppWrapper
    config: Config
    # config.log, read once for the connection (TCP) or the listener (QUIC) and not per
    # request: it is a pydantic property, ~2,800 machine instructions a request (cachegrind)
    log: Logger
    context: WorkerContext
    loop: asyncio.AbstractEventLoop
    _tasks: dict[AnyStream, asyncio.Task[None]]
    _write_paused: bool  # the transport asked us to stop writing
    _writable: asyncio.Event | None  # for send() to wait on; made the first time it pauses
    _starting: bool  # in _start_apps: a nested _flush only writes (see _start_apps)
    # What every application call starts from (a copy of it), not the context it happens to
    # be started in: that is often the previous request's send(), whose context variables
    # must not leak into the next request.
    _app_context: contextvars.Context

    def _flush(self) -> None:
        raise NotImplementedError

    def _count_connection(self) -> None:
        raise NotImplementedError

    def _pause_writes(self) -> None:
        self._write_paused = True
        if self._writable is None:  # (an Event costs ~1 KiB: most connections never pause)
            self._writable = asyncio.Event()
        self._writable.clear()

    def _resume_writes(self) -> None:
        self._write_paused = False
        if self._writable is not None:
            self._writable.set()

    def _start_apps(self, streams: Sequence[AnyStream]) -> None:
        """Start an application call for each stream. On Python 3.12 a call runs at once up
        to its first wait (an eager start) and may answer there: its ``send()`` and
        ``receive()`` then only write what the core has to send; the rest of the flushing
        (starting the pipelined requests its response let through, reading, the timer) is
        left to the driver's ``_flush`` that called this, which goes on once they ran. That
        also keeps a run of pipelined 503s (over ``max_concurrent_requests``) a loop there
        instead of a recursion."""
        self._starting = True
        try:
            for stream in streams:
                self._start_app(stream)
        finally:
            self._starting = False

    def _start_app(self, stream: AnyStream) -> None:
        context = self.context
        start = context.start_call()
        if start == REFUSED:
            stream.reject(503, [(b"retry-after", b"1")])  # over max_concurrent_requests
            self._flush()
            return
        if sys.version_info >= (3, 12) and start == EAGER:
            # Run the application at once, up to its first real wait: a handler that
            # answers without waiting (most do) finishes here, with no task scheduled.
            task = asyncio.Task(
                self._run_app(stream),
                loop=self.loop,
                eager_start=True,
                context=self._app_context.copy(),
            )
            finished = task.done()
            context.eager_start_ended(finished)
            if finished:  # (an error _run_app let through is reported as for any task)
                return
        else:
            task = self._app_context.copy().run(self.loop.create_task, self._run_app(stream))
        self._tasks[stream] = task
        context.tasks.add(task)
        task.add_done_callback(partial(self._app_done, stream))

    def _app_done(self, stream: AnyStream, task: asyncio.Task[None]) -> None:
        self._tasks.pop(stream, None)
        self.context.in_flight -= 1
        self.context.task_done(task)

    async def _run_app(self, stream: AnyStream) -> None:
        loop = self.loop
        channel = _Channel(self, stream)
        receive, send = channel.receive, channel.send
        log = self.log
        context = self.context
        if app_starting(stream, context):
            self._count_connection()
        if untrusted_warning_due(stream, context):
            await log.warning(UNTRUSTED_FORWARDED_WARNING, stream.peer or "a unix socket")
        try:
            app = self.app
            if type(app) is ASGIWrapper:  # call the application itself: one frame fewer
                await app.app(stream.scope, receive, send)
            else:
                await app(stream.scope, receive, send, self._sync_spawn, self._call_soon)
        except asyncio.CancelledError:
            stream.app_failed()
            self._flush()
            raise
        except Exception:
            if not stream.disconnected:
                await log.exception("Error in ASGI Framework")
            stream.app_failed()
            self._flush()
        else:
            if not stream.app_finished():
                await log.error("ASGI callable returned without completing the response")
                self._flush()
        finally:
            stream.on_wake = None
            elapsed = loop.time() - stream.start_time
            if app_ended(stream, context, log, elapsed):
                await log.access(stream.scope, access_response(stream), elapsed)

    async def _sync_spawn(self, func: Callable[..., Any], *args: Any) -> Any:
        # In a copy of this request's context (as asyncio.to_thread does): a worker thread's
        # own context would carry one WSGI request's context variables into the next.
        call = partial(contextvars.copy_context().run, func, *args)
        return await self.loop.run_in_executor(self.context.executor, call)

    def _call_soon(self, func: Callable[..., Any], *args: Any) -> Any:
        return asyncio.run_coroutine_threadsafe(func(*args), self.loop).result()


class _Channel:
    """The application's ``receive()`` and ``send()`` for one stream (an object, not
    closures: it is made for every request)."""

    __slots__ = ("_receiving", "_runner", "_sending", "_stream")

    def __init__(self, runner: AppRunner, stream: AnyStream) -> None:
        self._runner = runner
        self._stream = stream
        # Separate waiters: an app may wait in receive() (for a disconnect) in one task
        # while another task is held in send() by flow control.
        self._receiving: asyncio.Future[None] | None = None
        self._sending: asyncio.Future[None] | None = None
        stream.on_wake = self.wake

    def wake(self) -> None:
        waiter = self._receiving
        if waiter is not None and not waiter.done():
            waiter.set_result(None)
        waiter = self._sending
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def receive(self) -> Any:
        stream = self._stream
        runner = self._runner
        while True:
            message = stream.app_receive_nowait()
            runner._flush()
            if message is not None:
                return message
            self._receiving = waiter = runner.loop.create_future()
            try:
                await waiter
            finally:
                self._receiving = None

    async def send(self, message: Any) -> None:
        stream = self._stream
        runner = self._runner
        if stream.app_send(message):
            runner._flush()
            while stream.send_blocked and not stream.disconnected:
                self._sending = waiter = runner.loop.create_future()
                try:
                    await waiter
                finally:
                    self._sending = None
            if runner._write_paused:
                assert runner._writable is not None
                await runner._writable.wait()

"""``worker_serve`` on trio: one worker serving until its shutdown trigger fires, or until the
surrounding nursery is cancelled (either way the shutdown is graceful, bounded by
``graceful_timeout``)."""

from __future__ import annotations

import errno
import signal
import sys
import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import trio

from ..admin import AdminApp
from ..app_wrappers import ASGIWrapper
from ..config import Sockets
from ..utils import LifespanFailureError, LifespanTimeoutError, bound_urls
from .lifespan import Lifespan
from .tcp_server import TCPServer
from .worker_context import WorkerContext

if sys.version_info < (3, 11):  # pragma: no cover
    from exceptiongroup import BaseExceptionGroup

if TYPE_CHECKING:
    from ..config import Config
    from ..typing import AppWrapper

# accept() errors that mean "out of resources right now", not "this listener is broken"
_ACCEPT_CAPACITY_ERRORS = {errno.EMFILE, errno.ENFILE, errno.ENOMEM, errno.ENOBUFS}


async def _signal_trigger() -> None:
    """Wait for SIGINT or SIGTERM (when this is the main thread; else wait forever)."""
    if threading.current_thread() is not threading.main_thread():
        await trio.sleep_forever()
    with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
        async for _ in signals:
            return


async def _accept_loop(
    listener: trio.abc.Listener[Any],
    nursery: trio.Nursery,
    handle: Callable[[trio.abc.Stream], Awaitable[None]],
    config: Config,
) -> None:
    while True:
        try:
            stream = await listener.accept()
        except OSError as error:
            if error.errno not in _ACCEPT_CAPACITY_ERRORS:
                raise
            await config.log.error("accept() failed: %s; retrying in 0.1 s", error)
            await trio.sleep(0.1)
            continue
        nursery.start_soon(handle, stream)


async def _accept_all(
    listeners: list[trio.abc.Listener[Any]],
    connections: trio.Nursery,
    handle: Callable[[trio.abc.Stream], Awaitable[None]],
    config: Config,
    task_status: trio.TaskStatus[trio.CancelScope] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Accept on every listener until the returned cancel scope is cancelled."""
    async with trio.open_nursery() as acceptors:
        for listener in listeners:
            acceptors.start_soon(_accept_loop, listener, connections, handle, config)
        task_status.started(acceptors.cancel_scope)


async def worker_serve(
    app: AppWrapper,
    config: Config,
    *,
    sockets: Sockets | None = None,
    shutdown_trigger: Callable[..., Awaitable[Any]] | None = None,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve ``app`` until ``shutdown_trigger`` returns (SIGINT/SIGTERM when it is None).

    ``sockets`` are pre-bound listeners (bound from ``config`` when omitted);
    ``task_status.started(urls)`` reports the bound URLs once the server accepts connections.
    """
    context = WorkerContext(config)
    owns_sockets = sockets is None
    if sockets is None:
        sockets = config.create_sockets()
    # The admin listener answers from before start-up (/livez 200, /readyz 503 until ready).
    admin_context = WorkerContext(config, observe=False)
    admin_app = ASGIWrapper(AdminApp(lambda: context.ready))
    admin_listeners: list[trio.abc.Listener[Any]] = [
        trio.SocketListener(trio.socket.from_stdlib_socket(sock)) for sock in sockets.admin_sockets
    ]

    async def admin_handle(stream: trio.abc.Stream) -> None:
        await TCPServer(admin_app, config, admin_context, stream).run()

    startup_error: BaseException | None = None
    with collapse_single_errors():
        async with trio.open_nursery() as lifespan_nursery:
            if admin_listeners:
                await lifespan_nursery.start(
                    _accept_all, admin_listeners, lifespan_nursery, admin_handle, config
                )
            lifespan = Lifespan(app, config, context.lifespan_state)
            lifespan_nursery.start_soon(lifespan.handle_lifespan)
            try:
                await lifespan.wait_for_startup()
            except (LifespanFailureError, LifespanTimeoutError) as error:
                startup_error = error
                lifespan_nursery.cancel_scope.cancel()
            else:
                try:
                    await _serve(app, config, context, sockets, shutdown_trigger, task_status)
                finally:
                    with trio.CancelScope(shield=True):
                        await lifespan.wait_for_shutdown()
                    lifespan_nursery.cancel_scope.cancel()
    with trio.CancelScope(shield=True):
        for listener in admin_listeners:
            await listener.aclose()
    if startup_error is not None:
        if owns_sockets:  # never handed to a listener, so nothing else closes them
            sockets.close()
        raise startup_error


async def _first_of(*functions: Callable[[], Awaitable[Any]]) -> None:
    """Run ``functions`` until the first one returns; cancel the others."""
    async with trio.open_nursery() as nursery:

        async def run(function: Callable[[], Awaitable[Any]]) -> None:
            await function()
            nursery.cancel_scope.cancel()

        for function in functions:
            nursery.start_soon(run, function)


@contextmanager
def collapse_single_errors() -> Iterator[None]:
    """Re-raise a lone exception from our own nurseries as itself, not as an ExceptionGroup,
    so callers (and the CLI's exit codes) see ``OSError``, ``LifespanFailureError``, ..."""
    try:
        yield
    except BaseExceptionGroup as group:
        errors = group.exceptions
        while len(errors) == 1 and isinstance(errors[0], BaseExceptionGroup):
            errors = errors[0].exceptions
        if len(errors) == 1 and not isinstance(errors[0], trio.Cancelled):
            raise errors[0] from None
        raise


async def _serve(
    app: AppWrapper,
    config: Config,
    context: WorkerContext,
    sockets: Sockets,
    shutdown_trigger: Callable[..., Awaitable[Any]] | None,
    task_status: trio.TaskStatus[list[str]],
) -> None:
    ssl_context = config.create_ssl_context()
    listeners: list[trio.abc.Listener[Any]] = []
    for sock in sockets.secure_sockets:
        assert ssl_context is not None
        listeners.append(
            trio.SSLListener(
                trio.SocketListener(trio.socket.from_stdlib_socket(sock)),
                ssl_context,
                https_compatible=True,
            )
        )
    for sock in sockets.insecure_sockets:
        listeners.append(trio.SocketListener(trio.socket.from_stdlib_socket(sock)))

    async def handle(stream: trio.abc.Stream) -> None:
        await TCPServer(app, config, context, stream).run()

    quic_config = config.create_quic_configuration() if sockets.quic_sockets else None
    udp_sockets = [trio.socket.from_stdlib_socket(sock) for sock in sockets.quic_sockets]
    try:
        async with trio.open_nursery() as connections:
            accept_scope = await connections.start(
                _accept_all, listeners, connections, handle, config
            )
            if udp_sockets:
                # aioquic (and cryptography) cost ~25 MiB of memory: imported only when used.
                from .udp_server import UDPServer
            for udp_socket in udp_sockets:
                connections.start_soon(UDPServer(app, config, context, udp_socket, quic_config).run)
            urls = bound_urls(sockets)
            for url in urls:
                await config.log.info("Running on %s (CTRL + C to quit)", url)
            context.ready = True
            task_status.started(urls)
            try:
                await _first_of(shutdown_trigger or _signal_trigger, context.recycle.wait)
                if context.recycle.is_set():
                    await config.log.info(
                        "Recycling this worker after %d requests (max_requests)",
                        context.requests_served,
                    )
            finally:
                context.ready = False
                with trio.CancelScope(shield=True):
                    # Still serving while /readyz says 503, so load balancers stop first.
                    await trio.sleep(config.shutdown_delay)
                    accept_scope.cancel()
                    context.begin_shutdown()
                    with trio.move_on_after(config.graceful_timeout) as drain:
                        await context.wait_idle()
                    if drain.cancelled_caught:
                        await config.log.warning(
                            "graceful_timeout (%ss) passed with %d connection(s) open; "
                            "closing them",
                            config.graceful_timeout,
                            len(context.connections),
                        )
                connections.cancel_scope.cancel()
    finally:
        with trio.CancelScope(shield=True):
            for listener in listeners:
                await listener.aclose()
        for udp_socket in udp_sockets:
            udp_socket.close()

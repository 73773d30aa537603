"""``worker_serve``: one asyncio worker serving until its shutdown trigger fires.

Shutdown sequence: stop accepting; close idle keep-alive connections and ask busy ones to
close after their response; wait up to ``graceful_timeout`` for connections and application
tasks; cancel what is left; run lifespan shutdown.
"""

from __future__ import annotations

import asyncio
import signal
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

from ..admin import AdminApp
from ..app_wrappers import ASGIWrapper
from ..config import Sockets
from ..typing import TASK_STATUS_IGNORED, TaskStatus
from ..utils import bound_urls
from .lifespan import Lifespan
from .tcp_server import TCPServer
from .worker_context import WorkerContext

if TYPE_CHECKING:
    from ..config import Config
    from ..typing import AppWrapper


async def _signal_trigger(loop: asyncio.AbstractEventLoop) -> None:
    """Wait for SIGINT or SIGTERM (when this is the main thread; else wait forever)."""
    event = asyncio.Event()
    installed = []
    for signum in (signal.SIGINT, signal.SIGTERM):
        try:
            loop.add_signal_handler(signum, event.set)
            installed.append(signum)
        except (NotImplementedError, RuntimeError, ValueError):
            pass
    try:
        await event.wait()
    finally:
        for signum in installed:
            loop.remove_signal_handler(signum)


async def worker_serve(
    app: AppWrapper,
    config: Config,
    *,
    sockets: Sockets | None = None,
    shutdown_trigger: Callable[..., Awaitable[Any]] | None = None,
    task_status: TaskStatus = TASK_STATUS_IGNORED,
) -> None:
    """Serve ``app`` until ``shutdown_trigger`` returns (SIGINT/SIGTERM when it is None).

    ``sockets`` are pre-bound listeners (bound from ``config`` when omitted);
    ``task_status.started(urls)`` is called with the bound URLs once the server accepts
    connections (the same interface as the trio backend's).
    """
    loop = asyncio.get_running_loop()
    if config.debug:
        loop.set_debug(True)
    owns_sockets = sockets is None
    if sockets is None:
        sockets = config.create_sockets()
    context = WorkerContext(config)
    # The admin listener answers from before start-up (/livez 200, /readyz 503 until ready).
    admin_context = WorkerContext(config, observe=False)
    admin_app = ASGIWrapper(AdminApp(lambda: context.ready))
    admin_servers = [
        await loop.create_server(lambda: TCPServer(admin_app, config, admin_context), sock=sock)
        for sock in sockets.admin_sockets
    ]
    lifespan = Lifespan(app, config, context.lifespan_state)
    lifespan.start()
    try:
        await lifespan.wait_for_startup()
    except BaseException:
        await lifespan.aclose()
        for server in admin_servers:
            server.close()
        if owns_sockets:
            sockets.close()
        raise

    ssl_context = config.create_ssl_context()
    servers: list[asyncio.Server] = []

    def factory() -> TCPServer:
        return TCPServer(app, config, context)

    try:
        for sock in sockets.secure_sockets:
            servers.append(
                await loop.create_server(
                    factory,
                    sock=sock,
                    backlog=config.backlog,
                    ssl=ssl_context,
                    ssl_handshake_timeout=config.ssl_handshake_timeout,
                )
            )
        for sock in sockets.insecure_sockets:
            servers.append(await loop.create_server(factory, sock=sock, backlog=config.backlog))
        if sockets.quic_sockets:
            # aioquic (and cryptography) cost ~25 MiB of memory: imported only when used.
            from .udp_server import UDPServer

            quic_config = config.create_quic_configuration()
            for sock in sockets.quic_sockets:
                await loop.create_datagram_endpoint(
                    lambda: UDPServer(app, config, context, quic_config), sock=sock
                )
        urls = bound_urls(sockets)
        for url in urls:
            await config.log.info("Running on %s (CTRL + C to quit)", url)
        context.ready = True
        task_status.started(urls)

        trigger = shutdown_trigger() if shutdown_trigger is not None else _signal_trigger(loop)
        await _first_of(trigger, context.recycle.wait())
        if context.recycle.is_set():
            await config.log.info(
                "Recycling this worker after %d requests (max_requests)", context.requests_served
            )
    finally:
        context.ready = False
        if config.shutdown_delay:
            # Still serving while /readyz says 503, so load balancers stop sending first.
            try:
                await asyncio.sleep(config.shutdown_delay)
            except asyncio.CancelledError:
                pass
        context.shutting_down = True
        for server in servers:
            server.close()
        for connection in list(context.connections):
            connection.begin_shutdown()
        try:
            await asyncio.wait_for(asyncio.shield(context.wait_idle()), config.graceful_timeout)
        except asyncio.TimeoutError:
            await config.log.warning(
                "graceful_timeout (%ss) passed with %d connection(s) open; closing them",
                config.graceful_timeout,
                len(context.connections),
            )
        except asyncio.CancelledError:
            pass
        for connection in [*context.connections, *admin_context.connections]:
            connection.abort()
        for task in list(context.tasks):
            task.cancel()
        if context.tasks:
            await asyncio.wait(list(context.tasks), timeout=1.0)
        context.close()
        for server in admin_servers:
            server.close()
        if owns_sockets:
            sockets.close()
        await lifespan.wait_for_shutdown()


async def _first_of(*awaitables: Awaitable[Any]) -> None:
    """Wait for the first of ``awaitables`` to finish; cancel the others."""
    tasks = [asyncio.ensure_future(awaitable) for awaitable in awaitables]
    try:
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

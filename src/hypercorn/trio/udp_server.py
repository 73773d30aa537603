"""The trio QUIC driver: a reader and a timer loop around the sans-IO
:class:`~hypercorn.protocol.quic.QuicEndpoint` of one UDP socket; applications run exactly as
for TCP (:class:`AppRunner`)."""

from __future__ import annotations

import contextvars
import math
from typing import TYPE_CHECKING, Any

import trio

from ..admin import metrics
from ..protocol.quic import QuicEndpoint
from ..transport import log_refusal
from ..utils import parse_socket_addr
from .app_runner import AppRunner

if TYPE_CHECKING:
    from ..config import Config
    from ..protocol.ws_stream import AnyStream
    from ..typing import AppWrapper
    from .worker_context import WorkerContext

MAX_DATAGRAM = 65536


class UDPServer(AppRunner):
    """The QUIC listener of one UDP socket."""

    def __init__(
        self,
        app: AppWrapper,
        config: Config,
        context: WorkerContext,
        sock: trio.socket.SocketType,
        quic_config: Any,
    ) -> None:
        self.app = app
        self.config = config
        self.context = context
        self.sock = sock
        self.core = QuicEndpoint(
            config,
            quic_config,
            parse_socket_addr(sock.family, sock.getsockname()),
            context.lifespan_state,
            config.max_connections,
        )
        self._apps: trio.Nursery | None = None
        self._app_scopes: dict[AnyStream, trio.CancelScope] = {}
        self._app_context = contextvars.copy_context()  # (see AppRunner)
        self._io_scope = trio.CancelScope()
        self._timer_scope: trio.CancelScope | None = None
        self._deadline: float | None = None
        self._counted = 0
        self._refused_logged = 0

    async def run(self) -> None:
        self.context.add_connection(self)
        try:
            if self.context.shutting_down:
                self.core.begin_shutdown(trio.current_time())
            async with trio.open_nursery() as apps:
                self._apps = apps
                try:
                    with self._io_scope:
                        async with trio.open_nursery() as io:
                            io.start_soon(self._timer_loop)
                            await self._read_loop()
                finally:
                    self.core.connection_lost()
                    self._update_gauge()
        finally:
            self.context.remove_connection(self)

    def begin_shutdown(self) -> None:
        self.core.begin_shutdown(trio.current_time())
        self._wake_timer()

    def _wake_timer(self) -> None:
        """Have the timer loop act (and flush) now."""
        self._deadline = -math.inf
        if self._timer_scope is not None:
            self._timer_scope.deadline = -math.inf

    # ---------------------------------------------------------------- loops
    async def _read_loop(self) -> None:
        while True:
            try:
                data, addr = await self.sock.recvfrom(MAX_DATAGRAM)
            except ConnectionResetError:
                continue  # ICMP unreachable from a client that went away: its timers end it
            except OSError:
                return
            try:
                self.core.receive_datagram(data, addr, trio.current_time())
            except Exception:
                await self.config.log.exception("Internal error handling a QUIC datagram")
            await self._flush()

    async def _timer_loop(self) -> None:
        while True:
            deadline = self._deadline
            with trio.CancelScope(deadline=math.inf if deadline is None else deadline) as scope:
                self._timer_scope = scope
                await trio.sleep_forever()
            self._timer_scope = None
            self._deadline = None
            try:
                self.core.handle_timer(trio.current_time())
            except Exception:
                await self.config.log.exception("Internal error in a QUIC timer")
            await self._flush()

    async def _flush(self) -> None:
        core = self.core
        now = trio.current_time()
        self._start_apps(core.pop_new_streams(), core.pop_streams_to_cancel())
        for data, addr in core.datagrams_to_send(now):
            try:
                await self.sock.sendto(data, addr)
            except OSError:
                pass  # e.g. an unreachable client: QUIC's loss recovery deals with it
        self._update_gauge()
        if core.refused != self._refused_logged:
            self._refused_logged = core.refused
            log_refusal(self.config, "QUIC", core.refused)
        if core.closed:  # shut down, and every QUIC connection has ended
            self._io_scope.cancel()
            return
        deadline = core.next_deadline(now)
        if deadline != self._deadline:
            self._deadline = deadline
            if self._timer_scope is not None:
                self._timer_scope.deadline = math.inf if deadline is None else deadline

    def _update_gauge(self) -> None:
        if self.context.metrics and self._counted != self.core.connections:
            metrics().connections.labels("3").inc(self.core.connections - self._counted)
            self._counted = self.core.connections

    def _count_connection(self) -> None:
        pass  # QUIC connections are counted by the endpoint (_update_gauge)

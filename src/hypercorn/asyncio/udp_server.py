"""The asyncio QUIC driver: one ``DatagramProtocol`` per UDP socket around the sans-IO
:class:`~hypercorn.protocol.quic.QuicEndpoint`, which holds every HTTP/3 connection of the
socket. Applications run exactly as for TCP (:class:`AppRunner`)."""

from __future__ import annotations

import asyncio
import contextvars
from typing import TYPE_CHECKING, Any, cast

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


class UDPServer(AppRunner, asyncio.DatagramProtocol):
    """The QUIC listener of one UDP socket."""

    def __init__(
        self, app: AppWrapper, config: Config, context: WorkerContext, quic_config: Any
    ) -> None:
        self.app = app
        self.config = config
        self.log = config.log
        self.context = context
        self.quic_config = quic_config
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.DatagramTransport | None = None
        self.core: QuicEndpoint
        self._write_paused = False
        self._writable: asyncio.Event | None = None
        self._closing = False
        self._timer: asyncio.TimerHandle | None = None
        self._deadline: float | None = None
        self._tasks: dict[AnyStream, asyncio.Task[None]] = {}
        self._app_context = contextvars.copy_context()  # (see AppRunner)
        self._starting = False
        self._counted = 0
        self._refused_logged = 0

    # ---------------------------------------------------------------- asyncio callbacks
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport = cast(asyncio.DatagramTransport, transport)
        sock = transport.get_extra_info("socket")
        server = parse_socket_addr(sock.family, transport.get_extra_info("sockname"))
        self.core = QuicEndpoint(
            self.config,
            self.quic_config,
            server,
            self.context.lifespan_state,
            self.config.max_connections,
        )
        self.context.connections.add(self)
        if self.context.shutting_down:
            self.begin_shutdown()

    def datagram_received(self, data: bytes, addr: Any) -> None:
        if self._closing:
            return
        try:
            self.core.receive_datagram(data, addr, self.loop.time())
        except Exception:
            self._internal_error()
        self._flush()

    def error_received(self, exc: Exception) -> None:
        pass  # e.g. ICMP port unreachable from a client that went away: its timers end it

    def connection_lost(self, exc: Exception | None) -> None:
        self._closing = True
        self._resume_writes()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.core.connection_lost()
        self._update_gauge()
        self.context.remove_connection(self)

    def pause_writing(self) -> None:
        self._pause_writes()

    def resume_writing(self) -> None:
        self._resume_writes()

    def _internal_error(self) -> None:
        error_logger = self.config.log.error_logger
        if error_logger is not None:
            error_logger.exception("Internal error handling a QUIC datagram; dropped")

    # ---------------------------------------------------------------- shutdown
    def begin_shutdown(self) -> None:
        if not self._closing:
            self.core.begin_shutdown(self.loop.time())
            self._flush()

    def abort(self) -> None:
        for task in list(self._tasks.values()):
            task.cancel()
        if self.transport is not None:
            self.transport.abort()

    # ---------------------------------------------------------------- core plumbing
    def _flush(self) -> None:
        core = self.core
        transport = self.transport
        if transport is None or self._closing:
            return
        if not self._starting:  # (else the flush starting applications does the rest after)
            streams = core.pop_new_streams()
            while streams:
                self._start_apps(streams)
                if self._closing:
                    return
                streams = core.pop_new_streams()
        now = self.loop.time()
        for data, addr in core.datagrams_to_send(now):
            transport.sendto(data, addr)
        if self._starting:
            return
        self._update_gauge()
        if core.refused != self._refused_logged:
            self._refused_logged = core.refused
            log_refusal(self.config, "QUIC", core.refused)
        if core.closed:  # shut down, and every QUIC connection has ended
            self._closing = True
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            transport.close()
            return
        deadline = core.next_deadline(now)
        if deadline != self._deadline or (deadline is not None and self._timer is None):
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            self._deadline = deadline
            if deadline is not None:
                self._timer = self.loop.call_at(deadline, self._on_timer)

    def _on_timer(self) -> None:
        self._timer = None
        if not self._closing:
            try:
                self.core.handle_timer(self.loop.time())
            except Exception:
                self._internal_error()
            self._flush()

    def _update_gauge(self) -> None:
        if self.context.metrics and self._counted != self.core.connections:
            metrics().connections.labels("3").inc(self.core.connections - self._counted)
            self._counted = self.core.connections

    def _count_connection(self) -> None:
        pass  # QUIC connections are counted by the endpoint (_update_gauge)

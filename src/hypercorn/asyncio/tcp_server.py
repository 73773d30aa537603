"""The asyncio connection driver: moves bytes between a transport and the protocol core,
runs the application for each stream, and keeps the core's timer.

It is an ``asyncio.Protocol`` (callbacks, not a task per connection) because that is the
fastest way to drive asyncio and uvloop; everything protocol-specific lives in
``hypercorn.protocol``.
"""

from __future__ import annotations

import asyncio
import contextvars
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, cast

from ..admin import metrics
from ..protocol import ConnectionInfo
from ..protocol.connection import HTTPConnection
from ..transport import connection_info, log_refusal
from .app_runner import AppRunner

if TYPE_CHECKING:
    from ..config import Config
    from ..protocol.ws_stream import AnyStream
    from ..typing import AppWrapper
    from .worker_context import WorkerContext


LINGER_TIMEOUT = 2.0  # seconds to wait for the client's FIN after ours
# Output of a multiplexed (HTTP/2) connection is gathered into one write per turn of the
# event loop, but written at once when this much is waiting (see _queue).
GATHER_LIMIT = 65536


def transport_info(
    transport: asyncio.BaseTransport, ssl_object: Any, state: dict[str, Any]
) -> ConnectionInfo:
    # The address family comes from the shape of the addresses: asking uvloop for the
    # socket costs a wrapper object and a system call on every connection.
    return connection_info(
        None,
        transport.get_extra_info("peername"),
        transport.get_extra_info("sockname"),
        ssl_object,
        state,
    )


class TCPServer(AppRunner, asyncio.Protocol):
    """One client connection."""

    def __init__(self, app: AppWrapper, config: Config, context: WorkerContext) -> None:
        self.app = app
        self.config = config
        self.log = config.log
        self.context = context
        self.loop = asyncio.get_running_loop()
        self.transport: asyncio.Transport | None = None
        self.core: HTTPConnection  # created in connection_made, which asyncio calls first
        self._write_paused = False
        self._writable: asyncio.Event | None = None
        self._reading = True
        self._closing = False
        self._timer: asyncio.TimerHandle | None = None
        self._deadline = 0.0  # when the timer (if any) fires
        self._tasks: dict[AnyStream, asyncio.Task[None]] = {}
        self._app_context = contextvars.copy_context()  # (see AppRunner)
        self._starting = False
        self._counted_as: str | None = None
        self._refused = False  # over max_connections: closed at once
        self._lingering = False  # our side is done; waiting for the client's FIN
        self._peer_eof = False
        self._vectored = False  # write with writelines (see _write)
        self._gathered: list[bytes] = []  # output waiting for the end of this turn (_queue)
        self._gathered_size = 0
        self._backlog_due = False  # a call of _on_backlog is scheduled

    # ---------------------------------------------------------------- asyncio callbacks
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement the interface without subclassing asyncio.Transport
        self.transport = transport = cast(asyncio.Transport, transport)
        self._vectored = type(transport).__module__.startswith("uvloop")
        if not self.context.admit_connection():
            self._closing = self._refused = True
            log_refusal(self.config, "TCP", self.context.refused_connections)
            transport.abort()
            return
        try:
            ssl_object = transport.get_extra_info("ssl_object")
            info = transport_info(transport, ssl_object, self.context.lifespan_state)
            alpn = ssl_object.selected_alpn_protocol() if ssl_object is not None else None
            self.core = HTTPConnection(self.config, info, self.loop.time(), alpn)
        except Exception:  # a bug must cost this connection only, and say so
            self.context.tcp_connections -= 1
            self._closing = self._refused = True
            error_logger = self.config.log.error_logger
            if error_logger is not None:
                error_logger.exception("Internal error accepting a connection; closing it")
            transport.abort()
            return
        self.context.connections.add(self)
        if self.context.shutting_down:
            self.core.begin_shutdown()
        self._flush()

    def data_received(self, data: bytes) -> None:
        if self._lingering:
            return  # after our FIN: read and drop, so closing does not reset the connection
        try:
            self.core.receive_data(data, self.loop.time())
        except Exception:
            self._internal_error()
            return
        self._flush()

    def eof_received(self) -> bool:
        if self._lingering:
            return False  # the peer has read our last bytes and closed: close now
        self._peer_eof = True
        try:
            self.core.receive_data(b"", self.loop.time())
        except Exception:
            self._internal_error()
            return False
        self._flush()
        return True  # keep the transport open to finish a response; _flush closes it

    def _on_backlog(self) -> None:
        self._backlog_due = False
        if self._closing or self._write_paused:  # (resume_writing's _flush comes back here)
            return
        try:
            self.core.process_backlog(self.loop.time())
        except Exception:
            self._internal_error()
            return
        self._flush()

    def _internal_error(self) -> None:
        """A bug in the protocol handling: end this connection only, and say so."""
        error_logger = self.config.log.error_logger  # sync context: the stdlib logger itself
        if error_logger is not None:
            error_logger.exception("Internal error handling a connection; closing it")
        self.core.connection_lost()
        if self.transport is not None:
            self.transport.abort()

    def _count_connection(self) -> None:
        """Count this connection in the open-connections gauge once it carries a request
        (its protocol is known by then)."""
        if self._counted_as is None:
            self._counted_as = self.core.http_version
            metrics().connections.labels(self._counted_as).inc()

    def connection_lost(self, exc: Exception | None) -> None:
        if self._refused:
            return
        self.context.tcp_connections -= 1
        if self._counted_as is not None:
            metrics().connections.labels(self._counted_as).dec()
            self._counted_as = None
        self._closing = True
        self._resume_writes()
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.core.connection_lost()
        self.context.remove_connection(self)

    def pause_writing(self) -> None:
        # The peer is not reading: stop reading too, so a client that floods requests for
        # answers (pings, SETTINGS, pipelined requests) cannot grow our output buffer.
        self._pause_writes()
        if self._reading and self.transport is not None and not self._closing:
            self._reading = False
            self.transport.pause_reading()

    def resume_writing(self) -> None:
        self._resume_writes()
        self._flush()

    # ---------------------------------------------------------------- shutdown
    def begin_shutdown(self) -> None:
        if not self._closing:
            self.core.begin_shutdown()
            self._flush()

    def abort(self) -> None:
        for task in list(self._tasks.values()):
            task.cancel()
        if self.transport is not None:
            self.transport.abort()

    # ---------------------------------------------------------------- core plumbing
    def _flush(self) -> None:
        """Act on everything the core produced: write, start apps, close, pause, time."""
        transport = self.transport
        if transport is None or self._closing:
            return
        core = self.core.inner  # runs several times a request: skip the delegating layer
        if self._starting:
            # An application running eagerly, from the flush below that started it, which
            # does the rest after it. Its output is written now all the same (or gathered, up
            # to GATHER_LIMIT): a write is what can pause it (pause_writing) when the client
            # reads slower than it sends.
            chunks = core.chunks_to_send()
            if chunks:
                self._output(transport, chunks, core.multiplexed)
            return
        streams = core.pop_new_streams()
        while streams:  # (an answered request can let the next pipelined one in)
            self._start_apps(streams)
            if self._closing:
                return
            streams = core.pop_new_streams()
        chunks = core.chunks_to_send()
        if chunks:
            self._output(transport, chunks, core.multiplexed)
        streams = core.pop_streams_to_cancel()
        if streams:
            for stream in streams:
                task = self._tasks.get(stream)
                if task is not None:
                    task.cancel()
        if core.closed:
            if self._gathered:
                self._write_gathered()
            self._closing = True
            if self._timer is not None:
                self._timer.cancel()
                self._timer = None
            self._close_lingering(transport)
            return
        if core.wants_read and not self._write_paused:
            if not self._reading:
                self._reading = True
                transport.resume_reading()
        elif self._reading:
            self._reading = False
            transport.pause_reading()
        # (HTTP/2 goes on reading while a WebSocket session has a backlog; the others not)
        if core.backlogged and not self._write_paused and not self._backlog_due:
            self._backlog_due = True  # the rest of what was read, on the next turn
            self.loop.call_soon(self._on_backlog)
        # One timer at the earliest deadline, moved only when a deadline comes sooner: with
        # keep-alive the deadline moves later on every request, and rescheduling each time
        # costs more than an early wake-up (which re-arms at the real deadline).
        deadline = core.next_deadline(self.loop.time())
        if deadline is not None and (self._timer is None or deadline < self._deadline):
            if self._timer is not None:
                self._timer.cancel()
            self._deadline = deadline
            self._timer = self.loop.call_at(deadline, self._on_timer)

    def _write(self, transport: asyncio.Transport, chunks: Sequence[bytes]) -> None:
        """Write the core's output. uvloop's ``writelines`` is one vectored write: a large
        body goes out with its head without being copied to join them. asyncio's own
        transport does not pause the protocol from ``writelines`` (Python 3.12), which would
        let a client that does not read make us buffer without bound: it gets one joined
        write."""
        if self._vectored:
            transport.writelines(chunks)
        else:
            transport.write(chunks[0] if len(chunks) == 1 else b"".join(chunks))

    def _output(self, transport: asyncio.Transport, chunks: Sequence[bytes], gather: bool) -> None:
        """The core's output: gathered on a multiplexed connection (_queue), else written."""
        if gather:
            self._queue(chunks)
        else:
            self._write(transport, chunks)

    def _queue(self, chunks: Sequence[bytes]) -> None:
        """Gather a multiplexed connection's output to write it once, after every stream the
        last read started (and every stream woken in this turn) has answered: ten responses
        in one write instead of ten, which on HTTP/2 under load is most of the system calls.
        Written at once past GATHER_LIMIT, so an application sending a large body still
        meets the transport's back-pressure (pause_writing) as it goes."""
        if not self._gathered:
            self.loop.call_soon(self._write_gathered)
        self._gathered += chunks
        for chunk in chunks:
            self._gathered_size += len(chunk)
        if self._gathered_size >= GATHER_LIMIT:
            self._write_gathered()

    def _write_gathered(self) -> None:
        chunks, self._gathered = self._gathered, []
        self._gathered_size = 0
        transport = self.transport
        if chunks and transport is not None and not self._closing:
            self._write(transport, chunks)

    def _close_lingering(self, transport: asyncio.Transport) -> None:
        """Close without destroying the last bytes: closing a socket with unread input makes
        the kernel send RST, which can discard the response (or GOAWAY) still in flight to a
        client that keeps sending. So: send FIN after what is buffered, keep reading (and
        dropping) until the client closes too, for at most LINGER_TIMEOUT seconds. Not when
        the client said its request was its last and sent nothing after it (the common
        ``Connection: close``: no input can come to cause the reset), and not for idle
        connections closed by a shutdown (nothing is in flight; the drain stays fast)."""
        core = self.core
        idle_at_shutdown = self.context.shutting_down and core.idle
        if (
            self._peer_eof
            or core.client_done
            or idle_at_shutdown
            or not transport.can_write_eof()  # (and TLS)
        ):
            transport.close()
            return
        try:
            transport.write_eof()
        except (OSError, RuntimeError):
            transport.close()
            return
        self._lingering = True
        if not self._reading:
            self._reading = True
            transport.resume_reading()
        self._timer = self.loop.call_later(LINGER_TIMEOUT, transport.abort)

    def _on_timer(self) -> None:
        self._timer = None
        if not self._closing:
            self.core.handle_timer(self.loop.time())
            self._flush()

"""The trio connection driver: three small loops around the protocol core.

- the reader feeds bytes from the stream to the core (pausing while the core does not want
  more), and never gets cancelled mid-read except when the connection ends;
- the timer sleeps until the core's next deadline (the deadline is moved by adjusting the
  sleep's cancel scope, never by cancelling a read);
- each application task bridges ``receive``/``send`` to its stream.

Every one of them calls :meth:`TCPServer._flush` after touching the core; writes happen under
one lock, so bytes leave in the order the core produced them.
"""

from __future__ import annotations

import contextvars
import math
from typing import TYPE_CHECKING, Any

import trio

from ..admin import metrics
from ..protocol import ConnectionInfo, ProtocolConnection
from ..protocol.connection import HTTPConnection
from ..transport import connection_info, log_refusal
from .app_runner import AppRunner

if TYPE_CHECKING:
    from ..config import Config
    from ..protocol.ws_stream import AnyStream
    from ..typing import AppWrapper
    from .worker_context import WorkerContext

MAX_RECV = 2**16
LINGER_TIMEOUT = 2.0  # seconds to wait for the client's FIN after ours


def stream_info(stream: trio.abc.Stream, state: dict[str, Any]) -> ConnectionInfo:
    ssl_object = None
    transport = stream
    if isinstance(stream, trio.SSLStream):
        ssl_object = stream
        transport = stream.transport_stream
    if isinstance(transport, trio.SocketStream):
        sock = transport.socket
        try:
            peer = sock.getpeername()
        except OSError:  # the client already reset the connection
            peer = None
        return connection_info(sock.family, peer, sock.getsockname(), ssl_object, state)
    return connection_info(None, None, None, ssl_object, state)  # e.g. in-memory test streams


class TCPServer(AppRunner):
    """One client connection."""

    def __init__(
        self, app: AppWrapper, config: Config, context: WorkerContext, stream: trio.abc.Stream
    ) -> None:
        self.app = app
        self.config = config
        self.context = context
        self.stream = stream
        self.core: ProtocolConnection  # created in _serve, before anything can reach it
        self._send_lock = trio.Lock()
        self._can_read = trio.Event()
        self._io_scope = trio.CancelScope()
        self._timer_scope: trio.CancelScope | None = None
        self._deadline: float | None = None
        self._apps: trio.Nursery | None = None
        self._app_scopes: dict[AnyStream, trio.CancelScope] = {}
        self._app_context = contextvars.copy_context()  # (see AppRunner)
        self._counted_as: str | None = None
        self._peer_eof = False

    async def run(self) -> None:
        if not self.context.admit_connection():
            log_refusal(self.config, "TCP", self.context.refused_connections)
            await trio.aclose_forcefully(self.stream)
            return
        try:
            await self._run()
        finally:
            self.context.tcp_connections -= 1

    async def _run(self) -> None:
        try:
            if isinstance(self.stream, trio.SSLStream):
                with trio.move_on_after(self.config.ssl_handshake_timeout) as handshake:
                    await self.stream.do_handshake()
                if handshake.cancelled_caught:
                    await trio.aclose_forcefully(self.stream)
                    return
            await self._serve()
        except (trio.BrokenResourceError, trio.ClosedResourceError):  # e.g. a failed handshake
            await trio.aclose_forcefully(self.stream)
        except Exception:
            # A bug in the protocol handling must end this connection only: it runs in the
            # nursery shared by every connection.
            await self.config.log.exception("Internal error handling a connection; closing it")
            await trio.aclose_forcefully(self.stream)

    async def _serve(self) -> None:
        alpn = (
            self.stream.selected_alpn_protocol()
            if isinstance(self.stream, trio.SSLStream)
            else None
        )
        self.core = HTTPConnection(
            self.config,
            stream_info(self.stream, self.context.lifespan_state),
            trio.current_time(),
            alpn,
        )
        self.context.add_connection(self)
        try:
            if self.context.shutting_down:
                self.core.begin_shutdown()
            self._deadline = self.core.next_deadline(trio.current_time())
            async with trio.open_nursery() as apps:
                self._apps = apps
                try:
                    with self._io_scope:
                        async with trio.open_nursery() as io:
                            io.start_soon(self._timer_loop)
                            await self._read_loop()
                            io.cancel_scope.cancel()
                finally:
                    # Applications still running see the disconnect; the socket closes now.
                    self.core.connection_lost()
                    await self._close()
        finally:
            if self._counted_as is not None:
                metrics().connections.labels(self._counted_as).dec()
            self.context.remove_connection(self)

    async def _close(self) -> None:
        """Close without destroying the last bytes: closing a socket with unread input makes
        the kernel send RST, which can discard the response (or GOAWAY) still in flight to a
        client that keeps sending. So: FIN, then read and drop until the client closes too,
        for at most LINGER_TIMEOUT seconds (not at all when cancelled, over TLS, when the
        client said its request was its last and sent nothing after it, or for idle
        connections closed by a shutdown)."""
        stream = self.stream
        try:
            core = self.core
            idle_at_shutdown = self.context.shutting_down and core.idle
            done = self._peer_eof or core.client_done or idle_at_shutdown
            if isinstance(stream, trio.SocketStream) and not done:
                with trio.move_on_after(LINGER_TIMEOUT):
                    async with self._send_lock:
                        await stream.send_eof()
                    while await stream.receive_some(MAX_RECV):
                        pass
        except (trio.BrokenResourceError, trio.ClosedResourceError, trio.BusyResourceError):
            pass
        finally:
            await trio.aclose_forcefully(stream)

    def _count_connection(self) -> None:
        """Count this connection in the open-connections gauge once it carries a request
        (its protocol is known by then)."""
        if self._counted_as is None:
            self._counted_as = self.core.http_version
            metrics().connections.labels(self._counted_as).inc()

    def begin_shutdown(self) -> None:
        self.core.begin_shutdown()
        if self.core.closed:
            self._io_scope.cancel()

    # ---------------------------------------------------------------- loops
    async def _read_loop(self) -> None:
        core = self.core
        while not core.closed:
            if core.backlogged:  # the rest of what was read, after the other tasks' turn
                await trio.lowlevel.checkpoint()
                core.process_backlog(trio.current_time())
                await self._flush()  # (waits while the client does not read)
                continue
            if not core.wants_read:
                self._can_read = trio.Event()
                await self._can_read.wait()
                continue
            try:
                data = await self.stream.receive_some(MAX_RECV)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                core.connection_lost()
                return
            if not isinstance(data, bytes):  # SSLStream hands out bytearrays
                data = bytes(data)
            if not data:
                self._peer_eof = True
            core.receive_data(data, trio.current_time())
            await self._flush()
            if not data:
                return

    async def _timer_loop(self) -> None:
        while True:
            with trio.CancelScope(deadline=self._deadline or math.inf) as scope:
                self._timer_scope = scope
                await trio.sleep_forever()
            self._timer_scope = None
            self.core.handle_timer(trio.current_time())
            await self._flush()

    async def _flush(self) -> None:
        """Act on everything the core produced: start apps, write, close, read, time."""
        core = self.core
        while True:  # a stream answered at once (503) can hand over the next pipelined one
            new, to_cancel = core.pop_new_streams(), core.pop_streams_to_cancel()
            if not new and not to_cancel:
                break
            self._start_apps(new, to_cancel)
        async with self._send_lock:
            data = core.data_to_send()
            if data:
                try:
                    await self.stream.send_all(data)
                except (trio.BrokenResourceError, trio.ClosedResourceError):
                    core.connection_lost()
        if core.closed:
            self._io_scope.cancel()
            return
        if core.wants_read or core.backlogged:
            self._can_read.set()
        deadline = core.next_deadline(trio.current_time())
        if deadline != self._deadline:
            self._deadline = deadline
            if self._timer_scope is not None:
                self._timer_scope.deadline = deadline if deadline is not None else math.inf

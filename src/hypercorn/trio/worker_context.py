"""State shared by every connection of one trio worker."""

from __future__ import annotations

from typing import TYPE_CHECKING

import trio

from ..worker_state import WSGI_THREADS, WorkerState

if TYPE_CHECKING:
    from ..config import Config
    from .tcp_server import TCPServer
    from .udp_server import UDPServer


class WorkerContext(WorkerState):
    """Open connections (each owns its application tasks), for graceful shutdown."""

    recycle: trio.Event

    def __init__(self, config: Config, observe: bool = True) -> None:
        super().__init__(config, observe)
        self.connections: set[TCPServer | UDPServer] = set()
        self.recycle = trio.Event()
        self.limiter = trio.CapacityLimiter(WSGI_THREADS)
        self._idle = trio.Event()

    def add_connection(self, connection: TCPServer | UDPServer) -> None:
        self.connections.add(connection)

    def remove_connection(self, connection: TCPServer | UDPServer) -> None:
        self.connections.discard(connection)
        if self.shutting_down and not self.connections:
            self._idle.set()

    def begin_shutdown(self) -> None:
        self.shutting_down = True
        for connection in list(self.connections):
            connection.begin_shutdown()
        if not self.connections:
            self._idle.set()

    async def wait_idle(self) -> None:
        """Return once every connection (and so every application task) has finished."""
        await self._idle.wait()

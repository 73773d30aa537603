"""State shared by every connection of one trio worker."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any

import trio

if TYPE_CHECKING:
    from ..config import Config
    from .tcp_server import TCPServer

# WSGI applications block a thread per request; the limiter bounds that concurrency.
WSGI_THREADS = 32


class WorkerContext:
    """Open connections (each owns its application tasks), for graceful shutdown."""

    def __init__(self, config: Config, observe: bool = True) -> None:
        self.config = config
        # False for the admin listener: its requests are neither logged nor counted.
        self.observe = observe
        self.ready = False  # for /readyz: lifespan start-up done and shutdown not begun
        self.connections: set[TCPServer] = set()
        self.lifespan_state: dict[str, Any] = {}
        self.shutting_down = False
        self.in_flight = 0  # application calls running, for max_concurrent_requests
        self.requests_served = 0
        # max_requests (+ jitter, so workers do not all recycle at once): then drain and exit.
        self.max_requests = (
            None
            if config.max_requests is None
            else config.max_requests + random.randint(0, config.max_requests_jitter)
        )
        self.recycle = trio.Event()
        self.warned_untrusted = False
        self.limiter = trio.CapacityLimiter(WSGI_THREADS)
        self._idle = trio.Event()

    def admit(self) -> bool:
        """Count a new application call in, unless ``max_concurrent_requests`` are running."""
        limit = self.config.max_concurrent_requests
        if limit is not None and self.in_flight >= limit:
            return False
        self.in_flight += 1
        self.requests_served += 1
        if self.max_requests is not None and self.requests_served >= self.max_requests:
            self.recycle.set()
        return True

    def add_connection(self, connection: TCPServer) -> None:
        self.connections.add(connection)

    def remove_connection(self, connection: TCPServer) -> None:
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

"""State shared by every connection of one asyncio worker."""

from __future__ import annotations

import asyncio
import random
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ..config import Config
    from .tcp_server import TCPServer

# WSGI applications block a thread per request; the pool bounds that concurrency.
WSGI_THREADS = 32


class WorkerContext:
    """Open connections and running application tasks, for graceful shutdown."""

    def __init__(self, config: Config, observe: bool = True) -> None:
        self.config = config
        # False for the admin listener: its requests are neither logged nor counted.
        self.observe = observe
        self.ready = False  # for /readyz: lifespan start-up done and shutdown not begun
        self.connections: set[TCPServer] = set()
        self.tasks: set[asyncio.Task[None]] = set()
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
        self.recycle = asyncio.Event()
        self.warned_untrusted = False
        self._executor: ThreadPoolExecutor | None = None
        self._idle: asyncio.Event | None = None

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

    @property
    def executor(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(WSGI_THREADS, thread_name_prefix="hypercorn-wsgi")
        return self._executor

    def add_task(self, task: asyncio.Task[None]) -> None:
        self.tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[None]) -> None:
        self.tasks.discard(task)
        self._check_idle()

    def remove_connection(self, connection: TCPServer) -> None:
        self.connections.discard(connection)
        self._check_idle()

    def _check_idle(self) -> None:
        if self._idle is not None and not self.connections and not self.tasks:
            self._idle.set()

    async def wait_idle(self) -> None:
        """Return once no connection is open and no application task runs."""
        self._idle = asyncio.Event()
        self._check_idle()
        await self._idle.wait()

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)

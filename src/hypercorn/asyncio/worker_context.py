"""State shared by every connection of one asyncio worker."""

from __future__ import annotations

import asyncio
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING

from ..worker_state import WSGI_THREADS, WorkerState

if TYPE_CHECKING:
    from ..config import Config
    from .tcp_server import TCPServer
    from .udp_server import UDPServer


class WorkerContext(WorkerState):
    """Open connections and running application tasks, for graceful shutdown."""

    recycle: asyncio.Event

    def __init__(self, config: Config, observe: bool = True) -> None:
        super().__init__(config, observe)
        self.connections: set[TCPServer | UDPServer] = set()
        self.tasks: set[asyncio.Task[None]] = set()
        self.recycle = asyncio.Event()
        self._executor: ThreadPoolExecutor | None = None
        self._idle: asyncio.Event | None = None

    @property
    def executor(self) -> ThreadPoolExecutor:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(WSGI_THREADS, thread_name_prefix="hypercorn-wsgi")
        return self._executor

    def task_done(self, task: asyncio.Task[None]) -> None:
        """An application task in ``tasks`` ended (called from its done callback)."""
        self.tasks.discard(task)
        self._check_idle()

    def remove_connection(self, connection: TCPServer | UDPServer) -> None:
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

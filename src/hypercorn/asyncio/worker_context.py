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


# Eager starts (Python 3.12, AppRunner._start_app): given up after this many in a row did not
# finish at once, and then tried again on every EAGER_PROBE_EVERY-th request.
EAGER_PATIENCE = 8
EAGER_PROBE_EVERY = 64
# WorkerContext.start_call's answers
REFUSED, EAGER, LAZY = 0, 1, 2


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
        self._eager_credit = EAGER_PATIENCE
        self._eager_skipped = 0

    def start_call(self) -> int:
        """Count an application call in and say how to start it (one call: it runs per
        request): REFUSED over ``max_concurrent_requests`` (see :meth:`admit`), else EAGER
        or LAZY. An eager start pays off when the application finishes without waiting
        (most handlers: no task is scheduled at all), is neutral when it awaits I/O, and
        costs throughput when it hands its work to a thread at once (sync views run in a
        pool, WSGI): the thread then competes for the GIL with the loop still reading
        (measured: -25%). So this follows what the application does: eager while eager
        starts keep finishing, lazy after EAGER_PATIENCE in a row did not, probing now and
        then in case the traffic changes."""
        if not self.admit():
            return REFUSED
        if self._eager_credit > 0:
            return EAGER
        self._eager_skipped += 1
        return EAGER if self._eager_skipped % EAGER_PROBE_EVERY == 0 else LAZY

    def eager_start_ended(self, finished: bool) -> None:
        """Record whether an eager start finished the application call at once (and if so,
        count the call out)."""
        if finished:
            self._eager_credit = EAGER_PATIENCE
            self.in_flight -= 1
        else:
            self._eager_credit -= 1

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

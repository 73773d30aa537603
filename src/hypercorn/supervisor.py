"""The process supervisor used when ``workers >= 1``.

Each worker is a spawned process serving the listening sockets the supervisor bound, with its
own *stop* event (so workers can be stopped one at a time) and *ready* event (set once it
accepts connections). The supervisor:

- restarts a worker that exits on its own: at once when it recycled itself (``max_requests``,
  exit code 0); with back-off (0.1 s, doubling up to 5 s) when it crashed. More than
  ``CRASH_LIMIT`` crashes within ``CRASH_WINDOW`` seconds is a crash loop: everything stops
  and the exit code is 1;
- treats a worker that exits 2 or 3 before it was ready (application not found, lifespan
  start-up failed) as the server failing to start: everything stops with that exit code;
- SIGTERM/SIGINT: stops every worker gracefully and exits 0; a second one kills them (exit 1);
- SIGHUP: restarts workers one at a time, each replacement ready before the old one stops, so
  no request is refused meanwhile;
- SIGTTIN/SIGTTOU: one worker more / one fewer (never fewer than one);
- as PID 1 in a container, also reaps orphaned processes that are re-parented to it.
"""

from __future__ import annotations

import logging
import multiprocessing
import multiprocessing.connection
import os
import signal
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.process import BaseProcess
from multiprocessing.synchronize import Event as EventType
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .reloader import ChangeDetector, make_reloader

if TYPE_CHECKING:
    from .config import Config, Sockets

CRASH_LIMIT = 5
CRASH_WINDOW = 60.0
BACKOFF_START = 0.1
BACKOFF_MAX = 5.0
EXIT_OK, EXIT_FAILURE = 0, 1
STARTUP_FAILURES = (2, 3)

log = logging.getLogger("hypercorn.error")


@dataclass
class Worker:
    process: BaseProcess
    stop: EventType
    ready: EventType
    stopping: bool = False
    started_at: float = field(default_factory=time.monotonic)


class Supervisor:
    def __init__(
        self,
        config: Config,
        sockets: Sockets,
        worker_main: Callable[..., Any],
        stop_requested: Callable[[], bool],
    ) -> None:
        self.config = config
        self.sockets = sockets
        self.worker_main = worker_main
        self.stop_requested = stop_requested
        self.context = multiprocessing.get_context("spawn")
        self.target = max(1, config.workers)
        self.workers: list[Worker] = []
        self.crashes: deque[float] = deque()
        self.backoff = BACKOFF_START
        self.next_spawn_at = 0.0
        self.exit_code = EXIT_OK
        self.pending_signals: deque[int] = deque()
        self.reloader: ChangeDetector | None = None
        if config.use_reloader:
            self.reloader = make_reloader(Path(config.app_dir or os.getcwd()).resolve())

    # ------------------------------------------------------------------ signals
    def install_signal_handlers(self) -> None:
        for signum in (signal.SIGHUP, signal.SIGTTIN, signal.SIGTTOU):
            signal.signal(signum, lambda number, frame: self.pending_signals.append(number))

    def kill_all(self) -> None:
        for worker in self.workers:
            if worker.process.pid is not None and worker.process.is_alive():
                os.kill(worker.process.pid, signal.SIGKILL)

    # ------------------------------------------------------------------ workers
    def spawn(self) -> Worker:
        stop, ready = self.context.Event(), self.context.Event()
        process = self.context.Process(
            target=self.worker_main, args=(self.config, self.sockets, stop, ready)
        )
        process.start()
        worker = Worker(process, stop, ready)
        self.workers.append(worker)
        return worker

    def active(self) -> list[Worker]:
        return [worker for worker in self.workers if not worker.stopping]

    def stop(self, worker: Worker) -> None:
        worker.stopping = True
        worker.stop.set()

    def reap(self) -> None:
        """Deal with every worker that has exited."""
        for worker in [w for w in self.workers if not w.process.is_alive()]:
            worker.process.join()
            self.workers.remove(worker)
            self._forget_metrics(worker)
            code = worker.process.exitcode
            if worker.stopping:
                continue
            if not worker.ready.is_set() and code in STARTUP_FAILURES:
                log.critical("A worker failed to start (exit code %s); stopping", code)
                self.exit_code = code or EXIT_FAILURE
                return
            if code == 0:
                log.info("Worker %s recycled itself; starting a replacement", worker.process.pid)
                continue
            now = time.monotonic()
            self.crashes.append(now)
            while self.crashes and self.crashes[0] < now - CRASH_WINDOW:
                self.crashes.popleft()
            if len(self.crashes) > CRASH_LIMIT:
                log.critical(
                    "Workers crashed %d times within %ss: a crash loop; stopping",
                    len(self.crashes),
                    CRASH_WINDOW,
                )
                self.exit_code = EXIT_FAILURE
                return
            log.error(
                "Worker %s exited with %s; restarting in %.1f s",
                worker.process.pid,
                code,
                self.backoff,
            )
            self.next_spawn_at = now + self.backoff
            self.backoff = min(self.backoff * 2, BACKOFF_MAX)

    def _forget_metrics(self, worker: Worker) -> None:
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR") and worker.process.pid is not None:
            from prometheus_client import multiprocess

            multiprocess.mark_process_dead(worker.process.pid)  # type: ignore[no-untyped-call]

    def rolling_restart(self) -> None:
        """Replace every worker, one at a time, each replacement ready before the old stops."""
        log.info("SIGHUP: restarting workers one at a time")
        for old in self.active():
            new = self.spawn()
            deadline = time.monotonic() + self.config.startup_timeout + 10
            while not new.ready.wait(0.1):
                if (
                    self.stop_requested()
                    or not new.process.is_alive()
                    or time.monotonic() > deadline
                ):
                    log.error("The replacement worker did not become ready; keeping the old")
                    return
            self.stop(old)

    def scale(self, signum: int) -> None:
        if signum == signal.SIGTTIN:
            self.target += 1
        elif self.target > 1:
            self.target -= 1
        log.info("Workers: %d", self.target)

    # ------------------------------------------------------------------ the loop
    def run(self) -> int:
        self.install_signal_handlers()
        for _ in range(self.target):
            self.spawn()
        while not self.stop_requested() and self.exit_code == EXIT_OK:
            while self.pending_signals:
                signum = self.pending_signals.popleft()
                if signum == signal.SIGHUP:
                    self.rolling_restart()
                else:
                    self.scale(signum)
            if self.reloader is not None and self.reloader.changed():
                log.info("Source files changed: restarting workers")
                self.rolling_restart()
            self.reap()
            if self.exit_code != EXIT_OK:
                break
            active = self.active()
            if any(worker.ready.is_set() for worker in active):
                self.backoff = BACKOFF_START if not self.crashes else self.backoff
            if len(active) < self.target and time.monotonic() >= self.next_spawn_at:
                self.spawn()
            elif len(active) > self.target:
                self.stop(min(active, key=lambda worker: worker.started_at))
            reap_orphans(self.workers)
            sentinels = [worker.process.sentinel for worker in self.workers]
            multiprocessing.connection.wait(sentinels, timeout=0.1)
        return self.shutdown()

    def shutdown(self) -> int:
        """Stop every worker gracefully, waiting at most their whole drain."""
        if self.reloader is not None:
            self.reloader.close()
        for worker in self.workers:
            self.stop(worker)
        deadline = (
            time.monotonic()
            + self.config.shutdown_delay
            + self.config.graceful_timeout
            + self.config.shutdown_timeout
            + 5
        )
        for worker in self.workers:
            worker.process.join(max(0.0, deadline - time.monotonic()))
        alive = [worker for worker in self.workers if worker.process.is_alive()]
        if alive:
            log.error("%d worker(s) did not stop in time; killing them", len(alive))
            self.kill_all()
            for worker in alive:
                worker.process.join(5)
        return self.exit_code


def reap_orphans(workers: list[Worker]) -> None:
    """As PID 1, reap exited processes that are not our workers (re-parented orphans), which
    would otherwise stay zombies for the life of the container."""
    if os.getpid() != 1 or not hasattr(os, "waitid"):
        return
    ours = {worker.process.pid for worker in workers}
    while True:
        try:
            status = os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
        except ChildProcessError:
            return
        if status is None or status.si_pid in ours:
            return  # nothing to reap, or one of ours (multiprocessing reaps those)
        try:
            os.waitpid(status.si_pid, os.WNOHANG)
        except ChildProcessError:
            return

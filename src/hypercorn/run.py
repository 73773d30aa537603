"""``run(config) -> exit code``: what the ``hypercorn`` command does after parsing its config.

Exit codes: 0 clean shutdown, 1 runtime failure (e.g. an address in use), 2 configuration
error (including an application that cannot be found), 3 application start-up failure
(lifespan start-up failed or timed out, or importing the application raised).

``workers = 0`` serves in this process. ``workers >= 1`` binds the listeners here and spawns
that many worker processes sharing them; SIGINT/SIGTERM drain them gracefully and a second
signal forces an immediate exit. (Restarting crashed workers, rolling SIGHUP restarts and
SIGTTIN/SIGTTOU are the supervisor issue's work: for now a worker that exits early makes the
others stop and the exit code is reported.)
"""

from __future__ import annotations

import asyncio
import logging
import os
import shutil
import signal
import sys
import tempfile
import traceback
from collections.abc import Awaitable, Callable
from functools import partial
from typing import TYPE_CHECKING, Any, Optional

from .admin import MULTIPROCESS_ENV
from .app_wrappers import ASGIWrapper, WSGIWrapper
from .config import Config, Sockets, parse_bind
from .malloc import tune_allocator
from .typing import TASK_STATUS_IGNORED, TaskStatus
from .utils import (
    LifespanFailureError,
    LifespanTimeoutError,
    NoAppError,
    load_application,
    write_pid_file,
)

if TYPE_CHECKING:
    from multiprocessing.synchronize import Event as EventType

    from .typing import AppWrapper

EXIT_OK, EXIT_FAILURE, EXIT_CONFIG, EXIT_STARTUP = 0, 1, 2, 3
_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class _Signals:
    """Records SIGINT/SIGTERM from the moment it is installed (before the app is imported), so
    a signal that arrives during a slow import still shuts the server down; a second signal
    forces an immediate exit."""

    def __init__(self, on_force: Callable[[], None]) -> None:
        self.received: int | None = None
        self.on_force = on_force
        self._previous: dict[int, Any] = {}

    def install(self) -> None:
        for signum in _SIGNALS:
            try:
                self._previous[signum] = signal.signal(signum, self._handle)
            except ValueError:  # not the main thread
                pass

    def restore(self) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)

    def _handle(self, signum: int, frame: Any) -> None:
        if self.received is not None:
            self.on_force()
            return
        self.received = signum


def _shutdown_trigger(
    sleep: Callable[[float], Awaitable[Any]],
    signals: _Signals | None = None,
    shutdown_event: EventType | None = None,
    parent: int | None = None,
) -> Callable[[], Awaitable[None]]:
    """A shutdown trigger for any backend (given its ``sleep``): fires on a recorded signal,
    on the supervisor's event, or when the supervisor has died (so no worker is orphaned)."""

    def fired() -> bool:
        return (
            (signals is not None and signals.received is not None)
            or (shutdown_event is not None and shutdown_event.is_set())
            or (parent is not None and os.getppid() != parent)
        )

    async def trigger() -> None:
        while not fired():
            await sleep(0.1)

    return trigger


def _force_exit() -> None:
    os._exit(EXIT_FAILURE)


def run(config: Config) -> int:
    """Run the server described by ``config``; returns the exit code."""
    if config.daemon:
        _daemonize()
    signals = _Signals(_force_exit)
    signals.install()
    _configure_import_path(config)
    if config.pid_path is not None:
        write_pid_file(config.pid_path)
    try:
        if config.workers == 0 and not config.use_reloader:
            return _serve_in_process(config, signals)
        return _run_workers(config, signals)
    finally:
        signals.restore()
        if config.pid_path is not None:
            try:
                os.unlink(config.pid_path)
            except OSError:
                pass


def _daemonize() -> None:
    """Detach (double fork, new session); the command returns 0 at once. Standard streams go
    to /dev/null, so log to files (``accesslog``/``errorlog``) when daemonized."""
    if os.fork() > 0:
        os._exit(EXIT_OK)
    os.setsid()
    if os.fork() > 0:
        os._exit(EXIT_OK)
    devnull = os.open(os.devnull, os.O_RDWR)
    for stream in (0, 1, 2):
        os.dup2(devnull, stream)
    os.close(devnull)


def _configure_import_path(config: Config) -> None:
    path = os.path.abspath(config.app_dir) if config.app_dir else os.getcwd()
    if path not in sys.path:
        sys.path.insert(0, path)


def build_app(config: Config) -> AppWrapper:
    """The application the configuration describes: ``app``, with ``mounts`` served through
    the dispatcher and, when TLS is configured with ``https_redirect``, plain-HTTP requests
    redirected to the TLS listener. (Trusted proxies are applied by the server itself, before
    all of this.) Raises NoAppError for an application that cannot be found."""
    assert config.app is not None
    app = load_application(config.app, config.wsgi_max_body_size)
    trio_backend = config.worker_class == "trio"
    if config.mounts:
        from .middleware.dispatcher import AsyncioDispatcherMiddleware, TrioDispatcherMiddleware

        dispatcher = TrioDispatcherMiddleware if trio_backend else AsyncioDispatcherMiddleware
        mounted = {
            prefix: _as_asgi(load_application(path, config.wsgi_max_body_size), trio_backend)
            for prefix, path in config.mounts.items()
        }
        mounted.setdefault("/", _as_asgi(app, trio_backend))
        app = ASGIWrapper(dispatcher(mounted))
    if config.https_redirect and config.ssl_enabled:
        from .middleware import HTTPToHTTPSRedirectMiddleware

        app = ASGIWrapper(
            HTTPToHTTPSRedirectMiddleware(
                _as_asgi(app, trio_backend), host=None, https_port=_tls_port(config)
            )
        )
    return app


def _as_asgi(wrapper: AppWrapper, trio_backend: bool) -> Any:
    """An ASGI 3 callable for a loaded application (WSGI ones run through the backend's
    WSGI middleware)."""
    if isinstance(wrapper, WSGIWrapper):
        from .middleware import AsyncioWSGIMiddleware, TrioWSGIMiddleware

        middleware = TrioWSGIMiddleware if trio_backend else AsyncioWSGIMiddleware
        return middleware(wrapper.app, wrapper.max_body_size)
    return wrapper.app if isinstance(wrapper, ASGIWrapper) else wrapper


def _tls_port(config: Config) -> Optional[int]:
    for bind in config.bind:
        kind, target = parse_bind(bind)
        if kind == "inet" and isinstance(target, tuple):
            return target[1]
    return None


def _load(config: Config) -> tuple[Any, int]:
    assert config.app is not None
    try:
        return build_app(config), EXIT_OK
    except NoAppError as error:
        print(f"hypercorn: configuration error: app: {error}", file=sys.stderr)
        return None, EXIT_CONFIG
    except Exception:
        print(f"hypercorn: importing the application {config.app!r} failed:", file=sys.stderr)
        traceback.print_exc()
        return None, EXIT_STARTUP


def _run_backend(
    config: Config,
    app: Any,
    sockets: Sockets | None,
    trigger_for: Callable[[Callable[[float], Awaitable[Any]]], Callable[[], Awaitable[None]]],
    task_status: TaskStatus = TASK_STATUS_IGNORED,
) -> None:
    """Run one worker on the configured backend until its shutdown trigger fires."""
    if config.worker_class == "trio":
        import trio

        from .trio.run import worker_serve as trio_worker_serve

        trio.run(
            partial(
                trio_worker_serve,
                app,
                config,
                sockets=sockets,
                shutdown_trigger=trigger_for(trio.sleep),
                task_status=task_status,
            )
        )
        return
    from .asyncio.run import worker_serve

    main = worker_serve(
        app,
        config,
        sockets=sockets,
        shutdown_trigger=trigger_for(asyncio.sleep),
        task_status=task_status,
    )
    if config.worker_class == "uvloop":
        import uvloop

        if sys.version_info >= (3, 11):
            with asyncio.Runner(loop_factory=uvloop.new_event_loop, debug=config.debug) as runner:
                runner.run(main)
        else:  # pragma: no cover
            uvloop.install()
            asyncio.run(main, debug=config.debug)
    else:
        asyncio.run(main, debug=config.debug)


def _serve(
    config: Config,
    sockets: Sockets | None,
    trigger_for: Callable[[Callable[[float], Awaitable[Any]]], Callable[[], Awaitable[None]]],
    task_status: TaskStatus = TASK_STATUS_IGNORED,
) -> int:
    """Load the app and serve it in this process; returns the exit code."""
    tune_allocator()  # before the application allocates anything
    app, code = _load(config)
    if app is None:
        return code
    try:
        _run_backend(config, app, sockets, trigger_for, task_status)
    except (LifespanFailureError, LifespanTimeoutError) as error:
        logging.getLogger("hypercorn.error").critical("Application start-up failed: %s", error)
        return EXIT_STARTUP
    except OSError as error:
        logging.getLogger("hypercorn.error").critical("%s", error)
        return EXIT_FAILURE
    return EXIT_OK


def _serve_in_process(config: Config, signals: _Signals) -> int:
    return _serve(config, None, lambda sleep: _shutdown_trigger(sleep, signals=signals))


# --------------------------------------------------------------------------- worker processes


def _worker_main(config: Config, sockets: Sockets, stop: EventType, ready: EventType) -> None:
    # The supervisor owns SIGINT/SIGTERM/SIGHUP/SIGTTIN/SIGTTOU and tells workers through
    # their stop event; a terminal's Ctrl+C reaches the whole process group, so workers ignore
    # it.
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGTTIN, signal.SIGTTOU):
        signal.signal(signum, signal.SIG_IGN)
    _configure_import_path(config)
    parent = os.getppid()
    try:
        sockets.bind_worker_quic_sockets(config)
    except OSError as error:
        logging.getLogger("hypercorn.error").critical("%s", error)
        sys.exit(EXIT_FAILURE)
    sys.exit(
        _serve(
            config,
            sockets,
            lambda sleep: _shutdown_trigger(sleep, shutdown_event=stop, parent=parent),
            _ReadyEvent(ready),
        )
    )


class _ReadyEvent:
    """A task_status that tells the supervisor the worker accepts connections."""

    def __init__(self, event: EventType) -> None:
        self.event = event

    def started(self, value: Any = None) -> None:
        self.event.set()


def _run_workers(config: Config, signals: _Signals) -> int:
    from .supervisor import Supervisor

    try:
        sockets = config.create_sockets()
    except OSError as error:
        print(f"hypercorn: {error}", file=sys.stderr)
        return EXIT_FAILURE
    sockets.separate_quic_sockets()
    # Every worker writes its metrics here, so /metrics from any worker counts them all.
    metrics_dir = tempfile.mkdtemp(prefix="hypercorn-metrics-")
    os.environ[MULTIPROCESS_ENV] = metrics_dir
    config.logger_class(config)  # the supervisor's own messages go where the workers' do
    config._log = None  # loggers are rebuilt in each worker
    supervisor = Supervisor(config, sockets, _worker_main, lambda: signals.received is not None)

    def force() -> None:
        supervisor.kill_all()
        os._exit(EXIT_FAILURE)

    signals.on_force = force
    try:
        return supervisor.run()
    finally:
        sockets.close()
        os.environ.pop(MULTIPROCESS_ENV, None)
        shutil.rmtree(metrics_dir, ignore_errors=True)

"""Serve an ASGI or WSGI application on trio."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Literal

import trio

from ..config import Config
from ..utils import wrap_app
from .run import worker_serve


async def serve(
    app: Any,
    config: Config,
    *,
    shutdown_trigger: Callable[..., Awaitable[Any]] | None = None,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
    mode: Literal["asgi", "wsgi"] | None = None,
) -> None:
    """Serve ``app`` with ``config`` until ``shutdown_trigger`` returns or the surrounding
    nursery is cancelled; ``task_status.started(urls)`` is called once listening.

    Without a trigger the server shuts down gracefully on SIGINT or SIGTERM (when running in
    the main thread). ``mode`` forces "asgi" or "wsgi" instead of detecting it. ``workers``
    and ``worker_class`` do not apply here: the caller owns the event loop.
    """
    await worker_serve(
        wrap_app(app, config.wsgi_max_body_size, mode),
        config,
        shutdown_trigger=shutdown_trigger,
        task_status=task_status,
    )


__all__ = ["serve"]

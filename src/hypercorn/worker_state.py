"""What every backend's worker keeps about itself, independent of the event loop."""

from __future__ import annotations

import random
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from .config import Config


class EventLike(Protocol):
    def set(self) -> None: ...

    def is_set(self) -> bool: ...


# WSGI applications block a thread per request; the pool bounds that concurrency.
WSGI_THREADS = 32


class WorkerState:
    """Counters and flags of one worker; each backend's ``WorkerContext`` extends it with its
    own connections, tasks and events (``recycle`` is the backend's Event type)."""

    recycle: EventLike

    def __init__(self, config: Config, observe: bool = True) -> None:
        self.config = config
        # False for the admin listener: its requests are neither logged nor counted.
        self.observe = observe
        # Metrics cost a few label lookups per request: only kept when /metrics can be read.
        self.metrics = observe and config.admin_bind is not None
        self.ready = False  # for /readyz: lifespan start-up done and shutdown not begun
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
        self.warned_untrusted = False
        self.tcp_connections = 0  # open, for max_connections
        self.refused_connections = 0
        # (read once: a Config field costs a pydantic lookup, and admit() runs per request)
        self.max_connections = config.max_connections
        self.max_concurrent_requests = config.max_concurrent_requests

    def admit_connection(self) -> bool:
        """Count a new TCP connection in, unless ``max_connections`` are open (the caller
        closes it at once and says so with :func:`hypercorn.transport.log_refusal`)."""
        limit = self.max_connections
        if limit is not None and self.tcp_connections >= limit:
            self.refused_connections += 1
            return False
        self.tcp_connections += 1
        return True

    def admit(self) -> bool:
        """Count a new application call in, unless ``max_concurrent_requests`` are running."""
        limit = self.max_concurrent_requests
        if limit is not None and self.in_flight >= limit:
            return False
        self.in_flight += 1
        self.requests_served += 1
        if self.max_requests is not None and self.requests_served >= self.max_requests:
            self.recycle.set()
        return True

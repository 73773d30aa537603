"""The admin listener (``admin_bind``): ``/livez``, ``/readyz`` and ``/metrics``.

- ``/livez``: 200 while the worker's event loop runs.
- ``/readyz``: 200 only after lifespan start-up completed and before shutdown began
  (``shutdown_delay`` keeps serving traffic while this already answers 503, so load balancers
  stop sending before the listeners close).
- ``/metrics``: Prometheus text format (requests by status and protocol, a latency histogram,
  in-flight requests, open connections by protocol, open WebSockets). With several workers
  every worker writes to the same ``PROMETHEUS_MULTIPROC_DIR`` (set by the supervisor), so any
  worker's answer counts them all.

Admin requests never reach the application and are not written to the access log.
"""

from __future__ import annotations

import os
import socket
from typing import Any, Optional

MULTIPROCESS_ENV = "PROMETHEUS_MULTIPROC_DIR"


class Metrics:
    """The server's metrics for one worker (all workers, in multiprocess mode)."""

    def __init__(self) -> None:
        # prometheus-client is imported here, not at the top: a worker without an admin
        # listener never builds metrics, and saves the memory.
        from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
        from prometheus_client import multiprocess as prometheus_multiprocess

        self.multiprocess = bool(os.environ.get(MULTIPROCESS_ENV))
        self.registry = CollectorRegistry()
        registry = None if self.multiprocess else self.registry
        if self.multiprocess:
            prometheus_multiprocess.MultiProcessCollector(self.registry)  # type: ignore[no-untyped-call]
            registry = CollectorRegistry()  # the live metrics go to files, not a registry
        gauge_mode: dict[str, Any] = {"multiprocess_mode": "livesum"} if self.multiprocess else {}
        self.requests = Counter(
            "hypercorn_requests_total", "Requests served", ["status", "protocol"], registry=registry
        )
        self.duration = Histogram(
            "hypercorn_request_duration_seconds",
            "Time from the request head to the end of the response",
            ["protocol"],
            registry=registry,
        )
        self.in_flight = Gauge(
            "hypercorn_requests_in_flight",
            "Application calls running",
            registry=registry,
            **gauge_mode,
        )
        self.connections = Gauge(
            "hypercorn_open_connections",
            "Open client connections",
            ["protocol"],
            registry=registry,
            **gauge_mode,
        )
        self.websockets = Gauge(
            "hypercorn_open_websockets", "Open WebSocket sessions", registry=registry, **gauge_mode
        )

    def request_started(self, websocket: bool) -> None:
        self.in_flight.inc()
        if websocket:
            self.websockets.inc()

    def request_finished(
        self, status: Optional[int], protocol: str, seconds: float, websocket: bool
    ) -> None:
        self.in_flight.dec()
        if websocket:
            self.websockets.dec()
        self.requests.labels(str(status or 0), protocol).inc()
        self.duration.labels(protocol).observe(seconds)

    def render(self) -> bytes:
        from prometheus_client import generate_latest

        return bytes(generate_latest(self.registry))


_METRICS: Optional[Metrics] = None


def metrics() -> Metrics:
    """The process's metrics (created once: prometheus names are process-global)."""
    global _METRICS
    if _METRICS is None:
        _METRICS = Metrics()
    return _METRICS


class AdminApp:
    """The ASGI application served on ``admin_bind``."""

    def __init__(self, is_ready: Any) -> None:
        self.is_ready = is_ready  # a callable: True once started and until shutdown begins

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        path = scope["path"]
        if path == "/livez":
            status, body, content_type = 200, b"ok\n", b"text/plain"
        elif path == "/readyz":
            ready = self.is_ready()
            status = 200 if ready else 503
            body = b"ready\n" if ready else b"not ready\n"
            content_type = b"text/plain"
        elif path == "/metrics":
            from prometheus_client import CONTENT_TYPE_LATEST

            status, body, content_type = 200, metrics().render(), CONTENT_TYPE_LATEST.encode()
        else:
            status, body, content_type = 404, b"not found\n", b"text/plain"
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [(b"content-type", content_type), (b"cache-control", b"no-store")],
            }
        )
        await send({"type": "http.response.body", "body": body})


def probe(admin_bind: str, path: str = "/readyz", timeout: float = 3.0) -> int:
    """Ask the admin listener for ``path``; returns the HTTP status (0 if unreachable).

    What ``hypercorn --healthcheck`` runs, so a container HEALTHCHECK needs no curl.
    """
    from .config import parse_bind

    kind, target = parse_bind(admin_bind)
    try:
        if kind == "unix":
            assert isinstance(target, str)
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            sock.connect(target)
        else:
            assert isinstance(target, tuple)
            host, port = target
            if host in ("0.0.0.0", ""):
                host = "127.0.0.1"
            elif host == "::":
                host = "::1"
            sock = socket.create_connection((host, port), timeout=timeout)
        with sock:
            sock.sendall(f"GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n".encode())
            status_line = sock.makefile("rb").readline()
    except OSError:
        return 0
    try:
        return int(status_line.split()[1])
    except (IndexError, ValueError):
        return 0
